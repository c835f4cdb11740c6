"""Resumable uploads (tus 1.0) through ``kb serve``: a 2 GiB file, a resume, the hash state.

    python -m bench.tus [--size-gb 2] [--chunk-mb 8] [--runs 1] [--profile] [--dir /var/tmp]
                        [--keep-log]

Issue 8, "Proof", bench bullet, and "How" (the hash state). One table, every part measured in
the same run against the same server, on the same disk:

1. a 2 GiB file sent by tuspy (the Python tus client) in chunks: POST /api/uploads, then one
   PATCH a chunk, Upload-Offset advancing; then attached to a ticket (POST /tickets with
   ``televersement=<id>``), which moves the file. The total time, MB/s, the server's idle
   RSS, peak (VmHWM after a reset through /proc/<pid>/clear_refs, and VmRSS sampled every
   20 ms) and growth; ``dd conv=fsync`` of the same bytes in the data dir and the ratio; and,
   to tell what dominates, plain Python writing the same bytes with SHA-256 and an fsync at
   every chunk, as kb does. The attachment's size, SHA-256 and inode (moved, not copied) are
   checked;
2. a resume: another upload is cut in the middle of a chunk (an httpx2 PATCH whose body
   generator stops partway, so the connection is closed mid-body), HEAD gives the offset, and
   a new tuspy uploader resumes at once (a 409 or 423 answered while the server still holds
   the cut request is retried by tuspy and counted). The bytes sent twice are every body byte
   sent minus the file size (at most one chunk); the seconds lost are the time from the cut
   to the end of the first resumed PATCH, minus the time the progress made in it takes at
   part 1's PATCH rate. The stored SHA-256 is checked;
3. the hash state: bytes are hashed in memory as they arrive; a process that did not see them
   recomputes the SHA-256 once at completion by reading the file. Two more uploads, each
   with the server killed (SIGKILL, process group) and started again after the first chunk:
   the rest goes without hashing and the last PATCH reads 2 GiB back, once with the file in
   the page cache, once with it evicted (posix_fadvise DONTNEED; ``fincore`` shows what was
   resident). Against part 1: the server's CPU per GiB of the PATCHes before the last (with
   and without hashing), and the last PATCH's time.

The client's file is the pattern of bench.upload, made as tuspy reads it (no client file on
disk, the same bytes and SHA-256). Every server log is scanned for the statuses of the tus
requests and for tracebacks. The server group is stopped and the folder removed whatever
happens (errors, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2
from tusclient import client as tus_client
from tusclient.uploader import Uploader

from bench.upload import (
    GIB,
    HOST,
    MIB,
    PATTERN,
    PROFILE_RATE,
    ROOT,
    TARGET_GROWTH_MB,
    TARGET_RATIO,
    RssSampler,
    _interrupted,
    activate_and_log_in,
    bench_arguments,
    cat_cold,
    cpu_seconds,
    dd,
    free_port,
    kb_command,
    kb_env,
    mb,
    mb_s,
    pattern_chunks,
    proc_kib,
    provision,
    python_write_and_hash,
    reset_peak,
    run_queue_wait,
    schedstat,
    scratch_folder,
    serving_pid,
    start_server,
    stop_server,
    summarize_profile,
    ticket_attachment,
    use_tree,
    wait_healthy,
    whole_mib,
)

ENDPOINT = "/api/uploads"
TUS = {"Tus-Resumable": "1.0.0"}
WARM_UP_BYTES = 4 * MIB
CUT_EXTRA = 12_345  # the cut falls past the middle of a chunk, on no MiB boundary
RETRIES, RETRY_DELAY = 3, 0.2  # tuspy's, on the resumed uploader (it HEADs again each time)
SLOW_FACTOR = 5.0  # a PATCH this many times the median of its upload is reported


# --------------------------------------------------------------------------- the client side


def pattern_slice(start: int, end: int) -> bytes:
    """Bytes ``start:end`` of the pattern file: byte i is PATTERN[i % MIB], as bench.upload."""
    parts, pos = [], start
    while pos < end:
        inner = pos % MIB
        take = min(MIB - inner, end - pos)
        parts.append(PATTERN if take == MIB else PATTERN[inner : inner + take])
        pos += take
    return b"".join(parts)


class PatternFile:
    """What tuspy reads (seek, tell, read), made on the fly; counts every byte read to send."""

    def __init__(self, size: int) -> None:
        self.size, self.pos, self.read_bytes = size, 0, 0

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        self.pos = max(0, min(self.size, base + offset))
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        data = pattern_slice(self.pos, end)
        self.pos = end
        self.read_bytes += len(data)
        return data


@dataclass
class Patch:
    offset: int  # where the accepted request started
    end: int  # the server's offset after it
    seconds: float  # the whole upload_chunk(), retries included
    ended_at: float  # perf_counter()


class TimedUploader(Uploader):
    """tuspy's uploader, each PATCH timed and each refusal it retries kept."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.patches: list[Patch] = []
        self.refusals: list[str] = []
        super().__init__(*args, **kwargs)

    def upload_chunk(self) -> None:
        start = time.perf_counter()
        super().upload_chunk()
        ended = time.perf_counter()
        sent_at = int(self.request._request_headers["upload-offset"])  # the accepted attempt
        self.patches.append(Patch(sent_at, self.offset, ended - start, ended))

    def _retry_or_cry(self, error: Any) -> None:
        status = getattr(error, "status_code", None)
        content = getattr(error, "response_content", b"") or b""
        self.refusals.append(f"{status or type(error).__name__} {content[:160]!r}")
        super()._retry_or_cry(error)


