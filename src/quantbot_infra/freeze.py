"""Freeze windows for changes: named calendar windows and the trading venues' market hours, both
in their own time zones. A patch run (and anything else that changes hosts) asks `active()` first
and refuses inside any of them unless the operator overrides with a reason.

Inventory variables (validated here; each error names the variable and the entry):

    patch_freeze_windows:            # one-off windows, local times of their zone
      - {name: year-end, start: "2026-12-24 00:00", end: "2027-01-04 06:00", timezone: Europe/London}
    patch_market_hours:              # weekly sessions of each venue
      - {venue: XNYS, timezone: America/New_York, days: [mon, tue, wed, thu, fri],
         open: "09:30", close: "16:00", margin_minutes: 30}

A session whose close is before its open runs overnight (CME Globex: 17:00 -> 16:00 the next day)
and belongs to the day it opens on. `margin_minutes` widens a session on both sides (pre-open
auctions, end-of-day reconciliation). `holidays` (dates in the venue's zone) are days without a
session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class FreezeError(ValueError):
    """A freeze window or market-hours entry that cannot be read; the message names it."""


@dataclass(frozen=True)
class Freeze:
    kind: str          # "window" or "market"
    name: str
    start: datetime    # aware, in the entry's zone
    end: datetime
    zone: str

    def describe(self) -> str:
        fmt = "%Y-%m-%d %H:%M"
        what = "freeze window" if self.kind == "window" else "market hours of"
        return (f"{what} {self.name}: {self.start.strftime(fmt)} -> {self.end.strftime(fmt)} "
                f"{self.zone}")

    def as_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "zone": self.zone,
                "start": self.start.isoformat(), "end": self.end.isoformat(),
                "text": self.describe()}


def _zone(value, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise FreezeError(f"{where}.timezone: unknown time zone {value!r} (an IANA name such as "
                          "America/New_York)") from None


def _local(value, zone: ZoneInfo, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("T", " "))
    except ValueError:
        raise FreezeError(f"{where}: {value!r} is not a date and time like 2026-12-24 00:00") from None
    if parsed.tzinfo is not None:
        raise FreezeError(f"{where}: give the local time of the entry's timezone, without an offset")
    return parsed.replace(tzinfo=zone)


def _clock(value, where: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise FreezeError(f"{where}: {value!r} is not a time of day like 09:30") from None


def _entries(value, name: str) -> list[dict]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise FreezeError(f"{name} must be a list of mappings")
    return value


def windows(entries) -> list[Freeze]:
    """patch_freeze_windows -> Freezes (validated)."""
    out = []
    for i, entry in enumerate(_entries(entries, "patch_freeze_windows")):
        where = f"patch_freeze_windows[{i}]"
        missing = [k for k in ("name", "start", "end", "timezone") if not entry.get(k)]
        if missing:
            raise FreezeError(f"{where} lacks {', '.join(missing)}")
        zone = _zone(entry["timezone"], where)
        start = _local(entry["start"], zone, f"{where}.start")
        end = _local(entry["end"], zone, f"{where}.end")
        if end <= start:
            raise FreezeError(f"{where} ({entry['name']}): end {entry['end']} is not after start "
                              f"{entry['start']}")
        out.append(Freeze("window", str(entry["name"]), start, end, str(entry["timezone"])))
    return out


def _market(entry: dict, where: str):
    missing = [k for k in ("venue", "timezone", "open", "close") if not entry.get(k)]
    if missing:
        raise FreezeError(f"{where} lacks {', '.join(missing)}")
    zone = _zone(entry["timezone"], where)
    days = entry.get("days", list(DAYS[:5]))
    bad = [d for d in days if str(d).lower()[:3] not in DAYS]
    if not days or bad:
        raise FreezeError(f"{where}.days: {bad or days!r} - use mon, tue, wed, thu, fri, sat, sun")
    opens, closes = _clock(entry["open"], f"{where}.open"), _clock(entry["close"], f"{where}.close")
    if opens == closes:
        raise FreezeError(f"{where}: open and close are both {entry['open']}")
    margin = entry.get("margin_minutes", 0)
    if not isinstance(margin, int) or isinstance(margin, bool) or not 0 <= margin < 720:
        raise FreezeError(f"{where}.margin_minutes must be a whole number of minutes below 720")
    holidays = set()
    for h in entry.get("holidays") or []:
        try:
            holidays.add(date.fromisoformat(str(h)))
        except ValueError:
            raise FreezeError(f"{where}.holidays: {h!r} is not a date like 2026-12-25") from None
    return zone, {DAYS.index(str(d).lower()[:3]) for d in days}, opens, closes, \
        timedelta(minutes=margin), holidays


def sessions(entry: dict, where: str, around: datetime) -> list[Freeze]:
    """The venue's sessions that may cover `around` (the days before and after it, locally)."""
    zone, days, opens, closes, margin, holidays = _market(entry, where)
    local = around.astimezone(zone)
    out = []
    for delta in (-1, 0, 1):
        day = local.date() + timedelta(days=delta)
        if day.weekday() not in days or day in holidays:
            continue
        start = datetime.combine(day, opens, zone)
        end = datetime.combine(day + timedelta(days=1 if closes < opens else 0), closes, zone)
        out.append(Freeze("market", str(entry["venue"]), start - margin, end + margin,
                          str(entry["timezone"])))
    return out


def active(now: datetime, freeze_windows=None, market_hours=None) -> list[Freeze]:
    """The freezes `now` (an aware datetime) falls in; every entry is validated, active or not."""
    if now.tzinfo is None:
        raise ValueError("now must carry its time zone")
    found = [w for w in windows(freeze_windows) if w.start <= now < w.end]
    for i, entry in enumerate(_entries(market_hours, "patch_market_hours")):
        found += [s for s in sessions(entry, f"patch_market_hours[{i}]", now) if s.start <= now < s.end]
    return found


def utcnow() -> datetime:
    return datetime.now(UTC)
