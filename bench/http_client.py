"""The fallback load generator of ``bench.http`` when wrk is not installed: asyncio + httpx2.

    python -m bench.http_client http://127.0.0.1:8000 paths.txt --connections 64 --seconds 10

Runs ``connections`` tasks, each with its own keep-alive connection, taking the file's paths
in turn until the time is up, then prints the same JSON summary as the wrk script. It is a
much heavier client than wrk: on a small machine its own CPU use caps the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx2


def percentile(sorted_values: list[int], pct: float) -> int:
    if not sorted_values:
        return 0
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def load(
    base_url: str,
    paths: list[str],
    connections: int,
    seconds: float,
    headers: dict[str, str],
    first: int = 0,
) -> dict[str, int]:
    latencies: list[int] = []
    counts = {"bytes": 0, "connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    cursor = iter(range(first, 10**12))
    began = time.perf_counter()
    deadline = began + seconds

    async def worker() -> None:
        limits = httpx2.Limits(max_connections=1, max_keepalive_connections=1)
        timeout = httpx2.Timeout(5.0)
        async with httpx2.AsyncClient(
            base_url=base_url, headers=headers, limits=limits, timeout=timeout
        ) as client:
            while time.perf_counter() < deadline:
                path = paths[next(cursor) % len(paths)]
                sent = time.perf_counter()
                try:
                    response = await client.get(path)
                except httpx2.TimeoutException:
                    counts["timeout"] += 1
                    continue
                except httpx2.ConnectError:
                    counts["connect"] += 1
                    await asyncio.sleep(0.01)
                    continue
                except httpx2.HTTPError:
                    counts["read"] += 1
                    continue
                latencies.append(int((time.perf_counter() - sent) * 1e6))
                counts["bytes"] += response.num_bytes_downloaded  # body as sent, no headers
                if response.status_code >= 400:
                    counts["status"] += 1

    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        **counts,
        "p50_us": percentile(latencies, 50),
        "p90_us": percentile(latencies, 90),
        "p99_us": percentile(latencies, 99),
        "max_us": latencies[-1] if latencies else 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http_client", description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("paths_file")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--start", type=int, default=0, help="first line (0-based)")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    args = parser.parse_args(argv)
    with open(args.paths_file, encoding="utf-8") as lines:
        paths = [line.rstrip("\n") for line in lines if line.strip()]
    headers = dict(h.split(": ", 1) for h in args.header)
    coroutine = load(args.base_url, paths, args.connections, args.seconds, headers, args.start)
    try:
        import uvloop
    except ImportError:
        summary = asyncio.run(coroutine)
    else:
        summary = uvloop.run(coroutine)
    print("BENCH_JSON " + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
