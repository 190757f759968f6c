"""Outside market hours a warning is held while a critical pages at once."""

from __future__ import annotations

import datetime as dt
import json
import time

from conftest import MONITOR, STATE, delivered, firing, host, playbook, wait_for

PG = "pt-pg-1"


def converge_alertmanager(*extra: str):
    playbook("monitoring.yml", "--tags", "alertmanager", "--limit", MONITOR, *extra)


def closed_now() -> list[dict]:
    """A venue whose only session, every day, is an hour that is not now (UTC)."""
    now = dt.datetime.now(dt.UTC)
    start = now + dt.timedelta(hours=2) if now.hour < 20 else now - dt.timedelta(hours=3)
    return [{"name": "XTST", "timezone": "UTC", "open": start.strftime("%H:00"),
             "close": (start + dt.timedelta(hours=1)).strftime("%H:00"), "weekdays": ["monday:sunday"]}]


def test_a_warning_outside_market_hours_is_held_while_a_critical_pages():
    extra = STATE / "closed-venues.json"
    extra.write_text(json.dumps({"alertmanager_market_hours": closed_now()}))
    converge_alertmanager("-e", f"@{extra}")
    pg = host(PG)
    start = time.time()
    # a warning (the SSH banner probe fails) and a critical (pgBouncer down) on the same host
    pg.run("systemctl stop ssh.service")
    pg.run("systemctl stop pgbouncer")
    try:
        page = wait_for("PgBouncerDown delivered", lambda: delivered("PgBouncerDown", start, path="/page", host=PG),
                        timeout=120)
        print(f"\nclosed market: critical PgBouncerDown delivered after {page[0]['at'] - start:.1f} s")
        wait_for("EndpointDown (ssh) firing in Prometheus", lambda: firing("EndpointDown", host=PG, service="ssh"),
                 timeout=60)
        # two group intervals after it fired, still not sent
        time.sleep(12)
        assert not delivered("EndpointDown", start, host=PG, service="ssh"), "a warning was sent outside market hours"
    finally:
        pg.run("systemctl start pgbouncer ssh.service")
        converge_alertmanager()
    # back inside the (default) hours the held warning is delivered when it is still firing, or
    # resolved quietly: either way nothing is left firing
    wait_for("EndpointDown resolved in Prometheus", lambda: not firing("EndpointDown", host=PG), timeout=120)