def tus_headers(http: httpx2.Client) -> dict[str, str]:
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    return {"Cookie": cookie, "X-CSRF-Token": http.cookies["kb_csrf"]}


def new_upload(base: str, http: httpx2.Client, file: PatternFile, chunk: int) -> TimedUploader:
    up = TimedUploader(
        client=tus_client.TusClient(base + ENDPOINT, headers=tus_headers(http)),
        file_stream=file, chunk_size=chunk,
        metadata={"filename": "export.bin", "filetype": "application/octet-stream"},
    )  # fmt: skip
    up.set_url(up.create_url())
    up.offset = 0
    return up


def resumed_upload(
    base: str, http: httpx2.Client, file: PatternFile, chunk: int, url: str
) -> TimedUploader:
    """A new uploader on a known URL: tuspy asks the offset with HEAD, as after a reload."""
    return TimedUploader(
        client=tus_client.TusClient(base + ENDPOINT, headers=tus_headers(http)),
        file_stream=file, chunk_size=chunk, url=url, retries=RETRIES, retry_delay=RETRY_DELAY,
    )  # fmt: skip


@dataclass
class Drive:
    """The PATCHes of one uploader until the end: those before the last, and the last one."""

    seconds: float = 0.0
    cpu: float = 0.0  # the server's
    wait: float = 0.0  # the server's threads runnable but without a CPU
    bytes: int = 0
    last_s: float = 0.0
    last_cpu: float = 0.0
    last_wait: float = 0.0
    last_bytes: int = 0
    resident_before_last: str = ""


def drive(up: TimedUploader, pid: int, before_last: Callable[[], str] | None = None) -> Drive:
    out = Drive()
    cpu, sched, offset, start = cpu_seconds(pid), schedstat(pid), up.offset, time.perf_counter()
    while up.offset + up.get_request_length() < up.stop_at:
        up.upload_chunk()
    out.seconds, out.bytes = time.perf_counter() - start, up.offset - offset
    out.cpu, out.wait = cpu_seconds(pid) - cpu, run_queue_wait(sched, schedstat(pid))
    if up.offset < up.stop_at:
        if before_last is not None:
            out.resident_before_last = before_last()
        cpu, sched, offset, start = (
            cpu_seconds(pid),
            schedstat(pid),
            up.offset,
            (time.perf_counter()),
        )
        up.upload_chunk()
        out.last_s, out.last_bytes = time.perf_counter() - start, up.offset - offset
        out.last_cpu = cpu_seconds(pid) - cpu
        out.last_wait = run_queue_wait(sched, schedstat(pid))
    return out


def head_offset(http: httpx2.Client, url: str) -> int:
    response = http.head(url, headers=TUS)
    if response.status_code != 200:
        raise RuntimeError(f"HEAD {url} : {response.status_code}")
    return int(response.headers["upload-offset"])


def delete_upload(http: httpx2.Client, url: str, data: Path) -> None:
    response = http.delete(url, headers={**TUS, **tus_headers(http)})
    if response.status_code != 204:
        raise RuntimeError(f"DELETE {url} : {response.status_code} {response.text[:200]}")
    if (data / "uploads" / url.rsplit("/", 1)[1]).exists():
        raise RuntimeError(f"DELETE {url} : le fichier est resté")


def upload_row(data: Path, upload_id: str) -> tuple[int, str | None, bool]:
    with contextlib.closing(sqlite3.connect(data / "kb.sqlite3")) as db:
        row = db.execute(
            "SELECT length, sha256, completed_at IS NOT NULL FROM uploads WHERE id = ?",
            (upload_id,),
        ).fetchone()
    if row is None:
        raise RuntimeError(f"envoi {upload_id} absent de la base")
    return int(row[0]), row[1], bool(row[2])


def check_complete(data: Path, url: str, size: int, expected: str, what: str) -> None:
    length, sha256, completed = upload_row(data, url.rsplit("/", 1)[1])
    on_disk = (data / "uploads" / url.rsplit("/", 1)[1]).stat().st_size
    if not (completed and length == on_disk == size and sha256 == expected):
        raise RuntimeError(
            f"{what} : complet={completed}, {on_disk} octets sur disque, {length} annoncés, "
            f"SHA-256 {sha256} au lieu de {expected}"
        )


def attach(http: httpx2.Client, data: Path, upload_id: str, size: int, expected: str) -> Path:
    """POST /tickets naming the upload; checks the attachment, its SHA-256 and the move."""
    source = data / "uploads" / upload_id
    inode = source.stat().st_ino
    response = http.post(
        "/tickets",
        data={
            "csrf": http.cookies["kb_csrf"],
            "jeton": os.urandom(8).hex(),
            "categorie": "abonnement",
            "sujet": "Banc d'essai : envoi reprenable d'un gros fichier",
            "message": "Voici l'export.",
            "televersement": upload_id,
        },
        files=[("fichiers", ("", b"", "application/octet-stream"))],
        timeout=None,
    )
    reference, stored_as, recorded, sha256 = ticket_attachment(response, data, "ticket")
    with contextlib.closing(sqlite3.connect(data / "kb.sqlite3")) as db:
        left = db.execute("SELECT count(*) FROM uploads WHERE id = ?", (upload_id,)).fetchone()
    stored = data / "attachments" / stored_as
    if not (recorded == stored.stat().st_size == size and sha256 == expected):
        raise RuntimeError(
            f"{reference} : {recorded} octets, SHA-256 {sha256} ({expected} attendu)"
        )
    if stored.stat().st_ino != inode or source.exists() or left[0]:
        raise RuntimeError(f"{reference} : le fichier n'a pas été déplacé (copie ?)")
    return stored


