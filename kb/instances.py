"""This serving process among the replicas: an instance id, and its lease in the database."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kb.clock import now
from kb.tables import instances


class Instance:
    """One serving process: its in-flight files are its own while its lease runs. The lease is
    renewed four times per term, so a database outage of most of a term costs nothing."""

    def __init__(self, engine: Engine, lease_seconds: int, instance_id: str | None = None):
        self.engine = engine
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.id = instance_id or uuid.uuid4().hex[:16]

    @property
    def renew_seconds(self) -> float:
        return self.lease.total_seconds() / 4

    def renew(self) -> None:
        """Register, or extend the lease (registering again if a sweep removed the row)."""
        at = now()
        with self.engine.begin() as connection:
            updated = connection.execute(
                sa.update(instances)
                .where(instances.c.id == self.id)
                .values(lease_until=at + self.lease)
            ).rowcount
            if not updated:
                connection.execute(
                    sa.insert(instances).values(
                        id=self.id, host=socket.gethostname()[:255], pid=os.getpid(),
                        started_at=at, lease_until=at + self.lease,
                    )
                )  # fmt: skip

    def retire(self) -> None:
        """A clean stop: the others need not wait for the lease to end."""
        with self.engine.begin() as connection:
            connection.execute(sa.delete(instances).where(instances.c.id == self.id))


def alive(engine: Engine, at: dt.datetime | None = None) -> set[str]:
    """The ids of instances whose lease runs; the rows of the others go."""
    at = at or now()
    with engine.begin() as connection:
        connection.execute(sa.delete(instances).where(instances.c.lease_until < at))
        return set(connection.execute(sa.select(instances.c.id)).scalars())
