"""Time zones, send windows, holidays, DST, waits and frequency caps (sequences/timing.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from nurture_tui.sequences import timing
from nurture_tui.sequences.model import Caps, SendWindow, WaitSpec

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


WEEKDAYS_9_17 = SendWindow(days=["mon", "tue", "wed", "thu", "fri"], start="09:00", end="17:00", holidays=False)


# -- time zone fallback -------------------------------------------------------------------------------

def test_timezone_fallback_chain() -> None:
    w = SendWindow(default_timezone="Asia/Tokyo")
    assert timing.lead_timezone({"timezone": "America/New_York"}, {"timezone": "Europe/Berlin"}, w) == NY
    assert timing.lead_timezone({"timezone": None}, {"timezone": "Europe/Berlin"}, w) == BERLIN
    assert timing.lead_timezone({"timezone": "Not/AZone"}, None, w) == ZoneInfo("Asia/Tokyo")
    assert timing.lead_timezone({"timezone": "America"}, {"timezone": "../etc"}, w) == ZoneInfo("Asia/Tokyo")
    assert timing.lead_timezone({}, None, None) == ZoneInfo("UTC")


def test_timezone_source_skips_levels() -> None:
    lead, acct = {"timezone": "America/New_York"}, {"timezone": "Europe/Berlin"}
    assert timing.lead_timezone(lead, acct, SendWindow(timezone_source="account")) == BERLIN
    assert timing.lead_timezone(lead, acct, SendWindow(timezone_source="sequence",
                                                        default_timezone="Asia/Tokyo")) == ZoneInfo("Asia/Tokyo")


def test_timezone_reads_objects_and_rows() -> None:
    class Obj:
        timezone = "Europe/Berlin"

    assert timing.lead_timezone(Obj(), None, None) == BERLIN


def test_country_fallback_and_codes() -> None:
    w = SendWindow(country="FR")
    assert timing.lead_country({"country": None}, {"country": "Germany"}, w) == "Germany"
    assert timing.lead_country({}, None, w) == "FR"
    assert timing.country_code("United States") == "US"
    assert timing.country_code("usa") == "US"
    assert timing.country_code("germany") == "DE"
    assert timing.country_code("GB") == "GB"
    assert timing.country_code("Narnia") is None


# -- windows -----------------------------------------------------------------------------------------

def test_inside_window_is_now() -> None:
    at = local(NY, 2026, 3, 4, 10, 15)  # Wednesday
    assert timing.next_send_time(WEEKDAYS_9_17, NY, None, at) == at


def test_window_edges_start_inclusive_end_exclusive() -> None:
    opens = local(NY, 2026, 3, 4, 9, 0)
    assert timing.next_send_time(WEEKDAYS_9_17, NY, None, opens) == opens
    closes = local(NY, 2026, 3, 4, 17, 0)
    assert timing.next_send_time(WEEKDAYS_9_17, NY, None, closes) == local(NY, 2026, 3, 5, 9, 0)
    just_before = local(NY, 2026, 3, 4, 16, 59, 59)
    assert timing.next_send_time(WEEKDAYS_9_17, NY, None, just_before) == just_before


def test_before_opening_moves_to_opening_same_day() -> None:
    assert timing.next_send_time(WEEKDAYS_9_17, NY, None, local(NY, 2026, 3, 4, 6, 0)) == local(NY, 2026, 3, 4, 9)


def test_weekend_moves_to_monday() -> None:
    friday_evening = local(NY, 2026, 3, 6, 18, 0)
    assert timing.next_send_time(WEEKDAYS_9_17, NY, None, friday_evening) == local(NY, 2026, 3, 9, 9, 0)
    saturday = local(NY, 2026, 3, 7, 11, 0)
    assert timing.next_send_time(WEEKDAYS_9_17, NY, None, saturday) == local(NY, 2026, 3, 9, 9, 0)


def test_window_is_in_the_leads_local_time() -> None:
    at = utc(2026, 3, 4, 15, 0)  # 10:00 in New York, 16:00 in Berlin
    w = WEEKDAYS_9_17.model_copy(update={"end": "12:00"})
    assert timing.next_send_time(w, NY, None, at) == at
    assert timing.next_send_time(w, BERLIN, None, at) == local(BERLIN, 2026, 3, 5, 9, 0)


def test_holidays_are_closed_days() -> None:
    w = WEEKDAYS_9_17.model_copy(update={"holidays": True})
    christmas_eve_late = local(NY, 2026, 12, 24, 18, 0)  # Thu; Fri 25th is Christmas
    assert timing.next_send_time(w, NY, "US", christmas_eve_late) == local(NY, 2026, 12, 28, 9, 0)
    assert timing.next_send_time(w, NY, "United States", local(NY, 2026, 7, 3, 10)) == local(NY, 2026, 7, 6, 9)
    # German Unity Day is not a US holiday
    assert timing.next_send_time(w, NY, "US", local(NY, 2026, 10, 5, 10)) == local(NY, 2026, 10, 5, 10)
    assert timing.is_holiday("DE", date(2026, 10, 3))
    # holidays off: the window ignores them
    assert timing.next_send_time(WEEKDAYS_9_17, NY, "US", local(NY, 2026, 12, 25, 10)) == local(NY, 2026, 12, 25, 10)


def test_holiday_calendar_is_cached_per_country_year() -> None:
    timing.holiday_dates.cache_clear()
    timing.is_holiday("US", date(2026, 1, 1))
    timing.is_holiday("US", date(2026, 5, 1))
    timing.is_holiday("US", date(2027, 5, 1))
    info = timing.holiday_dates.cache_info()
    assert info.misses == 2 and info.hits == 1


def test_skip_policy_returns_none_outside() -> None:
    w = WEEKDAYS_9_17.model_copy(update={"outside": "skip"})
    assert timing.next_send_time(w, NY, None, local(NY, 2026, 3, 4, 8, 0)) is None
    assert timing.next_send_time(w, NY, None, local(NY, 2026, 3, 7, 10, 0)) is None  # Saturday
    inside = local(NY, 2026, 3, 4, 12, 0)
    assert timing.next_send_time(w, NY, None, inside) == inside
    assert not timing.in_window(w, NY, None, local(NY, 2026, 3, 4, 17, 0))


def test_no_window_means_any_time() -> None:
    at = utc(2026, 3, 7, 3, 0)
    assert timing.next_send_time(None, NY, "US", at) == at


# -- DST ---------------------------------------------------------------------------------------------

def test_window_opening_keeps_local_hour_across_spring_forward() -> None:
    w = SendWindow(days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"], start="09:00", end="17:00",
                   holidays=False)
    before = timing.next_send_time(w, NY, None, local(NY, 2026, 3, 7, 20, 0))  # Sat evening, EST
    after = timing.next_send_time(w, NY, None, local(NY, 2026, 3, 8, 20, 0))  # Sun evening, EDT
    assert before == utc(2026, 3, 8, 13, 0)  # 09:00 EDT on the change day
    assert after == utc(2026, 3, 9, 13, 0)
    assert before.astimezone(NY).hour == 9 and after.astimezone(NY).hour == 9


def test_window_opening_keeps_local_hour_across_fall_back() -> None:
    w = SendWindow(days=["sun", "mon"], start="09:00", end="17:00", holidays=False)
    got = timing.next_send_time(w, NY, None, local(NY, 2026, 10, 31, 20, 0))
    assert got == utc(2026, 11, 1, 14, 0)  # 09:00 EST (UTC-5) on the change day


def test_opening_inside_the_dst_gap_is_shifted_forward() -> None:
    w = SendWindow(days=["sun"], start="02:30", end="04:00", holidays=False)
    got = timing.next_send_time(w, NY, None, local(NY, 2026, 3, 8, 0, 0))
    assert got is not None
    assert got.astimezone(NY).strftime("%H:%M %Z") == "03:30 EDT"


def test_window_end_in_an_ambiguous_hour_uses_first_occurrence() -> None:
    w = SendWindow(days=["sun"], start="00:00", end="01:30", holidays=False)
    first_130 = utc(2026, 11, 1, 5, 30)  # 01:30 EDT; 01:30 EST comes an hour later
    assert timing.next_send_time(w, NY, None, first_130 - timedelta(minutes=1)) == first_130 - timedelta(minutes=1)
    assert timing.next_send_time(w, NY, None, first_130) != first_130


def test_duration_wait_is_exact_elapsed_time_across_dst() -> None:
    at = local(NY, 2026, 3, 7, 12, 0)
    assert timing.wait_until(WaitSpec(duration="1d"), NY, at) - at == timedelta(hours=24)


def test_weekday_wait_is_local_wall_time() -> None:
    at = local(NY, 2026, 3, 6, 12, 0)  # Friday, EST
    got = timing.wait_until(WaitSpec(weekday="tue", time="10:00"), NY, at)
    assert got == local(NY, 2026, 3, 10, 10, 0)  # Tuesday 10:00 EDT
    same_day_later = timing.wait_until(WaitSpec(weekday="fri", time="15:00"), NY, at)
    assert same_day_later == local(NY, 2026, 3, 6, 15, 0)
    next_week = timing.wait_until(WaitSpec(weekday="fri", time="09:00"), NY, at)
    assert next_week == local(NY, 2026, 3, 13, 9, 0)


def test_until_date_is_local_midnight_and_never_in_the_past() -> None:
    at = local(BERLIN, 2026, 5, 1, 12, 0)
    assert timing.wait_until(WaitSpec(until=date(2026, 5, 4)), BERLIN, at) == local(BERLIN, 2026, 5, 4, 0, 0)
    assert timing.wait_until(WaitSpec(until=date(2026, 4, 1)), BERLIN, at) == at


# -- caps --------------------------------------------------------------------------------------------

def test_caps_rolling_day_and_week() -> None:
    at = utc(2026, 3, 4, 12, 0)
    caps = Caps(per_day=1, per_week=2)
    assert timing.cap_release(caps, [], at) == at
    assert timing.cap_release(caps, [at - timedelta(hours=3)], at) == at + timedelta(hours=21)
    sends = [at - timedelta(days=5), at - timedelta(days=2)]
    assert timing.cap_release(caps, sends, at) == at + timedelta(days=2)
    assert timing.cap_release(None, sends, at) == at


def test_next_allowed_send_combines_caps_and_window() -> None:
    w = WEEKDAYS_9_17
    at = local(NY, 2026, 3, 6, 10, 0)  # Friday
    sent = [local(NY, 2026, 3, 6, 9, 30)]
    got = timing.next_allowed_send(w, Caps(per_day=1), NY, None, at, sent)
    assert got == local(NY, 2026, 3, 9, 9, 0)  # cap frees Sat 09:30 EST; the window opens Mon 09:00 EDT
    same_day = timing.next_allowed_send(w, Caps(per_day=1), NY, None, local(NY, 2026, 3, 4, 10, 0),
                                        [local(NY, 2026, 3, 4, 9, 30)])
    assert same_day == local(NY, 2026, 3, 5, 9, 30)  # Thursday 09:30: inside the window once the cap frees
    skip = w.model_copy(update={"outside": "skip"})
    assert timing.next_allowed_send(skip, Caps(per_day=1), NY, None, at, sent) is None


@pytest.mark.parametrize("text", ["9:00", "23:59", "00:00"])
def test_parse_hhmm_accepts(text: str) -> None:
    assert timing.parse_hhmm(text).strftime("%H:%M") == text.zfill(5)


@pytest.mark.parametrize("text", ["24:00", "9", "9:60", "noon"])
def test_parse_hhmm_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        timing.parse_hhmm(text)
