"""Every bench, one after the other, each in its own process with a time limit, then one table
of their key figures, read from their JSON results (bench/README.md says more)."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time

from bench.harness import RESULTS, ROOT, table

# name: (its arguments for --quick, time limit of a full run in minutes)
BENCHES = {
    "relevance": ([], 20),
    "speed": (["--corpus", "shipped", "--corpus", "generated", "--generated", "300"], 60),
    "rebuild": (["--generated", "300", "--rounds", "2"], 20),
    "http": (["--seconds", "3", "--warmup", "1", "--rounds", "2"], 30),
    "upload": (["--size-gb", "0.25"], 30),
    "tus": (["--size-gb", "0.25"], 30),
    "download": (["--size-gb", "0.25", "--runs", "1"], 30),
    "load": (["--users", "16", "--seconds", "15"], 20),
    "login_timing": (["--rounds", "3", "--tries", "5"], 20),
}


def run(name: str, quick: bool) -> str:
    """The bench to its end or its limit: '' when it wrote its result, else what went wrong."""
    extra, minutes = BENCHES[name]
    limit = max(300, minutes * 20) if quick else minutes * 60
    (RESULTS / f"{name}.json").unlink(missing_ok=True)
    print(f"\n=== bench.{name}", flush=True)
    process = subprocess.Popen([sys.executable, "-m", f"bench.{name}", *(extra * quick)], cwd=ROOT)
    try:
        status = process.wait(timeout=limit)
    except (subprocess.TimeoutExpired, KeyboardInterrupt) as stopped:
        process.send_signal(signal.SIGTERM)  # it stops its servers and removes its folder
        process.wait()
        if isinstance(stopped, KeyboardInterrupt):
            raise
        return f"stopped after {limit / 60:.0f} min"
    if not (RESULTS / f"{name}.json").exists():
        return f"exit {status}, no result"
    return "" if status == 0 else f"exit {status}"


def summary(names: list[str], problems: dict[str, str]) -> list[dict[str, str]]:
    rows, notes = [], []
    for name in names:
        path = RESULTS / f"{name}.json"
        if problems.get(name) or not path.exists():
            rows.append({"bench": name, "measure": problems.get(name, "no result"),
                         "kb": "", "baseline": "", "target": "", "verdict": "FAILED"})  # fmt: skip
            continue
        result = json.loads(path.read_text())
        rows += [{"bench": name, **row} for row in result["summary"]]
        argv = " ".join(result["argv"]) or "defaults"
        notes.append(f"{name}: {result['at']}, {argv}, commit {result['commit']}, "
                     f"load average {result['load_average']:.1f}")  # fmt: skip
    keys = ["bench", "measure", "kb", "baseline", "target", "verdict"]
    print("\n" + table([keys, *([r[k] for k in keys] for r in rows)], "<" * len(keys)))
    print("\n".join(notes))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.all", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", nargs="+", choices=list(BENCHES), default=list(BENCHES))
    parser.add_argument("--strict", action="store_true", help="a missed target fails too")
    parser.add_argument("--read", action="store_true", help="print the results there, run none")
    args = parser.parse_args()
    names = args.only
    started = time.monotonic()
    problems = {name: run(name, args.quick) for name in ([] if args.read else names)}
    rows = summary(names, problems)
    print(f"\n{len(names)} benches in {(time.monotonic() - started) / 60:.1f} min")
    failed = {"FAILED", "MISSED"} if args.strict else {"FAILED"}
    return 1 if any(r["verdict"] in failed for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