# --------------------------------------------------------------------------- the server


@dataclass
class Server:
    """The running ``kb serve``; replaced on each restart, stopped in the end whatever happens."""

    tmp: Path
    env: dict[str, str]
    port: int
    process: subprocess.Popen[bytes] | None = None
    pid: int = 0
    note: str = ""
    logs: list[Path] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> float:
        log = self.tmp / "serve.log"
        if log.exists():  # start_server truncates it: keep the previous one's
            kept = self.tmp / f"serve-{len(self.logs)}.log"
            log.rename(kept)
            self.logs.append(kept)
        start = time.perf_counter()
        self.process = start_server(self.tmp, self.env, self.port)
        wait_healthy(self.base, self.process, log)
        self.pid, self.note = serving_pid(self.process, self.port)
        return time.perf_counter() - start

    def kill_and_restart(self) -> float:
        """SIGKILL to the group (no shutdown of any kind), then a new server: seconds down."""
        assert self.process is not None
        start = time.perf_counter()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.start()
        return time.perf_counter() - start

    def stop(self) -> None:
        if self.process is not None:
            stop_server(self.process)

    def all_logs(self) -> list[Path]:
        return [*self.logs, self.tmp / "serve.log"]


ACCESS = re.compile(r'"(HEAD|PATCH|POST|DELETE) (/api/uploads\S*|/tickets) HTTP/[\d.]+" (\d{3})')


def log_summary(server: Server) -> tuple[str, list[str]]:
    """Statuses of the tus and ticket requests in every server log, and their tracebacks."""
    statuses: Counter[str] = Counter()
    problems = []
    for path in server.all_logs():
        with contextlib.suppress(OSError):
            text = path.read_text(encoding="utf-8", errors="replace")
            for method, target, status in ACCESS.findall(text):
                where = target if target == "/tickets" or target == ENDPOINT else ENDPOINT + "/…"
                statuses[f"{method} {where} {status}"] += 1
            for match in re.finditer(r"Traceback \(most recent call last\):", text):
                tail = text[match.start() : match.start() + 3000].splitlines()
                last = next((ln for ln in reversed(tail[:40]) if re.match(r"\w+(\.\w+)*: ", ln)),
                            tail[-1] if tail else "")  # fmt: skip
                problems.append(f"{path.name} : traceback, {last.strip()[:200]}")
    summary = ", ".join(f"{k} ×{v}" for k, v in sorted(statuses.items()))
    odd = [k for k in statuses if not re.search(r" (20[14]|200|303)$", k)]
    problems += [f"journal du serveur : {k} ×{statuses[k]}" for k in sorted(odd)]
    return summary, problems


# --------------------------------------------------------------------------- the measures


def sha256_in_memory(size: int) -> tuple[float, str]:
    """The pattern's SHA-256 in this process: the expected digest, and what hashing costs."""
    start, digest = time.perf_counter(), hashlib.sha256()
    for chunk in pattern_chunks(size):
        digest.update(chunk)
    return time.perf_counter() - start, digest.hexdigest()


def python_chunked(target: Path, size: int, chunk: int) -> float:
    """The same bytes written with SHA-256 and an fsync at every chunk, as kb's PATCHes do."""
    start, digest = time.perf_counter(), hashlib.sha256()
    written, next_sync = 0, chunk
    with target.open("xb", buffering=0) as out:
        for piece in pattern_chunks(size):
            digest.update(piece)
            out.write(piece)
            written += len(piece)
            if written >= next_sync or written == size:
                os.fsync(out.fileno())
                next_sync += chunk
    return time.perf_counter() - start


def resident(path: Path) -> str:
    """How much of the file the page cache holds (util-linux fincore), for the report."""
    fincore = shutil.which("fincore")
    if fincore is None:
        return "?"
    done = subprocess.run([fincore, "--bytes", "--noheadings", "--output", "RES", str(path)],
                          capture_output=True, text=True)  # fmt: skip
    try:
        return f"{100 * int(done.stdout.split()[0]) / path.stat().st_size:.0f} %"
    except (ValueError, IndexError, ZeroDivisionError):
        return "?"


def evict(path: Path) -> str:
    """Drop the file's clean pages from the page cache (no root needed), as after a long while."""
    with open(path, "rb") as handle:
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    return resident(path)


def slow_patches(up: TimedUploader, what: str, but_last: bool = False) -> list[str]:
    patches = up.patches[:-1] if but_last else up.patches
    if len(patches) < 3:
        return []
    median = statistics.median(p.seconds for p in patches)
    return [
        f"{what} : PATCH à l'octet {p.offset:,} en {p.seconds:.2f} s ({p.seconds / median:.0f}×"
        f" la médiane {median:.3f} s)"
        for p in patches
        if p.seconds > SLOW_FACTOR * median and p.seconds > 0.2
    ]


@dataclass
class Clean:
    """Part 1: the upload, the ticket, the baselines, the memory."""

    total_s: float
    create_s: float
    patches: Drive
    patch_count: int
    slowest_s: float
    attach_s: float
    server_cpu_s: float
    server_wait_s: float
    client_cpu_s: float
    idle_kib: int
    peak_kib: int
    sampled_kib: int
    dd_s: float
    read_s: float  # cat of the stored attachment, its pages dropped first
    python_s: float  # an fsync at every chunk
    python_once_s: float  # one fsync at the end
    reset: bool
    pid_note: str

    @property
    def patch_rate(self) -> float:  # bytes a second, PATCHes only
        return (self.patches.bytes + self.patches.last_bytes) / (
            self.patches.seconds + self.patches.last_s
        )


