"""Due dates in business hours: the clock stops on weekends and public holidays (Europe/Paris)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from kb.clock import DAYS, MONTHS, PARIS


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


def in_words(moment: dt.datetime, zone: ZoneInfo = PARIS) -> str:
    """'jeudi 3 décembre 2026 à 14 h 05', in Paris time."""
    local = moment.astimezone(zone)
    day = "1er" if local.day == 1 else str(local.day)
    return (
        f"{DAYS[local.weekday()]} {day} {MONTHS[local.month - 1]} {local.year} "
        f"à {local.hour} h {local.minute:02d}"
    )


def short(moment: dt.datetime, zone: ZoneInfo = PARIS) -> str:
    """'03/12/2026 14:05', for tables."""
    return moment.astimezone(zone).strftime("%d/%m/%Y %H:%M")


@dataclass(frozen=True)
class AnswerDelay:
    """Support's promise: an answer within `hours` business hours on this holiday calendar."""

    hours: float
    calendar: str = "FR"

    def due(self, start: dt.datetime) -> dt.datetime:
        return add_business_hours(start, self.hours, self.calendar)
