"""kb's own column type: an instant stored with its zone, always read back aware, in UTC."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from kb.clock import as_utc


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """An instant stored with its zone and always read back aware, in UTC, on every database
    (SQLite keeps no zone): no caller ever patches a naive datetime."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        # `at - timedelta(...)` is date arithmetic: let the plain type choose (an Interval).
        if isinstance(value, dt.datetime):
            return self
        return self.impl.coerce_compared_value(op, value)

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        # Only instants: `at - interval` binds a timedelta through this type too.
        return as_utc(value) if isinstance(value, dt.datetime) else value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return as_utc(value) if isinstance(value, dt.datetime) else value
