"""What kb's request line and metrics cost per request, measured in one process.

    python -m bench.request_log [--requests 20000] [--rounds 7]

Calls a minimal ASGI endpoint directly (no server, no socket), bare and behind
``RequestLog`` (request id, one JSON log line written to a discarded stream, four metric
updates), in alternating rounds; prints the median cost per request of each, its spread
over the rounds, and the difference: the overhead every answer of ``kb serve`` pays.
Run it a second time with PROMETHEUS_MULTIPROC_DIR set to an empty folder to see the cost
of the workers' shared files.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import statistics
import time
from typing import Any

from kb import logs
from kb.web.metrics import Metrics
from kb.web.request_log import RequestLog


async def endpoint(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]})
    await send({"type": "http.response.body", "body": b"{}"})


def scope() -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/api/search",
        "headers": [(b"host", b"localhost"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 5000),
        "state": {},
    }


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Any) -> None:
    return None


async def run(app: Any, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        await app(scope(), receive, send)
    return (time.perf_counter() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logged = RequestLog(endpoint, metrics=Metrics("127.0.0.1"))
    bare: list[float] = []
    behind: list[float] = []
    for _ in range(args.rounds):
        handler.stream = io.StringIO()
        bare.append(asyncio.run(run(endpoint, args.requests)))
        behind.append(asyncio.run(run(logged, args.requests)))

    def show(name: str, values: list[float]) -> str:
        return (
            f"{name:<22} median {statistics.median(values):7.1f} µs/request, "
            f"spread {min(values):.1f} to {max(values):.1f} over {len(values)} rounds"
        )

    print(show("bare endpoint", bare))
    print(show("behind RequestLog", behind))
    overhead = [b - a for a, b in zip(bare, behind, strict=True)]
    print(show("overhead", overhead))


if __name__ == "__main__":
    main()
