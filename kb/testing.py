"""Real servers for tests and benches: a free port, the app under uvicorn, `kb` in a process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import uvicorn


def free_port() -> int:
    """A port nothing listens on now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(app: Any, *, log_level: str = "warning", **config: Any) -> Iterator[str]:
    """The app behind a real uvicorn on a free port, in a thread: yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level, **config)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def start_kb(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    capture: bool = True,
) -> tuple[subprocess.Popen[str], str]:
    """`kb ARGS --port PORT` in its own process group, with no KB_* from the caller's
    environment unless `env` names them: returns the process and its base URL."""
    port = port or free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "kb.cli", *args, "--port", str(port)],
        cwd=cwd,
        env={**clean, **(env or {})},
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if capture else subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    return process, f"http://127.0.0.1:{port}"


def wait_until_up(
    process: subprocess.Popen[str], base: str, seconds: float = 60, path: str = "/healthz"
) -> None:
    """Until `base + path` answers 200; the process's output if it exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(process.stdout.read() if process.stdout else "kb exited")
        try:
            with urllib.request.urlopen(base + path, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("kb serve did not answer in time")


def stop(process: subprocess.Popen[str], seconds: float = 20) -> str:
    """SIGTERM to the process group, SIGKILL after `seconds`: returns what it printed."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        out, _ = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
    return out or ""
