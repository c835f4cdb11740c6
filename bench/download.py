"""An attachment of several GiB downloaded from ``kb serve``, beside ``cat FILE > /dev/null``.

    python -m bench.download [--size-gb 2] [--runs 3] [--dir /var/tmp] [--tree DIR]

The attachment is sent once (the multipart path of bench.upload); then, each run, with the
file's pages dropped from the page cache before each step (posix_fadvise DONTNEED, so every
step starts cold, as a file uploaded long ago): ``cat`` of the stored file, then curl as a
browser asks (``Accept-Encoding: gzip, deflate, br``), then curl asking for the identity
encoding, then a resumed download (``curl --continue-at`` past the middle, the rest only).
Each download records its time, the bytes received, whether it came with Content-Length and
Content-Encoding, the server's CPU seconds and its peak RSS growth. Medians and spreads are
printed with the ratio to ``cat``; ``--tree`` measures another source tree's kb (an export of
main: before and after in one sitting). The server is stopped and the folder removed whatever
happens.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx2

from bench.tus import evict
from bench.upload import (
    GIB,
    HOST,
    ROOT,
    _interrupted,
    activate_and_log_in,
    bench_arguments,
    cat_cold,
    cpu_seconds,
    free_port,
    kb_command,
    kb_env,
    proc_kib,
    provision,
    reset_peak,
    scratch_folder,
    serving_pid,
    start_server,
    stop_server,
    upload,
    use_tree,
    wait_healthy,
    whole_mib,
)

BROWSER = "gzip, deflate, br"


@dataclass
class Fetch:
    seconds: float
    covered: int  # bytes of the file delivered (gzip makes `received` smaller)
    received: int
    length_header: bool
    encoding: str
    server_cpu_s: float
    growth_mb: float


def curl(url: str, cookie: str, pid: int, size: int, encoding: str, start_at: int = 0) -> Fetch:
    """One download to /dev/null; `start_at` > 0 resumes there (--continue-at)."""
    command = ["curl", "--silent", "--show-error", "--fail", "--output", "/dev/null",
               "--dump-header", "-", "--write-out", "\n%{size_download}",
               "--header", f"Cookie: {cookie}",
               "--header", f"Accept-Encoding: {encoding}"]  # fmt: skip
    if start_at:
        command += ["--continue-at", str(start_at)]
    reset_peak(pid)
    before_kib, cpu_before = proc_kib(pid, "VmRSS"), cpu_seconds(pid)
    start = time.perf_counter()
    done = subprocess.run([*command, url], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    head, _, received = done.stdout.rpartition("\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in head.splitlines()[1:])
    }
    return Fetch(
        seconds=seconds,
        covered=size - start_at,
        received=int(received),
        length_header="content-length" in headers,
        encoding=headers.get("content-encoding", "-"),
        server_cpu_s=cpu_seconds(pid) - cpu_before,
        growth_mb=(proc_kib(pid, "VmHWM") - before_kib) / 1024,
    )


def spread(values: list[float], fmt: str) -> str:
    median = statistics.median(values)
    if len(values) == 1:
        return format(median, fmt)
    return f"{median:{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"


def report(size: int, cats: list[float], fetched: dict[str, list[Fetch]], load: str) -> str:
    cat_s = statistics.median(cats)
    lines = [
        f"Téléchargement d'une pièce jointe de {size / GIB:g} Gio ({size:,} octets), "
        f"{len(cats)} run(s), médiane (min–max), cache de pages vidé pour le fichier avant "
        f"chaque mesure ; charge {load}",
        "",
        f"{'mesure':<34} {'s':>22} {'MB/s':>7} {'× cat':>6} {'octets reçus':>15} "
        f"{'C-Length':>8} {'C-Encoding':>10} {'CPU serveur s':>13} {'RSS +MB':>7}",
        f"{'cat FICHIER > /dev/null':<34} {spread(cats, '.2f'):>22} "
        f"{size / 1e6 / cat_s:7.0f} {1.0:6.2f}",
    ]
    for name, runs in fetched.items():
        seconds = [f.seconds for f in runs]
        median_s = statistics.median(seconds)
        received = runs[-1].received
        lines.append(
            f"{name:<34} {spread(seconds, '.2f'):>22} {runs[-1].covered / 1e6 / median_s:7.0f} "
            f"{median_s / cat_s:6.2f} {received:>15,} "
            f"{'oui' if runs[-1].length_header else 'non':>8} {runs[-1].encoding:>10} "
            f"{spread([f.server_cpu_s for f in runs], '.2f'):>13} "
            f"{max(f.growth_mb for f in runs):7.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.download", description=__doc__.split("\n")[0]
    )
    bench_arguments(parser)
    parser.set_defaults(runs=3)
    args = parser.parse_args(argv)
    use_tree(args.tree)
    size = whole_mib(args.size_gb)
    if size <= 0 or args.runs < 1:
        parser.error("--size-gb et --runs doivent être positifs")
    tmp = scratch_folder("download", size, args.dir)
    if tmp is None:
        return 1
    data = tmp / "data"
    env = kb_env(tmp, limit=size + GIB)
    server = None
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        subprocess.run(kb_command("build"), cwd=ROOT, env=env, check=True, capture_output=True)
        link = provision(tmp, env)
        port = free_port()
        server = start_server(tmp, env, port)
        base = f"http://{HOST}:{port}"
        wait_healthy(base, server, tmp / "serve.log")
        pid, _ = serving_pid(server, port)
        with httpx2.Client(base_url=base, timeout=60) as client:
            activate_and_log_in(client, link)
            print(f"envoi de {size / GIB:g} Gio…", file=sys.stderr)
            sent = upload(client, data, pid, size)
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        with sqlite3.connect(data / "kb.sqlite3") as db:
            [(attachment_id,)] = db.execute("SELECT id FROM attachments").fetchall()
        url = f"{base}/tickets/{sent.reference}/pieces-jointes/{attachment_id}"
        cats: list[float] = []
        fetched: dict[str, list[Fetch]] = {
            f"kb, navigateur ({BROWSER})": [],
            "kb, Accept-Encoding: identity": [],
            "kb, reprise --continue-at (moitié)": [],
        }
        load_before = os.getloadavg()[0]
        for i in range(1, args.runs + 1):
            print(f"run {i}…", file=sys.stderr)
            cats.append(cat_cold(sent.stored))
            for name, encoding, start_at in (
                (f"kb, navigateur ({BROWSER})", BROWSER, 0),
                ("kb, Accept-Encoding: identity", "identity", 0),
                ("kb, reprise --continue-at (moitié)", BROWSER, size // 2 + 12_345),
            ):
                evict(sent.stored)
                fetched[name].append(curl(url, cookie, pid, size, encoding, start_at))
        load = f"{load_before:.1f} → {os.getloadavg()[0]:.1f}"
        print(report(size, cats, fetched, load))
        return 0
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench.download : interrompu (serveur arrêté, dossier supprimé)", file=sys.stderr)
        sys.exit(130)
