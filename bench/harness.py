"""What every bench shares: kb serve (this tree's or another's) in a scratch folder, an account,
the server's CPU and memory, medians and spreads, and the JSON result `bench.all` reads."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import email
import email.policy
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx2

from kb.testing import free_port, stop, wait_until_up

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MIB = 1024 * 1024
GIB = 1024 * MIB
UAI = "0750654D"
PASSWORD = "Banc-d-essai-2026"


def parser(module: str, doc: str | None, tree: bool = True) -> argparse.ArgumentParser:
    """A bench's command line: its docstring, --json (where the result goes) and --tree
    (another source tree's kb: before/after)."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(f"python -m {module}", description=doc, formatter_class=fmt)
    parser.add_argument("--json", type=Path, help="the result (default bench/results/NAME.json)")
    if tree:
        parser.add_argument("--tree", type=Path, help="serve another tree's kb (e.g. main's)")
    return parser


def in_tree(args: argparse.Namespace, module: str) -> None:
    """With --tree, run this bench again in a new process whose `kb` is the tree's (imported
    before this tree goes first on sys.path again, for `bench`); returns only without it."""
    if args.tree is None or os.environ.get("KB_BENCH_IN_TREE"):
        return
    # kb is a namespace package: its __path__ follows sys.path, so once this tree goes first
    # again `kb.x` would come from here. Pinned to the tree's folder, every kb module is its.
    kb_dir = str(args.tree.resolve() / "kb")
    code = (f"import sys, runpy; sys.path.insert(0, {str(args.tree.resolve())!r}); import kb; "
            f"kb.__path__ = [{kb_dir!r}]; "
            f"sys.path.insert(0, {str(ROOT)!r}); sys.argv[0] = {module!r}; "
            f"runpy.run_module({module!r}, run_name='__main__')")  # fmt: skip
    env = {**os.environ, "KB_BENCH_IN_TREE": "1"}
    os.execve(sys.executable, [sys.executable, "-c", code, *sys.argv[1:]], env)


def kb_command(tree: Path | None, *args: str) -> list[str]:
    """`kb ARGS` with this tree's kb, or `tree`'s (first on sys.path, whatever is installed)."""
    path = str((tree or ROOT).resolve())
    pinned = f"import kb; kb.__path__ = [{path + '/kb'!r}]"  # a namespace package: see in_tree
    start = "from kb.cli import main; sys.exit(main())"
    code = f"import sys; sys.path.insert(0, {path!r}); {pinned}; {start}"
    return [sys.executable, "-c", code, *args]


def kb_env(work: Path, content: Path = ROOT / "content", **extra: str) -> dict[str, str]:
    """The caller's environment without its KB_*: data and index in `work`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    data, index = str(work / "data"), str(work / "index")
    return {**env, "KB_DATA_DIR": data, "KB_CONTENT_DIR": str(content), "KB_INDEX_DIR": index,
            "PYTHONUNBUFFERED": "1", **extra}  # fmt: skip


def kb(tree: Path | None, env: dict[str, str], *args: str) -> str:
    """Run `kb ARGS` to the end: its output, or a RuntimeError with it."""
    done = subprocess.run(kb_command(tree, *args), env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"kb {' '.join(args)}: {done.returncode} {done.stderr[-2000:]}")
    return done.stdout


class Server:
    """A server in its own session (its workers stopped with it), its output in a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [*argv, "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, text=True,
            )  # fmt: skip
        try:
            wait_until_up(self.process, self.base, seconds=600)
        except RuntimeError as exc:
            self.stop()
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.base}: {exc}\n{tail}") from None

    def workers(self) -> list[int]:
        """Its worker processes (spawned by the parent), or the parent alone when it serves."""
        children = [p for p, ppid in _session(self.process.pid) if ppid == self.process.pid]
        spawned = [p for p in children if "spawn_main" in read(f"/proc/{p}/cmdline")]
        return sorted(spawned) or [self.process.pid]

    def cpu(self) -> float:
        """CPU seconds (user + system) of all its live processes (uvicorn's and its workers)."""
        return sum(cpu_seconds(pid) for pid, _ in _session(self.process.pid))

    def stop(self) -> None:
        stop(self.process)  # type: ignore[arg-type]


def kb_serve(tree: Path | None, env: dict[str, str], work: Path, workers: int = 1) -> Server:
    return Server(kb_command(tree, "serve", "--workers", str(workers)), env, work / "serve.log")


def read(path: str) -> str:
    """A file of /proc, or '' when its process is gone."""
    with contextlib.suppress(OSError):
        return Path(path).read_text(errors="replace")
    return ""


