"""Freeze windows and market hours, in their own time zones (quantbot_infra.freeze)."""

from datetime import UTC, datetime

import pytest

from quantbot_infra import freeze

NYSE = {"venue": "XNYS", "timezone": "America/New_York", "days": ["mon", "tue", "wed", "thu", "fri"],
        "open": "09:30", "close": "16:00"}
GLOBEX = {"venue": "CME Globex", "timezone": "America/Chicago", "days": ["sun", "mon", "tue", "wed", "thu"],
          "open": "17:00", "close": "16:00"}
YEAR_END = {"name": "year-end", "start": "2026-12-24 00:00", "end": "2027-01-04 06:00",
            "timezone": "Europe/London"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def names(now, **kw):
    return [f.name for f in freeze.active(now, **kw)]


def test_market_hours_follow_the_venues_zone_and_its_daylight_saving():
    # 09:30 New York is 14:30 UTC in winter (EST) and 13:30 UTC in summer (EDT)
    assert names(utc("2026-12-07 14:29"), market_hours=[NYSE]) == []
    assert names(utc("2026-12-07 14:30"), market_hours=[NYSE]) == ["XNYS"]
    assert names(utc("2026-07-06 13:30"), market_hours=[NYSE]) == ["XNYS"]
    assert names(utc("2026-07-06 20:00"), market_hours=[NYSE]) == []        # 16:00 EDT: closed
    assert names(utc("2026-12-05 15:00"), market_hours=[NYSE]) == []        # a Saturday


def test_an_overnight_session_belongs_to_the_day_it_opens():
    # Globex opens Sunday 17:00 Chicago (23:00 UTC in winter) and runs to Monday 16:00
    assert names(utc("2026-12-06 22:59"), market_hours=[GLOBEX]) == []
    assert names(utc("2026-12-06 23:00"), market_hours=[GLOBEX]) == ["CME Globex"]
    assert names(utc("2026-12-07 21:59"), market_hours=[GLOBEX]) == ["CME Globex"]
    assert names(utc("2026-12-07 22:30"), market_hours=[GLOBEX]) == []      # the daily hour's pause
    # Friday 17:00 opens nothing (no fri in days): the weekend is free
    assert names(utc("2026-12-12 02:00"), market_hours=[GLOBEX]) == []


def test_margins_and_holidays():
    with_margin = {**NYSE, "margin_minutes": 30, "holidays": ["2026-12-25"]}
    assert names(utc("2026-12-07 14:00"), market_hours=[with_margin]) == ["XNYS"]   # 09:00 local
    assert names(utc("2026-12-07 21:29"), market_hours=[with_margin]) == ["XNYS"]   # 16:29 local
    assert names(utc("2026-12-25 15:00"), market_hours=[with_margin]) == []


def test_a_window_in_its_own_zone_and_a_readable_description():
    found = freeze.active(utc("2026-12-24 00:00"), freeze_windows=[YEAR_END])
    assert [f.name for f in found] == ["year-end"]
    assert found[0].describe() == ("freeze window year-end: 2026-12-24 00:00 -> 2027-01-04 06:00 "
                                   "Europe/London")
    assert names(utc("2027-01-04 06:00"), freeze_windows=[YEAR_END]) == []
    both = names(utc("2026-12-28 15:00"), freeze_windows=[YEAR_END], market_hours=[NYSE])
    assert both == ["year-end", "XNYS"]


@pytest.mark.parametrize(("windows", "markets", "message"), [
    ([{**YEAR_END, "timezone": "Mars/Olympus"}], None, "patch_freeze_windows[0].timezone: unknown time zone"),
    ([{**YEAR_END, "end": "2026-12-01 00:00"}], None,
     "patch_freeze_windows[0] (year-end): end 2026-12-01 00:00 is not after"),
    ([{"name": "x", "start": "soon", "end": "2027-01-01 00:00", "timezone": "UTC"}], None,
     "patch_freeze_windows[0].start: 'soon' is not a date and time"),
    ([{**YEAR_END, "start": "2026-12-24T00:00+01:00"}], None, "without an offset"),
    (None, [{**NYSE, "days": ["monday", "funday"]}], "patch_market_hours[0].days: ['funday']"),
    (None, [{**NYSE, "open": "9h30"}], "patch_market_hours[0].open: '9h30' is not a time of day"),
    (None, [{**NYSE, "margin_minutes": "lots"}], "patch_market_hours[0].margin_minutes"),
    (None, [{"venue": "XLON"}], "patch_market_hours[0] lacks timezone, open, close"),
    ({"name": "x"}, None, "patch_freeze_windows must be a list of mappings"),
])
def test_bad_entries_are_named_even_when_not_active(windows, markets, message):
    with pytest.raises(freeze.FreezeError) as caught:
        freeze.active(utc("2026-06-01 03:00"), freeze_windows=windows, market_hours=markets)
    assert message in str(caught.value)
