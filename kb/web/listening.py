"""kb serve's workers, each accepting on its own listening socket (SO_REUSEPORT).

uvicorn's workers share one listening socket: whichever is awake takes the next connection,
so a burst of keep-alive connections can land mostly on one worker while the other idles.
bench.http saw one worker get up to 75 % of 64 connections, and a round's throughput vary
from 0.30 to 0.58 of the ceiling with it. With a socket per worker the kernel spreads the
connections by a hash of their addresses, evenly whatever the workers are doing.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from kb.errors import KbError


class PortBusy(KbError):
    """Another program listens on the port."""


def reserve(host: str, port: int) -> None:
    """Fail now, with a clear reason, when something already listens on (host, port).

    Tried without SO_REUSEPORT: a second kb serve on the same port would otherwise join the
    first one's sockets silently, and share its connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortBusy(
                f"Impossible d'écouter sur {host}:{port} ({exc.strerror or exc}) : "
                "un autre programme utilise-t-il ce port ? Choisissez-en un autre (--port)."
            ) from None


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A socket listening on (host, port) beside the other workers' (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


class _OwnSocket(socket.socket):
    """What uvicorn's supervisor hands each worker it starts (and restarts): pickled to the
    new process, it arrives there as a socket of its own, listening with SO_REUSEPORT."""

    def __init__(self, host: str, port: int, backlog: int) -> None:
        super().__init__(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._address = (host, port, backlog)

    def __reduce__(self) -> tuple[Any, tuple[str, int, int]]:
        return listening_socket, self._address


def run_workers(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """uvicorn's supervisor (restarts, signals, health checks) over `workers` processes of
    `app`, each with its own listening socket."""
    reserve(host, port)
    config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)
    placeholder = _OwnSocket(host, port, config.backlog)
    try:
        Multiprocess(config, sockets=[placeholder]).run()
    except KeyboardInterrupt:
        pass
    finally:
        placeholder.close()
