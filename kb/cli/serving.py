"""The long-running commands: serve (uvicorn) and lmtp (answers to ticket mails)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from kb.cli.editing import run_build
from kb.cli.operations import database
from kb.config import Settings
from kb.errors import KbError


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate, then run uvicorn; each serving process builds a missing or stale index in the
    background (the preview, `--reload`, builds first and stops on content errors)."""
    import logging.config
    import shutil
    import tempfile

    import uvicorn

    from kb import logs
    from kb.knowledge.build import is_stale
    from kb.knowledge.search.indexer import current_generation
    from kb.web.listening import run_workers

    # JSON lines on stdout for operators; readable lines for the editors' preview.
    log_config = logs.config(json_lines=not args.reload)
    if args.reload:  # the preview's terminal is the editor's: content problems, not every request
        log_config["loggers"]["kb.request"] = {"level": "WARNING"}
    logging.config.dictConfig(log_config)
    log = logging.getLogger("kb.serve")
    with database(settings):
        pass  # migrated (or refused: a newer schema) before building or starting workers
    if is_stale(settings.content_dir, settings.index_dir):
        # Several workers and no index at all: built once here first, or some workers would
        # answer 503 while another, already built, says the replica is ready.
        first = settings.workers > 1 and current_generation(settings.index_dir) is None
        if args.reload or first:
            log.info("Index absent ou plus ancien que le contenu : construction…")
            report = run_build(settings)
            log.info("Index construit : %s", report.summary())
        else:
            log.info(
                "Index absent ou plus ancien que le contenu : construction en arrière-plan "
                "(la version précédente reste servie ; sans index, /readyz répond 503 "
                "jusqu'à la fin de la construction)."
            )
    if args.reload:  # the editor's preview: drafts shown, pages follow every change
        settings = dataclasses.replace(settings, live_reload=True, show_drafts=True)
    # Workers and the reloader import the app anew: they read the settings from KB_*.
    os.environ.update(settings.as_env())
    # Each worker writes its metrics to files there; /metrics sums them. A fresh folder per
    # start: counts of a previous run (or of a dead worker's gauges) never leak in.
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    own_metrics_dir = not metrics_dir
    if own_metrics_dir:
        metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
            prefix="kb-metrics-"
        )
    log.info("Centre d'assistance : http://%s:%s/", settings.host, settings.port)
    app = "kb.web.app:create_app_from_env"
    options: dict[str, Any] = {
        "factory": True,
        # The client's address (login throttling, the audit) and HTTPS come from these
        # proxies' X-Forwarded-For and X-Forwarded-Proto, and from nobody else's.
        "proxy_headers": True,
        "forwarded_allow_ips": settings.trusted_proxies,
        "server_header": False,
        "log_config": log_config,
        # kb's request line replaces it: a route's template and status, never a token.
        "access_log": False,
        # A stop (SIGTERM) waits this long for requests in flight, uploads included, then
        # cuts them: a resumable upload goes on from its last byte on another replica.
        "timeout_graceful_shutdown": settings.shutdown_seconds,
    }
    try:
        if settings.workers > 1 and not args.reload:
            # Each worker on its own socket: connections shared evenly (kb/web/listening.py).
            host, port = settings.host, settings.port
            run_workers(app, host=host, port=port, workers=settings.workers, **options)
        else:
            uvicorn.run(
                app,
                host=settings.host,
                port=settings.port,
                reload=args.reload,
                # Python code restarts the server; content and templates are the app's own watch.
                reload_dirs=[str(Path(__file__).parent.parent)] if args.reload else None,
                **options,
            )
    finally:
        if own_metrics_dir and metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def cmd_lmtp(args: argparse.Namespace, settings: Settings) -> int:
    """Answers to ticket mails, delivered by the MTA over LMTP, until interrupted."""
    import signal
    import threading

    from kb.helpdesk import auth as auth_domain
    from kb.helpdesk.attachments import Store
    from kb.helpdesk.lmtp import Receiver
    from kb.web.app import create_app

    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise KbError(f"--listen {args.listen!r} : écrivez HÔTE:PORT, par exemple 127.0.0.1:8025")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with database(settings) as engine:
        secret = auth_domain.secret_key(settings)
        # The mails it queues link to the web's pages by route name: the app's routes, unserved.
        app = create_app(settings, background=False)
        links = app.state.services.links
        app.state.services.engine.dispose()
        receiver = Receiver(
            settings, engine, Store(settings.data_dir), secret, links, host=host, port=int(port)
        )
        try:
            receiver.start()
        except (OSError, RuntimeError) as exc:
            raise KbError(f"écoute impossible sur {args.listen} : {exc}") from exc
        print(f"Réception LMTP sur {host}:{port} (Ctrl-C pour arrêter).", file=sys.stderr)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            receiver.stop()
    return 0
