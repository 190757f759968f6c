"""The pre-flight plan and the freeze windows, before anything is patched: the plan lists what a
simulated upgrade would change, in the declared order, and changes nothing; inside a freeze the
run refuses before touching a host, and an override with a reason is audited."""

from conftest import HOSTS, audit, cli, cli_json, host, installed, offered, pg_primary, redis_primary


def expected_order() -> list[tuple]:
    """The canary, the trading hosts one at a time, each tier's replicas before its primary
    (whose turn starts with the switchover), the gateways one at a time, then monitoring."""
    pg, redis = pg_primary(), redis_primary()
    replicas = sorted({"pt-redis-1", "pt-redis-2", "pt-redis-3"} - {redis})
    return [
        ("canary", ["pt-trading-1"], None),
        ("batch", ["pt-trading-2"], None),
        ("batch", [({"pt-pg-1", "pt-pg-2"} - {pg}).pop()], None),
        ("primary", [pg], "pg_switchover"),
        ("batch", [replicas[0]], None),
        ("batch", [replicas[1]], None),
        ("primary", [redis], "redis_failover"),
        ("batch", ["pt-vpn-1"], None),
        ("batch", ["pt-vpn-2"], None),
        ("batch", ["pt-mon-1"], None),
    ]


def apt_state(name: str) -> str:
    return host(name).check_output("ls -l --time-style=+%s /var/lib/apt/lists | md5sum; dpkg -l | md5sum")


def test_the_plan_lists_the_upgrades_in_order_and_changes_nothing():
    before = {name: apt_state(name) for name in HOSTS}
    old, new = installed(), offered()
    rc, out = cli_json("patch", "--plan")
    assert rc == 0, out["run"]
    plan = out["plan"]
    for name in HOSTS:
        upgrades = plan["hosts"][name]["upgrades"]
        assert [(u["name"], u["current"], u["candidate"]) for u in upgrades] == [("qb-demo-service", old, new)]
        assert plan["hosts"][name]["restarts"] == ["qb-demo.service"], name
        assert not plan["hosts"][name]["reboot"]["predicted"]
    assert [(b["kind"], b["hosts"], b["action"]) for b in plan["batches"]] == expected_order()
    assert {name: apt_state(name) for name in HOSTS} == before
    assert installed() == old


def test_inside_a_freeze_the_run_refuses_and_an_override_is_audited():
    def overrides():
        return [r for r in audit() if r.get("event") == "patch_freeze_override"]
    before, old = overrides(), installed()
    out = cli("patch", "--at", "2030-03-30T12:00:00+01:00")
    assert out.returncode != 0
    assert "refusing to patch molecule: freeze window quarter-end" in out.stdout + out.stderr, out.stdout[-2000:]
    assert overrides() == before and installed() == old

    # (one host is enough to show the run goes on past the freeze)
    out = cli("patch", "--plan", "--limit", "pt-trading-1", "--at", "2030-03-30T12:00:00+01:00",
              "--override-freeze", "--reason", "drill: the scenario overrides its own freeze")
    assert out.returncode == 0, out.stdout[-2000:]
    new = overrides()[len(before):]
    assert [(r["event"], r["reason"]) for r in new] == [
        ("patch_freeze_override", "drill: the scenario overrides its own freeze")]
    assert installed() == old
