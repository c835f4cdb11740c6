"""Bounded HTTP load from a second process, for ``bench.http``: wrk, or an httpx fallback.

``run_load(...)`` sends GETs for the paths of a file (one per line, taken in turn, so the
order of the file is the order of the requests) over ``connections`` keep-alive connections
for ``seconds``, and returns requests/s, p50/p99 latency and error counts.

- ``wrk`` (Debian's package: ``apt-get install wrk``) with a Lua script that rotates the
  paths; each wrk thread starts at its own offset in the file;
- otherwise ``python -m bench.http_client`` (asyncio + httpx), much slower as a client: its
  own CPU use caps what it can measure, which the report says.

Both print one JSON line: requests, seconds, bytes, errors by kind, p50/p90/p99/max in µs.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

WRK_LUA = r"""
-- bench.http: rotate the request paths of a file; print a JSON summary when done.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  local nthreads = tonumber(args[2])
  local start = tonumber(args[3] or 0)
  -- each thread walks its own slice first, so no two threads send the same path early
  i = (start + math.floor(#paths * id / nthreads)) % #paths
end

function request()
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format("GET", paths[i])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nBENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
"""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    bytes: int
    errors: int  # connect, read, write, timeouts and non-2xx/3xx answers
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    client_cpu_s: float  # the load generator's own CPU time
    paths: int  # lines in the file: beyond, the requests come back to its start
    start: int  # the line of the file the run started at
    threads: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def bytes_per_request(self) -> float:
        return self.bytes / self.requests if self.requests else 0.0

    @property
    def wrapped(self) -> bool:
        return self.start + self.requests > self.paths

    def sent(self, lines: list[str]) -> list[str]:
        """The lines of the file this run requested (each thread walks its own slice)."""
        n, per_thread = len(lines), self.requests // self.threads
        return [
            lines[(self.start + n * t // self.threads + i) % n]
            for t in range(self.threads)
            for i in range(per_thread)
        ]


def load_tool() -> str:
    """``wrk`` when it is installed, else ``httpx``."""
    return "wrk" if shutil.which("wrk") else "httpx"


def run_load(
    tool: str,
    base_url: str,
    paths_file: Path,
    *,
    connections: int,
    seconds: float,
    headers: dict[str, str],
    threads: int = 1,
    start: int = 0,
    track: Callable[[subprocess.Popen[bytes]], None] = lambda p: None,
) -> LoadResult:
    """One bounded run from line ``start`` of the file (0-based); ``track`` is told about the
    child process, to stop it on failure."""
    paths = sum(1 for _ in paths_file.open(encoding="utf-8"))
    if tool == "wrk":
        lua = paths_file.with_suffix(".lua")
        lua.write_text(WRK_LUA, encoding="utf-8")
        threads = max(1, min(threads, connections))
        argv = [
            shutil.which("wrk") or "wrk",
            f"--threads={threads}",
            f"--connections={connections}",
            f"--duration={max(1, round(seconds))}s",
            "--timeout=5s",
            "--latency",
            f"--script={lua}",
        ]
        for name, value in headers.items():
            argv += ["--header", f"{name}: {value}"]
        argv += [base_url, "--", str(paths_file), str(threads), str(start)]
    else:
        argv = [
            sys.executable,
            "-m",
            "bench.http_client",
            base_url,
            str(paths_file),
            f"--connections={connections}",
            f"--seconds={seconds}",
            f"--start={start}",
        ]
        for name, value in headers.items():
            argv += ["--header", f"{name}: {value}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    track(process)
    try:
        out, err = process.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise RuntimeError(f"{tool} did not stop after {seconds + 60:.0f} s") from None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = None
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith("BENCH_JSON "):
            summary = json.loads(line[len("BENCH_JSON ") :])
    if process.returncode != 0 or summary is None:
        raise RuntimeError(
            f"{tool} failed ({process.returncode}): {err.decode('utf-8', 'replace')[-2000:]}"
        )
    errors = sum(summary[k] for k in ("connect", "read", "write", "status", "timeout"))
    return LoadResult(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        bytes=summary["bytes"],
        errors=errors,
        p50_ms=summary["p50_us"] / 1000,
        p90_ms=summary["p90_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        max_ms=summary["max_us"] / 1000,
        client_cpu_s=cpu,
        paths=paths,
        start=start,
        threads=threads if tool == "wrk" else 1,
    )