def _stat(pid: int | str) -> list[str]:
    """/proc/PID/stat after the command's name: state ppid pgrp session ... ([] when gone)."""
    stat = read(f"/proc/{pid}/stat")
    return stat[stat.rfind(")") + 2 :].split()


def _session(session: int) -> list[tuple[int, int]]:
    """(pid, parent pid) of the live processes of a session."""
    stats = {int(p.name): _stat(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()}
    return [(pid, int(s[1])) for pid, s in stats.items() if len(s) > 3 and int(s[3]) == session]


def cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    """VmRSS (now) or VmHWM (the peak since `reset_peak`) in MB."""
    found = re.search(rf"^{key}:\s+(\d+)", read(f"/proc/{pid}/status"), re.M)
    return int(found[1]) * 1024 / 1e6 if found else 0.0


def reset_peak(pid: int) -> None:
    """VmHWM back to the current RSS (Linux >= 4.0): the next peak is what follows."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def account(tree: Path | None, env: dict[str, str], client: httpx2.Client) -> None:
    """An establishment account (`kb accounts add`), activated through its mail, logged in."""
    kb(tree, env, "accounts", "add", UAI, "--etablissement", "Lycée du banc d'essai",
       "--prenom", "Marie", "--nom", "Curie", "--email", "marie@example.fr")  # fmt: skip
    [mail] = sorted((Path(env["KB_DATA_DIR"]) / "outbox").glob("*.eml"))
    message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = "/" + re.search(r"https?://\S+/activation/\S+", text)[0].split("/", 3)[3]  # type: ignore[index]
    client.get(link)
    form = {"csrf": client.cookies["kb_csrf"], "mot_de_passe": PASSWORD, "confirmation": PASSWORD}
    if client.post(link, data=form).status_code != 303:
        raise RuntimeError("activation refused")
    client.cookies.delete("kb_session")  # log in as a returning user does
    client.get("/connexion")
    form = {"csrf": client.cookies["kb_csrf"], "identifiant": UAI, "mot_de_passe": PASSWORD}
    if client.post("/connexion", data=form).status_code != 303:
        raise RuntimeError("login refused")


@contextlib.contextmanager
def scratch(name: str, need: int = 0, parent: Path | None = None) -> Iterator[Path]:
    """A temporary folder (under `parent`), removed at the end; SystemExit with a message when
    its disk has not `need` bytes free. SIGTERM ends the bench as Ctrl-C does (clean-up runs)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    work = Path(tempfile.mkdtemp(prefix=f"kb-bench-{name}-", dir=parent))
    try:
        free = shutil.disk_usage(work).free
        if free < need:
            raise SystemExit(f"bench.{name}: {free / GIB:.1f} GiB free in {work.parent}, "
                             f"{need / GIB:.1f} needed (--dir elsewhere?)")  # fmt: skip
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def median_spread(values: list[float]) -> dict[str, Any]:
    """The median, and the spread of the runs: (max - min) / median."""
    median = statistics.median(values)
    spread = (max(values) - min(values)) / median if median else 0.0
    return {"median": median, "spread": spread, "runs": values}


def cell(m: dict[str, Any], fmt: str = ".2f") -> str:
    """`1.23 (spread 5 %)`: a median_spread for a table."""
    more = f" (spread {100 * m['spread']:.0f} %)" if len(m["runs"]) > 1 else ""
    return f"{m['median']:{fmt}}{more}"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def table(rows: Sequence[Sequence[Any]], align: str, indent: str = "") -> str:
    """Rows of cells (the first the header) in columns: `align` says, column by column, "<"
    (to the left) or ">" (to the right)."""
    cells = [[str(cell) for cell in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(align))]
    lines = (
        "  ".join(f"{c:{a}{w}}" for c, a, w in zip(r, align, widths, strict=True)) for r in cells
    )
    return "\n".join((indent + line).rstrip() for line in lines)


def row(measure: str, kb: str, baseline: str = "", target: str = "", ok: bool | None = None):
    """A line of bench.all's summary."""
    verdict = "" if ok is None else ("met" if ok else "MISSED")
    return dict(measure=measure, kb=kb, baseline=baseline, target=target, verdict=verdict)


def write_result(name: str, args: argparse.Namespace, figures: Any, summary: list[dict]) -> None:
    """bench/results/NAME.json (or --json): the figures, bench.all's rows, and the machine."""
    tree = getattr(args, "tree", None)
    commit = subprocess.run(["git", "-C", str(tree or ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    result = {"bench": name, "argv": sys.argv[1:], "at": at, "tree": str(tree or ROOT),
              "commit": commit, "cpus": os.cpu_count(), "load_average": os.getloadavg()[0],
              "figures": figures, "summary": summary}  # fmt: skip
    path = args.json or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"bench.{name}: {path}", file=sys.stderr)
