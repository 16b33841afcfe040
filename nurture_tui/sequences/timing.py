"""When may a step happen for a lead: time zones, send windows, holidays, waits and frequency caps.

Shared by the engine and the simulator, so a simulated timeline is what the engine will do.

- Time zone: the lead's `timezone`, else its account's, else the window's `default_timezone` (or UTC),
  unless `timezone_source` says to start further down the chain (`account` skips the lead, `sequence`
  uses the default only). Unknown zone names fall through to the next source.
- Send window: allowed weekdays and `start`–`end` hours in the lead's local time (end exclusive).
  Holidays (by the lead's country, else the account's, else `window.country`) are closed days.
  Outside the window, `next_window` moves the step to the next opening; `skip` returns None.
- All arithmetic is on aware datetimes through `zoneinfo`, so DST transitions are handled: a window
  opening at 09:00 opens at 09:00 local time on both sides of a change, and an opening that falls in a
  DST gap (02:30 on a spring-forward night) is shifted forward by the gap (03:30).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .model import WEEKDAYS, Caps, SendWindow, WaitSpec, parse_duration

_HHMM_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_MAX_DAYS_AHEAD = 400  # a window with every day closed (all holidays …) gives up after this


def parse_hhmm(text: str) -> time:
    """'09:00' → time(9, 0). Raises ValueError."""
    m = _HHMM_RE.match(str(text).strip())
    if not m:
        raise ValueError(f"not a time of day: {text!r} (use HH:MM, 00:00–23:59)")
    return time(int(m.group(1)), int(m.group(2)))


@lru_cache(maxsize=512)
def zone(name: str | None) -> ZoneInfo | None:
    """A ZoneInfo for an IANA name, or None when the name is empty or unknown."""
    if not name:
        return None
    try:
        return ZoneInfo(str(name).strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory name such as "America"
        return None


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    mapping = getattr(obj, "_mapping", None)  # SQLAlchemy Row
    if mapping is not None:
        return mapping.get(key)
    return getattr(obj, key, None)


def lead_timezone(lead: Any, account: Any, window: SendWindow | None) -> ZoneInfo:
    """The lead's time zone by the fallback chain lead → account → sequence default → UTC."""
    source = window.timezone_source if window else "lead"
    chain: list[Any] = []
    if source == "lead":
        chain.append(_get(lead, "timezone"))
    if source in ("lead", "account"):
        chain.append(_get(account, "timezone"))
    chain.append(window.default_timezone if window else None)
    for name in chain:
        tz = zone(name)
        if tz is not None:
            return tz
    return ZoneInfo("UTC")


def lead_country(lead: Any, account: Any, window: SendWindow | None) -> str | None:
    """The country whose holidays apply: lead → account → the window's `country`."""
    for value in (_get(lead, "country"), _get(account, "country"), window.country if window else None):
        if value:
            return str(value)
    return None


# ---------------------------------------------------------------------------------------------------
# Holidays

_ALIASES = {"usa": "US", "united states of america": "US", "uk": "GB", "great britain": "GB",
            "england": "GB", "the netherlands": "NL", "holland": "NL", "south korea": "KR"}


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    import holidays
    from holidays import registry

    names: dict[str, str] = {}
    for module, info in registry.COUNTRIES.items():
        code = info[1]
        names[module.replace("_", " ")] = code
        names[re.sub(r"(?<!^)(?=[A-Z])", " ", info[0]).lower()] = code
    for code in holidays.list_supported_countries():
        names[code.lower()] = code
    names.update(_ALIASES)
    return names


def country_code(country: str | None) -> str | None:
    """'US', 'USA', 'United States', 'germany' → an ISO code the holidays package knows (or None)."""
    if not country:
        return None
    return _country_names().get(str(country).strip().lower())


@lru_cache(maxsize=1024)
def holiday_dates(code: str, year: int) -> frozenset[date]:
    """Public holidays of a country (ISO code) in a year, cached per (country, year)."""
    import holidays

    return frozenset(holidays.country_holidays(code, years=year).keys())


