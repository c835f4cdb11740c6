"""A multi-gigabyte attachment through ``kb serve``: time against ``dd``, server memory flat.

    python -m bench.upload [--size-gb 2] [--runs 1] [--profile] [--dir /var/tmp] [--keep-log]

Issue 5, "Doing it right": an upload is streamed to the data dir while it is hashed, so the
server's peak memory must stay flat (under 100 MB more than idle) and the time must stay
close to writing the same bytes with ``dd`` on the same disk (at most 1.5 times).

1. a temporary folder holds the data dir (SQLite, outbox, attachments), the index and every
   file the baselines write, so all of them are on the filesystem kb writes to; content is
   the repository's ``content/``;
2. ``kb build`` then ``kb serve --workers 1`` on a free 127.0.0.1 port, in its own process
   group; an establishment account is added with ``kb accounts add``, activated through the
   link of its mail, and logged in;
3. the process that owns the listening socket is found (with one worker, uvicorn serves in
   its main process); after a small warm-up upload its idle VmRSS is read and its VmHWM is
   reset (``/proc/<pid>/clear_refs``), then the big upload's peak is its VmHWM;
4. each run: the body is one multipart form with a single attachment of a repeating
   non-zero pattern, generated on the fly, the whole request timed; the 303, the stored
   file's size and its SHA-256 (in the database) are checked; then ``dd if=/dev/zero
   bs=1M conv=fsync`` of the same number of bytes into the data dir, and a plain Python
   write of the same bytes with SHA-256 and fsync (the cost of hashing, without HTTP);
   ``sync`` before each step, each file removed after it;
5. one table (a column a run, and their median): kb's time, split into sending the body and
   the server's tail (fsync, ticket, answer), the server's CPU time and how long its threads
   were ready to run but found no free CPU (``/proc/<pid>/task/*/schedstat``: on a shared
   machine, this is what makes kb's time vary), dd, the Python baseline, the ratios, idle
   RSS, peak (VmHWM, and VmRSS sampled every 20 ms) and growth, with the targets; the server
   group is stopped and the folder removed whatever happens (Ctrl-C, SIGTERM too).

With ``--profile``, one more upload is sampled by py-spy (in the venv: ``pip install
py-spy``), and the table is followed by the time seen in each server thread and the lines
where it was seen most, kb's lines quoted.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import email.policy
import hashlib
import linecache
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MIB = 1024 * 1024
GIB = 1024 * MIB
UAI = "0750654D"
PASSWORD = "Banc-d-essai-envoi-2026"
BOUNDARY = "kb-banc-envoi-0123456789"
# 1 MiB of a repeating non-zero pattern; the same bytes object is sent again and again.
PATTERN = (b"\x01\x02kb-banc-piece-jointe\xfe\xff" * (MIB // 24 + 1))[:MIB]
TARGET_RATIO = 1.5
TARGET_GROWTH_MB = 100.0
WARM_UP_BYTES = 4 * MIB


# --------------------------------------------------------------------------- the server


# Another source tree to measure (--tree, e.g. an export of main for "before"); None: this one.
TREE: Path | None = None


def kb_env(tmp: Path, limit: int) -> dict[str, str]:
    """The caller's environment without any KB_* of its own: SQLite and the outbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(
        KB_DATA_DIR=str(tmp / "data"),
        KB_CONTENT_DIR=str(ROOT / "content"),
        KB_INDEX_DIR=str(tmp / "index"),
        KB_MAX_UPLOAD_BYTES=str(limit),
        PYTHONUNBUFFERED="1",
    )
    return env


def kb_command(*args: str) -> list[str]:
    """The venv's ``kb`` script when there is one, else the same entry point through python."""
    script = Path(sys.executable).with_name("kb")
    if script.exists() and TREE is None:
        return [str(script), *args]
    first = f"sys.path.insert(0, {str(TREE)!r}); " if TREE is not None else ""
    code = f"import sys; {first}from kb.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code, *args]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server(tmp: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    with (tmp / "serve.log").open("wb") as log:
        return subprocess.Popen(
            kb_command("serve", "--port", str(port), "--workers", "1"),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            env=env,
            start_new_session=True,  # its own group: stopped as one, workers included
        )


