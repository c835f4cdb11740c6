"""Due dates in business hours: the clock stops on weekends and public holidays (Europe/Paris)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from kb.clock import PARIS


@lru_cache(maxsize=16)
def _calendar(code: str) -> holidays.HolidayBase:
    country, _, subdivision = code.partition("-")
    return holidays.country_holidays(country, subdiv=subdivision or None)


def is_working_day(day: dt.date, calendar: str = "FR") -> bool:
    return day.weekday() < 5 and day not in _calendar(calendar)


def add_business_hours(
    start: dt.datetime, hours: float, calendar: str = "FR", zone: ZoneInfo = PARIS
) -> dt.datetime:
    """`start` plus `hours` counted only on working days (whole days, local time), in UTC."""
    remaining = dt.timedelta(hours=hours)
    cursor = start.astimezone(dt.UTC)
    while True:
        local = cursor.astimezone(zone)
        next_midnight = dt.datetime.combine(
            local.date() + dt.timedelta(days=1), dt.time(), tzinfo=zone
        ).astimezone(dt.UTC)
        if is_working_day(local.date(), calendar):
            available = next_midnight - cursor  # real elapsed time: DST days have 23 or 25 h
            if remaining <= available:
                return cursor + remaining
            remaining -= available
        cursor = next_midnight


@dataclass(frozen=True)
class AnswerDelay:
    """Support's promise: an answer within `hours` business hours on this holiday calendar."""

    hours: float
    calendar: str = "FR"

    def due(self, start: dt.datetime) -> dt.datetime:
        return add_business_hours(start, self.hours, self.calendar)