def part_clean(server: Server, http: httpx2.Client, data: Path, size: int, chunk: int,
               expected: str, notes: list[str]) -> Clean:  # fmt: skip
    # Warm-up: imports, thread pool, SQLite, one ticket; then the idle RSS and a fresh peak.
    warm_file = PatternFile(WARM_UP_BYTES)
    warm = new_upload(server.base, http, warm_file, chunk)
    drive(warm, server.pid)
    _, warm_sha = sha256_in_memory(WARM_UP_BYTES)
    attach(http, data, warm.url.rsplit("/", 1)[1], WARM_UP_BYTES, warm_sha).unlink()
    time.sleep(0.5)
    idle = proc_kib(server.pid, "VmRSS")
    reset = reset_peak(server.pid)
    os.sync()
    print(f"  1. envoi tus de {size / GIB:g} Gio puis ticket…", file=sys.stderr)
    file = PatternFile(size)
    cpu_before, client_before = cpu_seconds(server.pid), time.process_time()
    sched_before = schedstat(server.pid)
    with RssSampler(server.pid) as sampler:
        start = time.perf_counter()
        up = new_upload(server.base, http, file, chunk)
        created = time.perf_counter()
        patches = drive(up, server.pid)
        uploaded = time.perf_counter()
        stored = attach(http, data, up.url.rsplit("/", 1)[1], size, expected)
        total = time.perf_counter() - start
    server_cpu = cpu_seconds(server.pid) - cpu_before
    server_wait = run_queue_wait(sched_before, schedstat(server.pid))
    client_cpu = time.process_time() - client_before
    peak = proc_kib(server.pid, "VmHWM")
    notes += slow_patches(up, "1.")
    notes += [f"1. : {r}" for r in up.refusals]
    if file.read_bytes != size:
        notes.append(f"1. : {file.read_bytes:,} octets lus par tuspy pour {size:,}")
    read_s = cat_cold(stored)
    stored.unlink()
    os.sync()
    print("  1. dd, python…", file=sys.stderr)
    dd_s = dd(data / "dd.bin", size)
    (data / "dd.bin").unlink()
    os.sync()
    python_s = python_chunked(data / "python.bin", size, chunk)
    (data / "python.bin").unlink()
    os.sync()
    python_once_s, _ = python_write_and_hash(data / "python.bin", size)
    (data / "python.bin").unlink()
    return Clean(
        total_s=total, create_s=created - start, patches=patches, patch_count=len(up.patches),
        slowest_s=max(p.seconds for p in up.patches), attach_s=total - (uploaded - start),
        server_cpu_s=server_cpu, server_wait_s=server_wait, client_cpu_s=client_cpu,
        idle_kib=idle, peak_kib=peak, sampled_kib=sampler.peak_kib, dd_s=dd_s, read_s=read_s,
        python_s=python_s, python_once_s=python_once_s, reset=reset, pid_note=server.note,
    )  # fmt: skip


@dataclass
class Resume:
    """Part 2: a chunk cut in the middle, HEAD, resume."""

    chunk_index: int
    chunk_len: int
    cut_sent: int  # body bytes sent in the cut PATCH
    head_kept: int  # bytes of the cut chunk the first HEAD reported
    kept: int  # bytes of it the server had when the resume was accepted
    twice: int  # every body byte sent minus the file size
    refusals: list[str]
    cut_s: float
    head_s: float
    window_s: float
    lost_s: float
    total_s: float  # create to complete, no ticket
    last_s: float
    growth_kib: int
    server_cpu_s: float
    server_wait_s: float


class _Dropped(Exception):
    """The client stops sending: its connection is closed in the middle of the body."""


