"""Where a kb worker spends its time under load, for ``bench.http --profile``: py-spy.

``record(pids, seconds, out_dir)`` samples each worker with ``py-spy record --format raw``
(collapsed stacks, non-blocking) while a load runs; ``breakdown(files)`` attributes every
sample to one part of the request (the first frame from the leaf up that belongs to a known
part: search, template rendering, JSON, middleware, access log, HTTP server, …) and lists
the functions with the most samples below them.

py-spy comes from PyPI (``pip install py-spy``); it needs ptrace rights on the workers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

# (part, pattern on "function (file:line)"), tried from the leaf frame up; first match wins.
PARTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("JSON serialisation", r"/json/|\(render \(.*starlette/responses\.py"),
        ("access log / logging", r"/logging/|uvicorn/logging\.py"),
        ("gzip middleware", r"starlette/middleware/gzip\.py|/gzip\.py|zlib"),
        (
            "template rendering (Jinja2)",
            r"/jinja2/|/markupsafe/|templates/.*\.html|starlette/templating",
        ),
        ("search: snippets", r"kb/knowledge/search/snippets\.py"),
        ("search: planner", r"kb/knowledge/search/planner\.py"),
        ("search: scoring", r"kb/knowledge/search/scoring\.py"),
        ("search: analysis", r"kb/knowledge/search/analysis\.py"),
        ("search: whoosh", r"/whoosh/"),
        ("search: other", r"kb/knowledge/search/"),
        ("usage recording", r"kb/insights/usage\.py|/sqlalchemy/"),
        ("security middleware", r"kb/web/security\.py"),
        ("kb web (handlers)", r"kb/web/"),
        ("Starlette (routing, requests)", r"/starlette/"),
        ("HTTP server (uvicorn, httptools)", r"/uvicorn/|/httptools/"),
        ("event loop (asyncio, anyio)", r"/asyncio/|/uvloop/|/anyio/"),
    )
)
OTHER = "other"
_FRAME_RE = re.compile(r"^(?P<function>.*) \((?P<file>.*):(?P<line>\d+)\)$")


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def record(
    pids: Iterable[int],
    seconds: float,
    out_dir: Path,
    track: Callable[[subprocess.Popen[bytes]], None] = lambda p: None,
) -> list[subprocess.Popen[bytes]]:
    """Start one ``py-spy record`` per pid (raw stacks into ``out_dir/worker-<pid>.txt``)."""
    tool = py_spy()
    if tool is None:
        raise RuntimeError("py-spy is not installed: pip install py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    started = []
    for pid in pids:
        argv = [
            tool,
            "record",
            f"--pid={pid}",
            f"--duration={max(1, round(seconds))}",
            "--rate=250",
            "--format=raw",
            "--nonblocking",
            "--full-filenames",
            f"--output={out_dir / f'worker-{pid}.txt'}",
        ]
        process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        track(process)
        started.append(process)
    return started


def _stacks(files: Iterable[Path]) -> Iterable[tuple[list[str], int]]:
    for path in files:
        for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                yield stack.split(";"), int(count)


def breakdown(files: Iterable[Path], top: int = 12) -> str:
    """A text report: share of samples per part, then the kb functions most often on stack."""
    files = list(files)
    parts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for frames, count in _stacks(files):
        total += count
        leaf_up = (name for f in reversed(frames) for name, pattern in PARTS if pattern.search(f))
        parts[next(leaf_up, OTHER)] += count
        for frame in set(frames):
            match = _FRAME_RE.match(frame)
            if match and "/kb/" in match["file"]:
                inclusive[f"{match['function']} ({match['file'].split('/kb/', 1)[1]})"] += count
    if not total:
        return "py-spy: no samples (is ptrace allowed?)"
    lines = [f"py-spy, {total} samples of busy worker threads ({len(files)} workers):"]
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in parts.most_common()]
    lines.append(
        "  (py-spy counts a worker waiting for a CPU as busy where it stopped; on a small "
        "machine that is often uvicorn's socket write, which wakes the load generator)"
    )
    lines.append("kb functions on the stack (inclusive, % of samples):")
    lines += [f"  {100 * n / total:5.1f} %  kb/{name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)