def is_holiday(country: str | None, day: date) -> bool:
    code = country_code(country)
    return code is not None and day in holiday_dates(code, day.year)


# ---------------------------------------------------------------------------------------------------
# Windows

def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """`day at` in `tz` as an aware UTC instant. zoneinfo's fold=0 rule: a wall time inside a DST gap
    (02:30 on a spring-forward night) is shifted forward by the gap (→ 03:30); an ambiguous one
    (01:30 on a fall-back night) is the first occurrence."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def window_open_on(window: SendWindow, country: str | None, day: date) -> bool:
    if WEEKDAYS[day.weekday()] not in window.days:
        return False
    return not (window.holidays and is_holiday(country, day))


def next_send_time(window: SendWindow | None, tz: ZoneInfo, country: str | None, at: datetime) -> datetime | None:
    """The earliest instant ≥ `at` inside the send window, or None when outside and the policy is skip."""
    if window is None:
        return at
    start, end = parse_hhmm(window.start), parse_hhmm(window.end)
    local_day = at.astimezone(tz).date()
    for offset in range(_MAX_DAYS_AHEAD):
        day = local_day + timedelta(days=offset)
        if not window_open_on(window, country, day):
            if offset == 0 and window.outside == "skip":
                return None
            continue
        opens, closes = _local(day, start, tz), _local(day, end, tz)
        if at < closes:
            if at >= opens:
                return at
            if window.outside == "skip":
                return None
            return opens
        if window.outside == "skip":
            return None
    return None


def in_window(window: SendWindow | None, tz: ZoneInfo, country: str | None, at: datetime) -> bool:
    return next_send_time(window, tz, country, at) == at


# ---------------------------------------------------------------------------------------------------
# Waits and caps

def wait_until(spec: WaitSpec, tz: ZoneInfo, at: datetime) -> datetime:
    """When a `wait` step entered at `at` ends (duration; a date at local midnight; next weekday/time)."""
    if spec.duration is not None:
        return at + parse_duration(spec.duration)
    if spec.until is not None:
        return max(at, _local(spec.until, time(0, 0), tz))
    assert spec.weekday is not None
    target = WEEKDAYS.index(spec.weekday)
    clock_time = parse_hhmm(spec.time) if spec.time else time(9, 0)
    local = at.astimezone(tz)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if day.weekday() == target:
            when = _local(day, clock_time, tz)
            if when > at:
                return when
    raise AssertionError("unreachable: a weekday recurs within 8 days")


def cap_release(caps: Caps | None, sent: Iterable[datetime], at: datetime) -> datetime:
    """The earliest instant ≥ `at` at which one more send keeps the lead within its frequency caps.

    Caps are rolling: `per_day` over the last 24 hours, `per_week` over the last 7 days, counting
    every send to the lead across sequences (`sent` = their times)."""
    if caps is None or (caps.per_day is None and caps.per_week is None):
        return at
    times = sorted(sent)
    when = at
    for _ in range(64):
        moved = False
        for limit, span in ((caps.per_day, timedelta(days=1)), (caps.per_week, timedelta(days=7))):
            if limit is None:
                continue
            recent = [t for t in times if when - span < t <= when]
            if len(recent) >= limit:
                when = recent[len(recent) - limit] + span
                moved = True
        if not moved:
            return when
    return when


def next_allowed_send(
    window: SendWindow | None,
    caps: Caps | None,
    tz: ZoneInfo,
    country: str | None,
    at: datetime,
    sent: Iterable[datetime] = (),
) -> datetime | None:
    """Combine caps and window: the first instant ≥ `at` that is inside the window and under the caps.

    None when the window policy is `skip` and the send would fall outside it (also after a cap delay)."""
    sent_list = list(sent)
    when = at
    for _ in range(64):
        released = cap_release(caps, sent_list, when)
        slot = next_send_time(window, tz, country, released)
        if slot is None:
            return None
        if cap_release(caps, sent_list, slot) == slot:
            return slot
        when = slot
    return None