def stop_server(process: subprocess.Popen[bytes]) -> None:
    def signal_group(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    if process.poll() is None:
        signal_group(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            signal_group(signal.SIGKILL)
            process.wait()
    signal_group(signal.SIGKILL)  # anything of the group left behind


def wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(httpx2.TransportError):
            if httpx2.get(base + "/healthz", timeout=5).status_code == 200:
                return
        time.sleep(0.1)
    tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
    raise RuntimeError(f"{base}/healthz ne répond pas (journal {log}) :\n{tail}")


def group_pids(session: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if int(stat[stat.rindex(")") + 2 :].split()[3]) == session:  # field 6: session id
                found.append(int(entry.name))
    return sorted(found)


def listening_pids(port: int, session: int) -> list[int]:
    """The processes of the server's session holding the socket that listens on ``port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    owners = []
    for pid in group_pids(session):
        with contextlib.suppress(OSError):
            fds = Path(f"/proc/{pid}/fd")
            if any(os.readlink(fd) in inodes for fd in fds.iterdir()):
                owners.append(pid)
    return owners


def serving_pid(server: subprocess.Popen[bytes], port: int) -> tuple[int, str]:
    """The one process that accepts and serves; says how it was found."""
    group = group_pids(server.pid)
    owners = listening_pids(port, server.pid)
    if len(owners) != 1:
        raise RuntimeError(f"un seul processus devrait écouter : {owners} (groupe {group})")
    pid = owners[0]
    where = "processus principal" if pid == server.pid else f"worker (parent {server.pid})"
    others = [p for p in group if p != pid]
    note = f"pid {pid}, {where}, seul à écouter le port ; autres du groupe : {others or 'aucun'}"
    return pid, note


def proc_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def reset_peak(pid: int) -> bool:
    """VmHWM back to the current RSS (Linux >= 4.0): the peak then belongs to the upload."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def schedstat(pid: int) -> dict[int, tuple[float, float]]:
    """Per thread: (seconds on a CPU, seconds runnable but waiting for one)."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError):
            on_cpu, waiting, _ = (task / "schedstat").read_text().split()
            found[int(task.name)] = (int(on_cpu) / 1e9, int(waiting) / 1e9)
    return found


def run_queue_wait(
    before: dict[int, tuple[float, float]], after: dict[int, tuple[float, float]]
) -> float:
    """Seconds the server's threads were ready to run but had no CPU, between two readings."""
    return sum(wait - before.get(tid, (0.0, 0.0))[1] for tid, (_, wait) in after.items())


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """VmRSS every 20 ms while the upload runs: a cross-check of VmHWM, and its shape."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kib = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            with contextlib.suppress(OSError, KeyError):
                self.peak_kib = max(self.peak_kib, proc_kib(self.pid, "VmRSS"))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------- the account


def provision(tmp: Path, env: dict[str, str]) -> str:
    """``kb accounts add``; returns the path of the activation link in its mail."""
    subprocess.run(
        kb_command("accounts", "add", UAI, "--etablissement", "Lycée du banc d'essai",
                   "--prenom", "Marie", "--nom", "Curie", "--email", "marie@example.fr"),
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    [mail_path] = sorted((tmp / "data" / "outbox").glob("*.eml"))
    message = email.message_from_bytes(mail_path.read_bytes(), policy=email.policy.default)
    body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    url = re.search(r"https?://\S+/activation/\S+", body)
    if url is None:
        raise RuntimeError(f"pas de lien d'activation dans {mail_path}")
    return "/" + url[0].split("/", 3)[3]


def activate_and_log_in(client: httpx2.Client, link: str) -> None:
    page = client.get(link)
    if page.status_code != 200:
        raise RuntimeError(f"activation : {page.status_code}")
    done = client.post(link, data={"csrf": client.cookies["kb_csrf"], "mot_de_passe": PASSWORD,
                                   "confirmation": PASSWORD})  # fmt: skip
    if done.status_code != 303:
        raise RuntimeError(f"activation refusée : {done.status_code} {done.text[:300]}")
    client.cookies.delete("kb_session")  # log in as a returning user does
    client.get("/connexion")
    form = {"csrf": client.cookies["kb_csrf"], "identifiant": UAI, "mot_de_passe": PASSWORD}
    login = client.post("/connexion", data=form)
    if login.status_code != 303 or "kb_session" not in client.cookies:
        raise RuntimeError(f"connexion refusée : {login.status_code} {login.text[:300]}")


# --------------------------------------------------------------------------- the measures


def pattern_chunks(size: int) -> Iterator[bytes]:
    left = size
    while left >= MIB:
        left -= MIB
        yield PATTERN
    if left:
        yield PATTERN[:left]


def multipart(csrf: str, size: int, sent: list[float]) -> tuple[Iterator[bytes], int]:
    """The form, generated as it is sent; ``sent`` gets the time its last byte was handed over."""
    fields = {
        "csrf": csrf,
        "jeton": uuid.uuid4().hex,  # the form's idempotency token: one ticket per upload
        "categorie": "abonnement",
        "sujet": "Banc d'essai : envoi d'un gros fichier",
        "message": "Voici l'export.",
    }
    head = "".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    )
    head += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="fichiers"; '
        'filename="export.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    )
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head.encode()
        yield from pattern_chunks(size)
        yield tail
        sent.append(time.perf_counter())

    return body(), len(head.encode()) + size + len(tail)


@dataclass
class Upload:
    seconds: float
    body_sent_s: float  # the last byte handed to the socket; the rest is the server's tail
    reference: str
    server_cpu_s: float
    server_wait_s: float  # runnable, waiting for a CPU (all its threads)
    client_cpu_s: float  # this process: the body's generator and httpx2's sends
    peak_kib: int  # VmHWM after the upload
    sampled_peak_kib: int  # highest VmRSS seen every 20 ms
    stored: Path
    sha256: str


def ticket_attachment(
    response: httpx2.Response, data: Path, what: str
) -> tuple[str, str, int, str]:
    """The ticket a POST /tickets created, and its one attachment's row: (reference,
    stored_as, size, sha256); anything else is a failure of the bench."""
    location = response.headers.get("location", "")
    if response.status_code != 303 or not location.startswith("/tickets/T-"):
        raise RuntimeError(f"{what} : {response.status_code} {location} {response.text[:500]}")
    reference = location.split("?")[0].rsplit("/", 1)[1]
    with contextlib.closing(sqlite3.connect(data / "kb.sqlite3")) as db:
        rows = db.execute(
            "SELECT a.stored_as, a.size, a.sha256 FROM attachments a"
            " JOIN messages m ON m.id = a.message_id JOIN tickets t ON t.id = m.ticket_id"
            " WHERE t.reference = ?",
            (reference,),
        ).fetchall()
    if len(rows) != 1:
        raise RuntimeError(f"{reference} : {len(rows)} pièce(s) jointe(s) au lieu d'une")
    stored_as, size, sha256 = rows[0]
    return reference, stored_as, size, sha256


def upload(client: httpx2.Client, data: Path, pid: int, size: int) -> Upload:
    sent_at: list[float] = []
    body, length = multipart(client.cookies["kb_csrf"], size, sent_at)
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}",
               "content-length": str(length)}  # fmt: skip
    cpu_before, client_before = cpu_seconds(pid), time.process_time()
    sched_before = schedstat(pid)
    with RssSampler(pid) as sampler:
        start = time.perf_counter()
        response = client.post("/tickets", content=body, headers=headers, timeout=None)
        seconds = time.perf_counter() - start
    server_cpu = cpu_seconds(pid) - cpu_before
    server_wait = run_queue_wait(sched_before, schedstat(pid))
    client_cpu = time.process_time() - client_before
    peak = proc_kib(pid, "VmHWM")
    reference, stored_as, recorded_size, sha256 = ticket_attachment(response, data, "envoi")
    stored = data / "attachments" / stored_as
    on_disk = stored.stat().st_size
    if not on_disk == recorded_size == size:
        raise RuntimeError(
            f"taille : {on_disk} sur disque, {recorded_size} en base, {size} envoyés"
        )
    body_sent = (sent_at[0] - start) if sent_at else seconds
    return Upload(
        seconds=seconds,
        body_sent_s=body_sent,
        reference=reference,
        server_cpu_s=server_cpu,
        server_wait_s=server_wait,
        client_cpu_s=client_cpu,
        peak_kib=peak,
        sampled_peak_kib=sampler.peak_kib,
        stored=stored,
        sha256=sha256,
    )


def dd(target: Path, size: int) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={size // MIB}", "conv=fsync"],
        check=True, capture_output=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if target.stat().st_size != size:
        raise RuntimeError(f"dd : {target.stat().st_size} octets au lieu de {size}")
    return seconds


def cat_cold(path: Path) -> float:
    """``cat FILE > /dev/null`` with the file's pages dropped first (posix_fadvise DONTNEED, no
    root needed): the disk's read speed for that file, the cache state kb's own reads see."""
    with path.open("rb") as source:
        os.posix_fadvise(source.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    start = time.perf_counter()
    with path.open("rb") as source, open(os.devnull, "wb") as sink:
        subprocess.run(["cat"], stdin=source, stdout=sink, check=True)
    return time.perf_counter() - start


def python_write_and_hash(target: Path, size: int) -> tuple[float, str]:
    start = time.perf_counter()
    digest = hashlib.sha256()
    with target.open("xb", buffering=0) as out:
        for chunk in pattern_chunks(size):
            digest.update(chunk)
            out.write(chunk)
        os.fsync(out.fileno())
    return time.perf_counter() - start, digest.hexdigest()


@dataclass
class Run:
    kb: Upload
    read_s: float  # cat of the stored attachment, its pages dropped first
    dd_s: float
    python_s: float
    python_sha256: str


# --------------------------------------------------------------------------- --profile

PROFILE_RATE = 100  # samples a second


def profiled_upload(client: httpx2.Client, data: Path, pid: int, size: int, out: Path) -> str:
    """One more upload sampled by py-spy (raw stacks, every thread): where the time goes."""
    venv_bin = str(Path(sys.executable).parent)
    spy_bin = shutil.which("py-spy", path=venv_bin) or shutil.which("py-spy")
    if spy_bin is None:
        return "--profile : py-spy absent (pip install py-spy dans le venv)."
    spy = subprocess.Popen(
        [spy_bin, "record", "--pid", str(pid), "--format", "raw", "--output", str(out),
         "--rate", str(PROFILE_RATE), "--threads", "--nonblocking", "--full-filenames"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # attached before the first byte
        os.sync()
        sent = upload(client, data, pid, size)
        sent.stored.unlink()
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
    if not out.exists():
        error = spy.stderr.read().decode(errors="replace")[-500:] if spy.stderr else ""
        return f"--profile : py-spy n'a rien écrit ({error})"
    return summarize_profile(out, sent)


def describe_frame(frame: str) -> str:
    """`f (/…/kb/helpdesk/x.py:152)` -> `f (kb/helpdesk/x.py:152) the source line`."""
    match = re.fullmatch(r"(.*) \((.*):(\d+)\)", frame)
    if match is None:
        return frame
    function, path, number = match[1], Path(match[2]), int(match[3])
    if function == "Runner.run":  # uvloop is compiled: its own work shows up on this frame
        return "uvloop, natif : epoll, lecture du socket, rappels"
    if "site-packages" in path.parts:
        shown = "/".join(path.parts[path.parts.index("site-packages") + 1 :])
    elif path.is_relative_to(ROOT):
        shown = str(path.relative_to(ROOT))
    else:
        shown = path.name
    label = f"{function} ({shown}:{number})"
    if path.is_relative_to(ROOT / "kb"):
        label += "  " + linecache.getline(str(path), number).strip()
    return label


def summarize_profile(raw: Path, sent: Upload) -> str:
    """Samples by thread, then the lines where each thread was found most often."""
    by_thread: dict[str, int] = {}
    by_line: dict[tuple[str, str], int] = {}
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        thread = frames[0].split(":", 1)[-1].strip()  # "thread (tid): name" -> name
        thread = "boucle (MainThread)" if thread == "MainThread" else thread
        by_thread[thread] = by_thread.get(thread, 0) + int(count)
        leaf = describe_frame(frames[-1])
        by_line[(thread, leaf)] = by_line.get((thread, leaf), 0) + int(count)
    lines = [
        "",
        f"Profil py-spy d'un envoi de plus ({sent.seconds:.2f} s, CPU du serveur "
        f"{sent.server_cpu_s:.2f} s ; {PROFILE_RATE} échantillons/s, fils non inactifs) :",
    ]
    for thread, count in sorted(by_thread.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {thread:<28} {count / PROFILE_RATE:6.2f} s")
    lines.append("  lignes les plus vues (s) :")
    for (thread, frame), count in sorted(by_line.items(), key=lambda kv: -kv[1])[:14]:
        lines.append(f"  {count / PROFILE_RATE:6.2f}  {thread[:22]:<22} {frame}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the report


def mb_s(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


def mb(kib: float) -> float:
    return kib * 1024 / 1e6


def report(size: int, runs: list[Run], idle_kib: int, reset: bool, pid_note: str, load: str) -> str:
    median = statistics.median
    rows: list[tuple[str, list[str], str, str]] = []  # name, per run, target, verdict

    def add(name: str, values: list[float], fmt: str, target: str = "", ok: bool | None = None):
        cells = [format(v, fmt) for v in values]
        if len(values) > 1:
            cells.append(format(median(values), fmt))
        verdict = "" if ok is None else ("OK" if ok else "MANQUÉ")
        rows.append((name, cells, target, verdict))

    kb_s = [r.kb.seconds for r in runs]
    dd_s = [r.dd_s for r in runs]
    ratios = [r.kb.seconds / r.dd_s for r in runs]
    # The sampled VmRSS can run past VmHWM (the kernel folds per-thread RSS counters in late).
    growth = [mb(max(r.kb.peak_kib, r.kb.sampled_peak_kib) - idle_kib) for r in runs]
    add("kb upload, s", kb_s, ".2f")
    add("kb upload, MB/s", [mb_s(size, s) for s in kb_s], ".0f")
    add("  dont corps envoyé (dernier octet), s", [r.kb.body_sent_s for r in runs], ".2f")
    add("  dont fin : fsync, ticket, réponse, s",
        [r.kb.seconds - r.kb.body_sent_s for r in runs], ".2f")  # fmt: skip
    add("  CPU du serveur pendant l'envoi, s", [r.kb.server_cpu_s for r in runs], ".2f")
    add("  serveur prêt mais sans CPU libre, s", [r.kb.server_wait_s for r in runs], ".2f")
    add("  CPU du client (ce processus), s", [r.kb.client_cpu_s for r in runs], ".2f")
    add("dd conv=fsync, s", dd_s, ".2f")
    add("dd conv=fsync, MB/s", [mb_s(size, s) for s in dd_s], ".0f")
    add("cat du fichier reçu (cache vidé), s", [r.read_s for r in runs], ".2f")
    add("cat du fichier reçu (cache vidé), MB/s", [mb_s(size, r.read_s) for r in runs], ".0f")
    add("python écriture+sha256+fsync, s", [r.python_s for r in runs], ".2f")
    add("python écriture+sha256+fsync, MB/s", [mb_s(size, r.python_s) for r in runs], ".0f")
    add("ratio kb/dd", ratios, ".2f", f"≤ {TARGET_RATIO}", median(ratios) <= TARGET_RATIO)
    add("ratio kb/python", [r.kb.seconds / r.python_s for r in runs], ".2f")
    add("serveur RSS au repos, MB", [mb(idle_kib)] * len(runs), ".1f")
    add("serveur pic VmHWM, MB", [mb(r.kb.peak_kib) for r in runs], ".1f")
    add("  pic VmRSS échantillonné (20 ms), MB", [mb(r.kb.sampled_peak_kib) for r in runs], ".1f")
    add("croissance max(pics) - repos, MB", growth, ".1f", f"< {TARGET_GROWTH_MB:.0f}",
        max(growth) < TARGET_GROWTH_MB)  # fmt: skip

    heads = [f"run {i}" for i in range(1, len(runs) + 1)] + (["médiane"] if len(runs) > 1 else [])
    name_w = max(len(r[0]) for r in rows)
    cell_w = max(9, *(len(c) for r in rows for c in r[1]))
    lines = [
        f"Envoi de {size / GIB:g} Gio ({size:,} octets) en une pièce jointe, kb serve --workers 1",
        f"Serveur mesuré : {pid_note}",
        "VmHWM remis à zéro après l'échauffement : "
        + ("oui" if reset else "non (clear_refs refusé)"),
        f"Charge de la machine (loadavg 1 min) : {load}",
        "",
        f"{'':<{name_w}}  " + "  ".join(f"{h:>{cell_w}}" for h in heads) + "  cible",
    ]
    for name, cells, target, verdict in rows:
        line = f"{name:<{name_w}}  " + "  ".join(f"{c:>{cell_w}}" for c in cells)
        lines.append(f"{line}  {target} {verdict}".rstrip())
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def bench_arguments(parser: argparse.ArgumentParser) -> None:
    """What bench.upload and bench.tus both take: size, runs, scratch folder, profile, logs."""
    parser.add_argument("--size-gb", type=float, default=2.0, help="taille envoyée, en Gio (2)")
    parser.add_argument("--runs", type=int, default=1, help="nombre de mesures (1)")
    parser.add_argument(
        "--dir", type=Path, default=None, help="dossier parent du dossier temporaire (tempfile)"
    )
    parser.add_argument("--profile", action="store_true",
                        help="un envoi de plus, échantillonné par py-spy")  # fmt: skip
    parser.add_argument("--keep-log", action="store_true", help="afficher le journal du serveur")
    parser.add_argument(
        "--tree", type=Path, default=None, help="le kb d'un autre arbre (un export de main)"
    )


def use_tree(tree: Path | None) -> None:
    """--tree: the server and the CLI run that tree's kb (on this tree's content)."""
    global TREE
    TREE = tree.resolve() if tree is not None else None


def whole_mib(size_gb: float) -> int:
    return int(size_gb * GIB) // MIB * MIB  # whole MiB: dd writes bs=1M blocks


def scratch_folder(name: str, size: int, parent: Path | None) -> Path | None:
    """A temporary folder with its data/ for `size` bytes sent twice (kb, then dd), or None
    (and why, on stderr) when the disk is too small for that."""
    tmp = Path(tempfile.mkdtemp(prefix=f"kb-bench-{name}-", dir=parent))
    (tmp / "data").mkdir()
    free = shutil.disk_usage(tmp / "data").free
    if free < 2 * size + GIB:
        shutil.rmtree(tmp)
        print(f"bench.{name} : {free / GIB:.1f} Gio libres dans {tmp.parent}, il en faut "
              f"{(2 * size + GIB) / GIB:.1f}", file=sys.stderr)  # fmt: skip
        return None
    return tmp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.upload", description=__doc__.split("\n")[0]
    )
    bench_arguments(parser)
    args = parser.parse_args(argv)
    use_tree(args.tree)
    size = whole_mib(args.size_gb)
    if size <= 0 or args.runs < 1:
        parser.error("--size-gb et --runs doivent être positifs")

    tmp = scratch_folder("upload", size, args.dir)
    if tmp is None:
        return 1
    data = tmp / "data"
    env = kb_env(tmp, limit=size + 64 * MIB)
    server: subprocess.Popen[bytes] | None = None
    signal.signal(signal.SIGTERM, _interrupted)  # a killed bench still stops its server
    try:
        print(f"Dossier temporaire : {tmp} (données, index, fichiers de dd et de python)",
              file=sys.stderr)  # fmt: skip
        subprocess.run(kb_command("build"), cwd=ROOT, env=env, check=True, capture_output=True)
        link = provision(tmp, env)
        port = free_port()
        server = start_server(tmp, env, port)
        base = f"http://{HOST}:{port}"
        wait_healthy(base, server, tmp / "serve.log")
        pid, pid_note = serving_pid(server, port)
        runs: list[Run] = []
        with httpx2.Client(base_url=base, timeout=60) as client:
            activate_and_log_in(client, link)
            warm = upload(client, data, pid, WARM_UP_BYTES)  # imports, thread pool, SQLite
            warm.stored.unlink()
            time.sleep(0.5)
            idle = proc_kib(pid, "VmRSS")
            load_before = os.getloadavg()[0]
            for i in range(1, args.runs + 1):
                reset = reset_peak(pid)
                os.sync()
                print(f"run {i} : envoi de {size / GIB:g} Gio à kb…", file=sys.stderr)
                sent = upload(client, data, pid, size)
                read_s = cat_cold(sent.stored)
                sent.stored.unlink()
                os.sync()
                print(f"run {i} : dd…", file=sys.stderr)
                dd_s = dd(data / "dd.bin", size)
                (data / "dd.bin").unlink()
                os.sync()
                print(f"run {i} : python écriture+sha256…", file=sys.stderr)
                py_s, digest = python_write_and_hash(data / "python.bin", size)
                (data / "python.bin").unlink()
                if digest != sent.sha256:
                    raise RuntimeError(f"SHA-256 : {sent.sha256} en base, {digest} attendu")
                runs.append(Run(sent, read_s, dd_s, py_s, digest))
            profile = (
                profiled_upload(client, data, pid, size, tmp / "profile.txt")
                if args.profile else ""
            )  # fmt: skip
        load = (
            f"{load_before:.1f} au début, {os.getloadavg()[0]:.1f} à la fin, {os.cpu_count()} CPU"
        )
        print(report(size, runs, idle, reset, pid_note, load))
        if profile:
            print(profile)
        if args.keep_log:
            print((tmp / "serve.log").read_text(encoding="utf-8", errors="replace"))
        return 0
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench.upload : interrompu (serveur arrêté, dossier supprimé)", file=sys.stderr)
        sys.exit(130)
