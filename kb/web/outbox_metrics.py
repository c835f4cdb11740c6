"""The mail outbox in /metrics: read from the database at each scrape, the same on every replica."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import Engine

from kb.helpdesk import outbox

log = logging.getLogger("kb.web.metrics")


class OutboxCollector:
    """kb_mail_queue, kb_mail_failing, kb_mail_abandoned, kb_mail_oldest_waiting_seconds."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            found = outbox.depth(self.engine)
        except Exception as exc:  # the database is down: the other metrics still answer
            log.warning("metrics: mail queue unreadable: %s", exc)
            return
        yield GaugeMetricFamily("kb_mail_queue", "E-mails en attente d'envoi", value=found.waiting)
        yield GaugeMetricFamily(
            "kb_mail_failing",
            "E-mails en attente après au moins un essai échoué",
            value=found.failing,
        )
        yield GaugeMetricFamily(
            "kb_mail_abandoned",
            f"E-mails abandonnés ces {outbox.SHOWN_DAYS} derniers jours",
            value=found.abandoned,
        )
        yield GaugeMetricFamily(
            "kb_mail_oldest_waiting_seconds",
            "Âge de l'e-mail en attente le plus ancien, en secondes",
            value=found.oldest_seconds,
        )
