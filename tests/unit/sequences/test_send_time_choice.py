"""Send-time optimisation's pure choice (sequences/send_time.py): the best hour inside the window and caps,
never more than 24 h after the plain slot, and the histogram fallback chain."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from nurture_tui.sequences import timing
from nurture_tui.sequences.model import Caps, SendWindow
from nurture_tui.sequences.send_time import (
    HORIZON,
    MIN_GROUP,
    MIN_OWN,
    NO_HISTOGRAM,
    best_time,
    histogram,
    pick_histogram,
)

NY = ZoneInfo("America/New_York")
WINDOW = SendWindow(days=["mon", "tue", "wed", "thu", "fri"], start="09:00", end="17:00", holidays=False)
MON_10_NY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York


def test_best_hour_later_the_same_day() -> None:
    hist = histogram([14, 14, 14, 9], "lead")
    at = best_time(hist, MON_10_NY, NY, WINDOW, None, None)
    assert at.astimezone(NY).hour == 14 and at.astimezone(NY).date() == MON_10_NY.astimezone(NY).date()


def test_the_plain_slot_wins_ties_and_an_empty_histogram_keeps_it() -> None:
    assert best_time(histogram([10, 15], "lead"), MON_10_NY, NY, WINDOW, None, None) == MON_10_NY
    assert best_time(NO_HISTOGRAM, MON_10_NY, NY, WINDOW, None, None) == MON_10_NY


def test_a_best_hour_outside_the_window_is_never_used() -> None:
    hist = histogram([20, 20, 20, 20, 16], "lead")  # 20:00 is outside 09–17
    at = best_time(hist, MON_10_NY, NY, WINDOW, None, None)
    assert at.astimezone(NY).hour == 16


def test_an_earlier_hour_means_tomorrow_within_24_hours() -> None:
    hist = histogram([9, 9, 9], "lead")
    at = best_time(hist, MON_10_NY, NY, WINDOW, None, None)
    assert at.astimezone(NY).hour == 9 and at - MON_10_NY == timedelta(hours=23)


def test_friday_afternoon_cannot_move_past_the_weekend() -> None:
    fri_15 = datetime(2026, 3, 6, 20, 0, tzinfo=UTC)  # Friday 15:00 New York
    at = best_time(histogram([10, 10, 10], "lead"), fri_15, NY, WINDOW, None, None)
    assert at == fri_15  # Monday 10:00 is more than 24 h away; Saturday is closed


def test_caps_are_respected() -> None:
    caps = Caps(per_day=1)
    # a send yesterday at 14:30 New York: 14:00 today would break the daily cap (rolling 24 h), 15:00 not
    sent = [MON_10_NY - timedelta(days=1) + timedelta(hours=4, minutes=30)]
    plain = MON_10_NY
    hist = histogram([14, 14, 14, 15, 15], "lead")
    at = best_time(hist, plain, NY, WINDOW, caps, None, sent)
    assert at.astimezone(NY).hour == 15


def test_random_cases_stay_in_window_under_caps_and_within_24_hours() -> None:
    rnd = random.Random(5)
    caps = Caps(per_day=1, per_week=3)
    zones = [NY, ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Kolkata"), ZoneInfo("Australia/Sydney")]
    for _ in range(300):
        tz = rnd.choice(zones)
        due = datetime(2026, 3, 2, tzinfo=UTC) + timedelta(minutes=rnd.randrange(14 * 24 * 60))
        sent = [due - timedelta(hours=rnd.uniform(1, 160)) for _ in range(rnd.randint(0, 3))]
        plain = timing.next_allowed_send(WINDOW, caps, tz, None, due, sent)
        assert plain is not None
        hist = histogram([rnd.randrange(24) for _ in range(rnd.randint(0, 12))], "lead")
        at = best_time(hist, plain, tz, WINDOW, caps, None, sent)
        assert plain <= at <= plain + HORIZON
        assert timing.next_allowed_send(WINDOW, caps, tz, None, at, sent) == at  # in the window, under the caps


def test_histogram_fallback_chain() -> None:
    own = histogram([9] * (MIN_OWN - 1), "lead")
    persona = histogram([11] * MIN_GROUP, "persona:economic_buyer")
    segment = histogram([15] * MIN_GROUP, "segment:emea")
    assert pick_histogram(histogram([9] * MIN_OWN, "lead"), [persona]).source == "lead"
    assert pick_histogram(own, [persona, segment]).source == "persona:economic_buyer"
    assert pick_histogram(own, [histogram([11], "persona:x"), segment]).source == "segment:emea"
    assert pick_histogram(own, [None, None]) is NO_HISTOGRAM
