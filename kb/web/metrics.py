"""Prometheus metrics: requests per route template, search, tickets, uploads, summed over workers.

`kb serve` points PROMETHEUS_MULTIPROC_DIR at a fresh folder before any worker starts, so each
worker writes its counts there and `/metrics` answers the sum of all of them, whichever worker
takes the scrape. Without it (tests, one process embedding the app) each app counts alone.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kb.errors import KbError
from kb.web.services import Services, bind

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# The text format every Prometheus reads (generate_latest writes it for names like ours).
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "(aucune)"  # a path no route answers: one label, however many such paths come
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SEARCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class MetricsRefused(KbError):
    status = 403
    code = "acces_refuse"


def networks(allowed: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """KB_METRICS_ALLOW: addresses or networks separated by commas or spaces."""
    return [ipaddress.ip_network(part, strict=False) for part in allowed.replace(",", " ").split()]


class Metrics:
    """The help center's metrics, one set per app."""

    def __init__(self, allowed: str, collectors: tuple[Any, ...] = ()) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.networks = networks(allowed)
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_DIR))
        self.registry = CollectorRegistry(auto_describe=True)
        # In multiprocess mode the values live in the folder's files, read back at each scrape.
        own = None if self.multiprocess else self.registry
        self.collectors = collectors
        self.requests = Counter(
            "kb_http_requests",
            "Requêtes HTTP traitées, par méthode, gabarit de route et statut",
            ["method", "route", "status"],
            registry=own,
        )
        self.latency = Histogram(
            "kb_http_request_duration_seconds",
            "Durée des requêtes HTTP, par méthode et gabarit de route",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.search_latency = Histogram(
            "kb_search_duration_seconds",
            "Durée des recherches dans l'index (search : la recherche, suggest : la saisie)",
            ["kind"],
            buckets=SEARCH_BUCKETS,
            registry=own,
        )
        # Children by label values, looked up once: prometheus_client checks and locks at
        # each labels() call, which cost as much as the count itself on every request.
        self.searches = self.search_latency.labels("search")
        self.suggestions = self.search_latency.labels("suggest")
        self._per_request: dict[tuple[str, str | None, int], tuple[Any, Any]] = {}
        self.tickets_created = Counter("kb_tickets_created", "Tickets d'aide créés", registry=own)
        self.upload_bytes = Counter(
            "kb_upload_bytes",
            "Octets reçus dans les envois de fichiers (formulaires et envois reprenables)",
            registry=own,
        )
        self.active_uploads = Gauge(
            "kb_uploads_active",
            "Envois de fichiers en cours de réception",
            multiprocess_mode="livesum",
            registry=own,
        )

    def request_done(self, method: str, route: str | None, status: int, seconds: float) -> None:
        """A request counted and timed (routes are templates: the keys stay few)."""
        key = (method, route, status)
        children = self._per_request.get(key)
        if children is None:
            children = self._per_request[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def allows(self, address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def exposition(self) -> bytes:
        """The text format, every worker's counts summed, plus what is read from the database."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry(auto_describe=True)
        if self.multiprocess:
            MultiProcessCollector(registry)
        else:
            registry.register(_Each(self.registry))
        for collector in self.collectors:
            registry.register(collector)
        return generate_latest(registry)

    def close(self) -> None:
        """This worker stops: its uploads in progress stop counting."""
        if self.multiprocess:
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(os.getpid())


class _Each:
    """Another registry's metrics, collected as part of this one."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()


def routes(services: Services) -> list[Route]:
    return [Route("/metrics", bind(services, metrics), name="metrics")]


async def metrics(services: Services, request: Request) -> Response:
    import anyio

    collected = services.metrics
    if not collected.allows(request.client.host if request.client else None):
        raise MetricsRefused(
            "Les métriques ne se lisent que depuis les adresses autorisées (KB_METRICS_ALLOW)."
        )
    body = await anyio.to_thread.run_sync(collected.exposition)
    return Response(body, media_type=TEXT_FORMAT, headers={"cache-control": "no-store"})