def part_resume(server: Server, http: httpx2.Client, data: Path, size: int, chunk: int,
                expected: str, rate: float, notes: list[str]) -> Resume:  # fmt: skip
    print("  2. reprise après une coupure au milieu d'un PATCH…", file=sys.stderr)
    idle = proc_kib(server.pid, "VmRSS")
    reset_peak(server.pid)
    os.sync()
    file = PatternFile(size)
    cpu_before, sched_before = cpu_seconds(server.pid), schedstat(server.pid)
    start = time.perf_counter()
    up = new_upload(server.base, http, file, chunk)
    middle = size // 2 // chunk * chunk
    while up.offset < middle:
        up.upload_chunk()
    offset0, url = up.offset, up.url
    chunk_len = min(chunk, size - offset0)
    cut = min(chunk_len // 2 + CUT_EXTRA, chunk_len - 1)
    reached: list[int] = []

    def body() -> Iterator[bytes]:
        file.seek(offset0)
        while file.tell() < offset0 + cut:
            yield file.read(min(MIB, offset0 + cut - file.tell()))
        reached.append(file.tell() - offset0)
        raise _Dropped

    headers = {**TUS, **tus_headers(http), "Upload-Offset": str(offset0),
               "Content-Type": "application/offset+octet-stream",
               "Content-Length": str(chunk_len)}  # fmt: skip
    cut_start = time.perf_counter()
    try:
        answer = http.patch(url, content=body(), headers=headers, timeout=None)
        raise RuntimeError(f"le PATCH coupé a reçu une réponse : {answer.status_code}")
    except _Dropped:
        pass
    except httpx2.HTTPError as exc:  # the client's own failure, wrapping the generator's
        if not reached:
            raise RuntimeError(f"le PATCH coupé a échoué avant la coupure : {exc!r}") from exc
    cut_end = time.perf_counter()
    head = head_offset(http, url)
    head_end = time.perf_counter()
    resumed = resumed_upload(server.base, http, file, chunk, url)
    resumed.upload_chunk()  # tuspy asked the offset with its own HEAD, retries if refused
    first_patch = resumed.patches[0]
    while resumed.offset < size:
        resumed.upload_chunk()
    total = time.perf_counter() - start
    server_cpu = cpu_seconds(server.pid) - cpu_before
    server_wait = run_queue_wait(sched_before, schedstat(server.pid))
    growth = proc_kib(server.pid, "VmHWM") - idle
    check_complete(data, url, size, expected, "2.")
    last_s = resumed.patches[-1].seconds
    kept = first_patch.offset - offset0
    window = first_patch.ended_at - cut_start
    progress = first_patch.end - offset0
    notes += [f"2. reprise : {r}" for r in resumed.refusals]
    if head != first_patch.offset:
        notes.append(
            f"2. : le HEAD envoyé {1000 * (head_end - cut_end):.0f} ms après la coupure a donné "
            f"{head - offset0:,} octets gardés du morceau coupé, la reprise a été acceptée à "
            f"{kept:,} : le serveur écrivait encore la fin du PATCH coupé (verrou tenu), un "
            "PATCH au décalage du HEAD aurait reçu 409 ou 423"
        )
    notes += slow_patches(up, "2. avant la coupure") + slow_patches(resumed, "2. reprise")
    delete_upload(http, url, data)
    return Resume(
        chunk_index=offset0 // chunk + 1, chunk_len=chunk_len, cut_sent=reached[0] if reached
        else cut, head_kept=head - offset0, kept=kept, twice=file.read_bytes - size,
        refusals=resumed.refusals, cut_s=cut_end - cut_start, head_s=head_end - cut_end,
        window_s=window, lost_s=window - progress / rate, total_s=total, last_s=last_s,
        growth_kib=growth, server_cpu_s=server_cpu, server_wait_s=server_wait,
    )  # fmt: skip


@dataclass
class Recompute:
    """Part 3: after a restart the rest is not hashed, and the last PATCH reads the file."""

    down_s: float
    patches: Drive


def part_recompute(server: Server, http: httpx2.Client, data: Path, size: int, chunk: int,
                   expected: str, cold: bool, notes: list[str]) -> Recompute:  # fmt: skip
    label = "froid" if cold else "chaud"
    print(f"  3. redémarrage après le 1er morceau, recalcul à la fin (cache {label})…",
          file=sys.stderr)  # fmt: skip
    file = PatternFile(size)
    up = new_upload(server.base, http, file, chunk)
    up.upload_chunk()  # hashed in memory by the process about to die
    down = server.kill_and_restart()
    url = up.url
    stored = data / "uploads" / url.rsplit("/", 1)[1]
    resumed = resumed_upload(server.base, http, file, chunk, url)
    if resumed.offset != up.offset:
        notes.append(f"3. : reprise à {resumed.offset:,} après le redémarrage, {up.offset:,} "
                     "envoyés avant")  # fmt: skip
    os.sync()
    patches = drive(resumed, server.pid, (lambda: evict(stored)) if cold else
                    (lambda: resident(stored)))  # fmt: skip
    check_complete(data, url, size, expected, f"3. ({label})")
    notes += [f"3. ({label}) : {r}" for r in resumed.refusals]
    notes += slow_patches(resumed, f"3. ({label})", but_last=True)[:3]
    delete_upload(http, url, data)
    return Recompute(down, patches)


def profiled(server: Server, http: httpx2.Client, data: Path, size: int, chunk: int,
             out: Path) -> str:  # fmt: skip
    """One more upload as in part 1 (no ticket), sampled by py-spy: where the server's time goes."""
    venv_bin = str(Path(sys.executable).parent)
    spy_bin = shutil.which("py-spy", path=venv_bin) or shutil.which("py-spy")
    if spy_bin is None:
        return "--profile : py-spy absent (pip install py-spy dans le venv)."
    print("  profil : un envoi de plus sous py-spy…", file=sys.stderr)
    spy = subprocess.Popen(
        [spy_bin, "record", "--pid", str(server.pid), "--format", "raw", "--output", str(out),
         "--rate", str(PROFILE_RATE), "--threads", "--nonblocking", "--full-filenames"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # attached before the first byte
        os.sync()
        cpu, start = cpu_seconds(server.pid), time.perf_counter()
        up = new_upload(server.base, http, PatternFile(size), chunk)
        drive(up, server.pid)
        seconds, used = time.perf_counter() - start, cpu_seconds(server.pid) - cpu
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
    delete_upload(http, up.url, data)  # outside the profile: unlinking 2 GiB is not the upload's
    if not out.exists():
        error = spy.stderr.read().decode(errors="replace")[-500:] if spy.stderr else ""
        return f"--profile : py-spy n'a rien écrit ({error})"
    return summarize_profile(out, SimpleNamespace(seconds=seconds, server_cpu_s=used))  # type: ignore[arg-type]


@dataclass
class Run:
    clean: Clean
    resume: Resume
    warm: Recompute
    cold: Recompute
    hash_s: float


# --------------------------------------------------------------------------- the report


def report(size: int, chunk: int, runs: list[Run], load: str, logs: str, notes: list[str]) -> str:
    median = statistics.median
    rows: list[tuple[str, list[str], str, str]] = []
    gib = size / GIB

    def title(text: str) -> None:
        rows.append((text, [], "", ""))

    def add(name: str, values: list[float], fmt: str, target: str = "", ok: bool | None = None):
        cells = [format(v, fmt) for v in values]
        if len(values) > 1:
            cells.append(format(median(values), fmt))
        rows.append((name, cells, target, "" if ok is None else ("OK" if ok else "MANQUÉ")))

    def text(name: str, values: list[str]) -> None:
        rows.append((name, values + ([""] if len(values) > 1 else []), "", ""))

    c = [r.clean for r in runs]
    title(f"1. {gib:g} Gio par tus en morceaux de {chunk // MIB} Mio (tuspy), puis joint")
    add("total : création, PATCH, ticket, s", [x.total_s for x in c], ".2f")
    add("total, MB/s", [mb_s(size, x.total_s) for x in c], ".0f")
    add("  dont création (POST), s", [x.create_s for x in c], ".3f")
    add("  dont PATCH, s", [x.patches.seconds + x.patches.last_s for x in c], ".2f")
    add("  nombre de PATCH", [x.patch_count for x in c], ".0f")
    add("  PATCH le plus lent, s", [x.slowest_s for x in c], ".3f")
    add("  dont ticket (POST /tickets, déplacement), s", [x.attach_s for x in c], ".3f")
    add("  CPU du serveur, s", [x.server_cpu_s for x in c], ".2f")
    add("  serveur prêt mais sans CPU libre, s", [x.server_wait_s for x in c], ".2f")
    add("  CPU du client (tuspy, requests, ce processus), s", [x.client_cpu_s for x in c], ".2f")
    add("dd conv=fsync, s", [x.dd_s for x in c], ".2f")
    add("dd conv=fsync, MB/s", [mb_s(size, x.dd_s) for x in c], ".0f")
    add("cat du fichier reçu (cache vidé), s", [x.read_s for x in c], ".2f")
    add("cat du fichier reçu (cache vidé), MB/s", [mb_s(size, x.read_s) for x in c], ".0f")
    add("python écriture+sha256, un fsync à la fin, s", [x.python_once_s for x in c], ".2f")
    add(f"python écriture+sha256, fsync tous les {chunk // MIB} Mio, s",
        [x.python_s for x in c], ".2f")  # fmt: skip
    ratios = [x.total_s / x.dd_s for x in c]
    add("ratio kb/dd", ratios, ".2f", f"≤ {TARGET_RATIO}", median(ratios) <= TARGET_RATIO)
    add("ratio kb/python un fsync", [x.total_s / x.python_once_s for x in c], ".2f")
    add("ratio kb/python fsync par morceau", [x.total_s / x.python_s for x in c], ".2f")
    add("serveur RSS au repos, MB", [mb(x.idle_kib) for x in c], ".1f")
    add("serveur pic VmHWM, MB", [mb(x.peak_kib) for x in c], ".1f")
    add("  pic VmRSS échantillonné (20 ms), MB", [mb(x.sampled_kib) for x in c], ".1f")
    growth = [mb(max(x.peak_kib, x.sampled_kib) - x.idle_kib) for x in c]
    add("croissance max(pics) - repos, MB", growth, ".1f", f"< {TARGET_GROWTH_MB:.0f}",
        max(growth) < TARGET_GROWTH_MB)  # fmt: skip

    r = [x.resume for x in runs]
    title("2. Reprise : connexion fermée au milieu du corps d'un PATCH")
    text("morceau coupé (n°), octets envoyés / du morceau",
         [f"{x.chunk_index} : {x.cut_sent:,}/{x.chunk_len:,}" for x in r])  # fmt: skip
    text("HEAD aussitôt : octets du morceau gardés", [f"{x.head_kept:,}" for x in r])
    text("reprise acceptée à : octets du morceau gardés", [f"{x.kept:,}" for x in r])
    add("tentatives de reprise refusées (409/423…)", [len(x.refusals) for x in r], ".0f")
    twice = [x.twice / MIB for x in r]
    add("octets envoyés deux fois (envoyés − taille), Mio", twice, ".2f",
        f"≤ {chunk // MIB} (un morceau)", max(twice) <= chunk / MIB)  # fmt: skip
    add("  dont fin du PATCH coupé non gardée, Mio",
        [(x.cut_sent - x.kept) / MIB for x in r], ".2f")  # fmt: skip
    add("  dont PATCH refusés pendant la reprise, Mio",
        [(x.twice - (x.cut_sent - x.kept)) / MIB for x in r], ".2f")  # fmt: skip
    add("secondes perdues (fenêtre − progrès au débit de 1.)", [x.lost_s for x in r], ".3f")
    add("  fenêtre : coupure → fin du 1er PATCH repris, s", [x.window_s for x in r], ".3f")
    add("  PATCH coupé, s", [x.cut_s for x in r], ".3f")
    add("  HEAD après la coupure, s", [x.head_s for x in r], ".3f")
    add("envoi avec reprise, création → complet, s", [x.total_s for x in r], ".2f")
    no_cut = [x.create_s + x.patches.seconds + x.patches.last_s for x in c]
    add("  même envoi sans coupure (1., sans ticket), s", no_cut, ".2f")
    add("  différence (bruit de la machine compris), s",
        [x.total_s - n for x, n in zip(r, no_cut, strict=True)], ".2f")  # fmt: skip
    add("  CPU du serveur, s", [x.server_cpu_s for x in r], ".2f")
    add("  serveur prêt mais sans CPU libre, s", [x.server_wait_s for x in r], ".2f")
    add("  dernier PATCH (hachage gardé malgré la coupure), s", [x.last_s for x in r], ".3f")
    add(
        "  croissance mémoire (VmHWM − RSS avant), MB",
        [mb(x.growth_kib) for x in r],
        ".1f",
        f"< {TARGET_GROWTH_MB:.0f}",
        max(mb(x.growth_kib) for x in r) < TARGET_GROWTH_MB,
    )

    w, k = [x.warm for x in runs], [x.cold for x in runs]
    cmp = hash_costs(runs, gib)
    title("3. État du hachage : au fil de l'eau, ou recalculé une fois à la fin")
    title("   PATCH avant le dernier : hachés (1.) / non hachés (après redémarrage, cache chaud)")
    add("  CPU du serveur, hachés, s/Gio", [per_gib(x.patches.cpu, x.patches) for x in c], ".2f")
    add("  CPU du serveur, non hachés, s/Gio",
        [per_gib(x.patches.cpu, x.patches) for x in w], ".2f")  # fmt: skip
    add("  temps, hachés, s/Gio", [per_gib(x.patches.seconds, x.patches) for x in c], ".2f")
    add("  temps, non hachés, s/Gio", [per_gib(x.patches.seconds, x.patches) for x in w], ".2f")
    add("  sans CPU libre, hachés, s/Gio", [per_gib(x.patches.wait, x.patches) for x in c], ".2f")
    add("  sans CPU libre, non hachés, s/Gio",
        [per_gib(x.patches.wait, x.patches) for x in w], ".2f")  # fmt: skip
    title("   dernier PATCH : hachage gardé (1.) / recalcul du fichier entier (3.)")
    add("  hachage gardé en mémoire, s", [x.patches.last_s for x in c], ".3f")
    add("    CPU du serveur, s", [x.patches.last_cpu for x in c], ".2f")
    add("    sans CPU libre, s", [x.patches.last_wait for x in c], ".2f")
    add("  recalcul, cache chaud, s", [x.patches.last_s for x in w], ".3f")
    text("    fichier dans le cache avant", [x.patches.resident_before_last for x in w])
    add("    CPU du serveur, s", [x.patches.last_cpu for x in w], ".2f")
    add("    sans CPU libre, s", [x.patches.last_wait for x in w], ".2f")
    add("  recalcul, cache froid, s", [x.patches.last_s for x in k], ".3f")
    text("    fichier dans le cache avant (après DONTNEED)",
         [x.patches.resident_before_last for x in k])  # fmt: skip
    add("    CPU du serveur, s", [x.patches.last_cpu for x in k], ".2f")
    add("    sans CPU libre, s", [x.patches.last_wait for x in k], ".2f")
    title(f"   bilan pour {gib:g} Gio")
    add("  hacher au fil de l'eau, CPU du serveur, s", cmp["incremental_cpu"], ".2f")
    add("  hacher au fil de l'eau, temps, s (bruyant)", cmp["incremental_s"], ".2f")
    add("  recalculer à la fin, CPU du serveur, chaud, s", cmp["warm_cpu"], ".2f")
    add("  recalculer à la fin, temps, chaud, s", cmp["warm_s"], ".2f")
    add("  recalculer à la fin, CPU du serveur, froid, s", cmp["cold_cpu"], ".2f")
    add("  recalculer à la fin, temps, froid, s", cmp["cold_s"], ".2f")
    add(f"  SHA-256 de {gib:g} Gio en mémoire (ce processus), s",
        [x.hash_s for x in runs], ".2f")  # fmt: skip
    add("redémarrage SIGKILL → /healthz (chaud), s", [x.down_s for x in w], ".2f")
    add("redémarrage SIGKILL → /healthz (froid), s", [x.down_s for x in k], ".2f")

    heads = [f"run {i}" for i in range(1, len(runs) + 1)] + (["médiane"] if len(runs) > 1 else [])
    name_w = max(len(x[0]) for x in rows if x[1])
    cell_w = max(9, *(len(v) for x in rows for v in x[1]))
    lines = [
        f"tus : {gib:g} Gio ({size:,} octets), morceaux de {chunk // MIB} Mio, "
        "kb serve --workers 1",
        f"Serveur mesuré (1.) : {runs[-1].clean.pid_note}",
        "VmHWM remis à zéro après l'échauffement : "
        + ("oui" if all(x.clean.reset for x in runs) else "non (clear_refs refusé)"),
        f"Charge de la machine (loadavg 1 min) : {load}",
        "",
        f"{'':<{name_w}}  " + "  ".join(f"{h:>{cell_w}}" for h in heads) + "  cible",
    ]
    for name, cells, target, verdict in rows:
        if not cells:
            lines.append(name)
            continue
        line = f"{name:<{name_w}}  " + "  ".join(f"{v:>{cell_w}}" for v in cells)
        lines.append(f"{line}  {target} {verdict}".rstrip())
    lines += ["", decision(runs, gib), "", f"Journal du serveur : {logs}"]
    lines.append("Anomalies : " + ("aucune" if not notes else ""))
    lines += [f"  - {n}" for n in notes]
    return "\n".join(lines)


def per_gib(value: float, drive: Drive) -> float:
    return value / (drive.bytes / GIB)


def hash_costs(runs: list[Run], gib: float) -> dict[str, list[float]]:
    """Hashing as the bytes arrive (hashed minus not hashed, per GiB, times the size) against
    recomputing once at the end (the last PATCH that reads the file minus part 1's)."""
    out: dict[str, list[float]] = {k: [] for k in ("incremental_cpu", "incremental_s", "warm_cpu",
                                                  "warm_s", "cold_cpu", "cold_s")}  # fmt: skip
    for run in runs:
        c, w, k = run.clean.patches, run.warm.patches, run.cold.patches
        out["incremental_cpu"].append((per_gib(c.cpu, c) - per_gib(w.cpu, w)) * gib)
        out["incremental_s"].append((per_gib(c.seconds, c) - per_gib(w.seconds, w)) * gib)
        out["warm_cpu"].append(w.last_cpu - c.last_cpu)
        out["warm_s"].append(w.last_s - c.last_s)
        out["cold_cpu"].append(k.last_cpu - c.last_cpu)
        out["cold_s"].append(k.last_s - c.last_s)
    return out


def decision(runs: list[Run], gib: float) -> str:
    m = {k: statistics.median(v) for k, v in hash_costs(runs, gib).items()}
    kept_last = statistics.median(r.clean.patches.last_s for r in runs)
    incremental, warm = m["incremental_cpu"], m["warm_cpu"]
    if abs(incremental - warm) <= 0.25 * max(incremental, warm):
        cpu = "le même travail (un SHA-256 du fichier), à égalité au bruit près"
    elif incremental < warm:
        cpu = "moins cher au fil de l'eau"
    else:
        cpu = "moins cher à la fin (cache chaud)"
    return (
        f"Décision : en CPU du serveur, hacher {gib:g} Gio au fil de l'eau coûte "
        f"{incremental:.2f} s, recalculer une fois à la fin {warm:.2f} s (cache chaud) et "
        f"{m['cold_cpu']:.2f} s (cache froid, le fichier relu) : {cpu}. Mais au fil de l'eau ce "
        "coût est payé pendant que les octets arrivent (un vrai client, lent, fait attendre le "
        f"serveur) et le dernier PATCH répond en {kept_last:.2f} s ; le recalcul l'ajoute après "
        f"le dernier octet, {m['warm_s']:.2f} s (chaud) à {m['cold_s']:.2f} s (froid) que "
        "l'utilisateur attend à 100 %, en relisant le fichier. Et un état hashlib ne se "
        "sérialise pas (TypeError: cannot pickle '_hashlib.HASH' object) : le faire survivre à "
        "un redémarrage voudrait un SHA-256 à nous. D'où : hacher en mémoire au fil de l'eau, "
        "et ne recalculer, une fois, qu'après un redémarrage."
    )


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tus", description=__doc__.split("\n")[0])
    bench_arguments(parser)
    parser.add_argument("--chunk-mb", type=int, default=8, help="taille d'un PATCH, en Mio (8)")
    args = parser.parse_args(argv)
    use_tree(args.tree)
    size = whole_mib(args.size_gb)
    chunk = args.chunk_mb * MIB
    if size <= 0 or args.runs < 1 or chunk <= 0 or size < 4 * chunk:
        parser.error("--size-gb, --chunk-mb, --runs positifs, et au moins 4 morceaux")

    tmp = scratch_folder("tus", size, args.dir)
    if tmp is None:
        return 1
    data = tmp / "data"
    server = Server(tmp, kb_env(tmp, limit=size + 64 * MIB), free_port())
    signal.signal(signal.SIGTERM, _interrupted)  # a killed bench still stops its server
    try:
        print(f"Dossier temporaire : {tmp} (données, index, fichiers de dd et de python)",
              file=sys.stderr)  # fmt: skip
        subprocess.run(kb_command("build"), cwd=ROOT, env=server.env, check=True,
                       capture_output=True)  # fmt: skip
        link = provision(tmp, server.env)
        server.start()
        runs: list[Run] = []
        notes: list[str] = []
        load_before = os.getloadavg()[0]
        with httpx2.Client(base_url=server.base, timeout=120) as http:
            activate_and_log_in(http, link)
            for i in range(1, args.runs + 1):
                print(f"run {i} : SHA-256 attendu…", file=sys.stderr)
                hash_s, expected = sha256_in_memory(size)
                clean = part_clean(server, http, data, size, chunk, expected, notes)
                resume = part_resume(server, http, data, size, chunk, expected,
                                     clean.patch_rate, notes)  # fmt: skip
                warm = part_recompute(server, http, data, size, chunk, expected, False, notes)
                cold = part_recompute(server, http, data, size, chunk, expected, True, notes)
                runs.append(Run(clean, resume, warm, cold, hash_s))
            profile = (
                profiled(server, http, data, size, chunk, tmp / "profile.txt")
                if args.profile else ""
            )  # fmt: skip
        load = (
            f"{load_before:.1f} au début, {os.getloadavg()[0]:.1f} à la fin, {os.cpu_count()} CPU"
        )
        logs, problems = log_summary(server)
        print(report(size, chunk, runs, load, logs, notes + problems))
        if profile:
            print(profile)
        if args.keep_log:
            for path in server.all_logs():
                print(f"--- {path.name}")
                print(path.read_text(encoding="utf-8", errors="replace"))
        return 0
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench.tus : interrompu (serveur arrêté, dossier supprimé)", file=sys.stderr)
        sys.exit(130)
