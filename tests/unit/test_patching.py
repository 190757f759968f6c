"""The order of a patch run (quantbot_infra.patching): canary, batches per class, the data tier's
replica-first rules and one-at-a-time classes, on the dev topology's shape."""

import pytest

from quantbot_infra import patching


def fleet(**roles):
    """The dev topology's hosts, all with something to patch; roles: host -> (tier key, role)."""
    shape = [("trading", 2, ["trading", "lowlatency"]), ("gpu", 1, ["gpu"]),
             ("pg", 2, ["postgresql", "wireguard"]), ("redis", 3, ["redis", "wireguard"]),
             ("vpn", 2, ["wireguard", "vpn_gateway"]), ("monitoring", 1, ["monitoring"])]
    hosts = []
    for cls, count, groups in shape:
        for n in range(1, count + 1):
            hosts.append({"name": f"dev-{cls}-{n:02d}", "class": cls, "groups": groups, "todo": True})
    defaults = {"dev-pg-01": ("pg_role", "primary"), "dev-pg-02": ("pg_role", "replica"),
                "dev-redis-01": ("redis_role", "primary"), "dev-redis-02": ("redis_role", "replica"),
                "dev-redis-03": ("redis_role", "replica")}
    for name, (key, role) in {**defaults, **roles}.items():
        next(h for h in hosts if h["name"] == name)[key] = role
    return hosts


def shape(result):
    return [(b["kind"], b["hosts"], b["action"]) for b in result["batches"]]


def test_canary_then_classes_with_replicas_before_primaries():
    result = patching.plan(fleet(), serial={"default": [1, "50%", "100%"]}, canary="dev-gpu-01",
                           class_order=["monitoring", "gpu", "pg", "redis", "vpn", "trading"])
    assert shape(result) == [
        ("canary", ["dev-gpu-01"], None),
        ("batch", ["dev-monitoring-01"], None),
        ("batch", ["dev-pg-02"], None),
        ("primary", ["dev-pg-01"], "pg_switchover"),
        ("batch", ["dev-redis-02"], None),
        ("batch", ["dev-redis-03"], None),      # 50% of two replicas
        ("primary", ["dev-redis-01"], "redis_failover"),
        ("batch", ["dev-vpn-01"], None),        # gateways one at a time
        ("batch", ["dev-vpn-02"], None),
        ("batch", ["dev-trading-01"], None),    # trading hosts one at a time
        ("batch", ["dev-trading-02"], None),
    ]
    assert result["serial"] == [1] * 11
    assert result["order"][0] == "dev-gpu-01" and result["order"][3] == "dev-pg-01"


def test_serial_grows_as_declared_and_the_auto_canary_is_the_first_host():
    hosts = [{"name": f"dev-web-{n:02d}", "class": "web", "groups": [], "todo": True} for n in range(1, 10)]
    result = patching.plan(hosts, serial={"web": [1, "25%", "100%"]})
    # the first batch of one is the canary; then 25% of 9 (2), then the rest
    sizes = [(b["kind"], len(b["hosts"])) for b in result["batches"]]
    assert sizes == [("canary", 1), ("batch", 2), ("batch", 6)]
    assert result["serial"] == [1, 2, 6]


def test_up_to_date_hosts_are_not_batched_and_an_only_primary_is_patched_in_place():
    hosts = fleet()
    for h in hosts:
        h["todo"] = h["name"] in ("dev-pg-01", "dev-monitoring-01")
    hosts = [h for h in hosts if h["name"] != "dev-pg-02"]
    result = patching.plan(hosts)
    # the canary is never a primary, even where the primary's class comes first
    assert shape(result) == [("canary", ["dev-monitoring-01"], None), ("primary", ["dev-pg-01"], None)]
    assert "dev-gpu-01" in result["up_to_date"]
    assert any("dev-pg-01 is the only member of pg: patched in place" in w for w in result["warnings"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"canary": "dev-pg-01"}, "patch_canary dev-pg-01 is the PostgreSQL primary"),
    ({"canary": "dev-nope-01"}, "patch_canary 'dev-nope-01' is not one of the hosts"),
    ({"serial": {"default": ["some"]}}, "patch_serial['default']: 'some' is neither"),
    ({"serial": {"db": 1}}, "patch_serial names class 'db'"),
    ({"class_order": ["pg", "db"]}, "patch_class_order names class 'db'"),
])
def test_bad_input_names_the_variable(kwargs, message):
    with pytest.raises(patching.PatchPlanError) as caught:
        patching.plan(fleet(), **kwargs)
    assert message in str(caught.value)


def test_only_primaries_to_patch_means_no_canary_and_says_so():
    hosts = [h for h in fleet() if h["name"] in ("dev-pg-01", "dev-pg-02")]
    hosts[1]["todo"] = False
    result = patching.plan(hosts)
    assert shape(result) == [("primary", ["dev-pg-01"], "pg_switchover")]
    assert result["warnings"] == ["no host can be the canary (only primaries to patch): none is used"]


def test_two_primaries_is_split_brain_and_nothing_is_planned():
    with pytest.raises(patching.PatchPlanError, match="reports 2 primaries"):
        patching.plan(fleet(**{"dev-pg-02": ("pg_role", "primary")}))


@pytest.mark.parametrize(("spec", "count", "sizes"), [
    ([1, "25%", "100%"], 10, [1, 2, 7]),
    (1, 3, [1, 1, 1]),
    (["50%"], 3, [1, 1, 1]),
    ([2, "100%"], 2, [2]),
    ([5], 0, []),
])
def test_serial_sizes(spec, count, sizes):
    assert patching.serial_sizes(spec, count) == sizes


PLAN = {"batches": [
    {"index": 1, "kind": "canary", "action": None, "hosts": ["dev-gpu-01"]},
    {"index": 2, "kind": "batch", "action": None, "hosts": ["dev-pg-02"]},
    {"index": 3, "kind": "primary", "action": "pg_switchover", "hosts": ["dev-pg-01"]},
    {"index": 4, "kind": "batch", "action": None, "hosts": ["dev-trading-01", "dev-trading-02"]},
]}


def record(host, started, finished, result="patched", **kw):
    return {"host": host, "started": started, "finished": finished, "result": result,
            "packages": [{"name": "qb-demo-service", "before": "1.0", "after": "1.1"}], **kw}


def test_a_run_stopped_by_a_gate_summarises_and_leaves_a_resume_point():
    records = [record("dev-gpu-01", 100.0, 130.5, rebooted=True),
               record("dev-pg-02", 131.0, 150.0, result="failed",
                      why="gate postgresql: replica not streaming")]
    result = patching.summary(PLAN, records)
    assert result["result"] == "failed" and result["hosts_failed"] == ["dev-pg-02"]
    assert [b["result"] for b in result["batches"]] == ["patched", "failed", "not reached", "not reached"]
    assert result["batches"][0]["wall_s"] == 30.5 and result["rebooted"] == ["dev-gpu-01"]
    assert result["hosts_not_reached"] == ["dev-pg-01", "dev-trading-01", "dev-trading-02"]
    point = patching.resume_point(PLAN, records)
    assert point["done"] == ["dev-gpu-01"]
    assert point["left"] == ["dev-pg-02", "dev-pg-01", "dev-trading-01", "dev-trading-02"]
    assert point["failed"] == [{"host": "dev-pg-02", "why": "gate postgresql: replica not streaming"}]


def test_a_completed_run_has_no_resume_point_and_batch_wall_times():
    records = [record("dev-gpu-01", 0, 10), record("dev-pg-02", 10, 20), record("dev-pg-01", 20, 45),
               record("dev-trading-01", 45, 60), record("dev-trading-02", 46, 70)]
    result = patching.summary(PLAN, records)
    assert result["result"] == "patched" and result["packages_changed"] == 5
    assert [b["wall_s"] for b in result["batches"]] == [10, 10, 25, 25]
    assert patching.resume_point(PLAN, records) is None


def test_a_run_limited_to_the_primary_still_switches_over_to_its_replica():
    hosts = [h for h in fleet() if h["name"] == "dev-pg-01"]
    result = patching.plan(hosts, members={"pg": ["dev-pg-01", "dev-pg-02"]})
    assert shape(result) == [("primary", ["dev-pg-01"], "pg_switchover")]
    assert not any("only member" in w for w in result["warnings"])


def test_segments_cut_the_run_where_a_primary_needs_its_switchover():
    members = {"pg": ["dev-pg-01", "dev-pg-02"], "redis": ["dev-redis-01", "dev-redis-02", "dev-redis-03"]}
    result = patching.plan(fleet(), serial={"default": [1, "50%", "100%"]}, canary="dev-gpu-01",
                           class_order=["monitoring", "gpu", "pg", "redis", "vpn", "trading"],
                           members=members)
    segs = result["segments"]
    assert [(s["before"] or {}).get("action") for s in segs] == [None, "pg_switchover", "redis_failover"]
    assert segs[0]["hosts"] == ["dev-gpu-01", "dev-monitoring-01", "dev-pg-02"]
    assert segs[0]["serial"] == [1, 1, 1] and segs[0]["batches"] == [1, 2, 3]
    assert segs[1]["before"] == {"action": "pg_switchover", "class": "pg", "primary": "dev-pg-01",
                                 "members": ["dev-pg-01", "dev-pg-02"]}
    # the old primary's turn, then the next class up to the next switchover
    assert segs[1]["hosts"] == ["dev-pg-01", "dev-redis-02", "dev-redis-03"]
    assert segs[2]["before"]["members"] == members["redis"]
    assert segs[2]["hosts"][0] == "dev-redis-01" and segs[2]["serial"] == [1, 1, 1, 1, 1]
    # every batch in exactly one segment, in order
    assert [h for s in segs for h in s["hosts"]] == result["order"]


def test_more_switchovers_than_the_playbook_has_segments_is_refused():
    hosts = []
    for n in range(4):
        hosts += [{"name": f"{role[0]}{n}", "class": f"pg{n}", "groups": ["postgresql"], "todo": True,
                   "pg_role": role} for role in ("primary", "replica")]
    with pytest.raises(patching.PatchPlanError, match="at most 3"):
        patching.plan(hosts)


def test_a_limited_run_keeps_the_environments_class_order_and_serial():
    members = {"trading": ["dev-trading-01", "dev-trading-02"], "pg": ["dev-pg-01", "dev-pg-02"]}
    hosts = [h for h in fleet() if h["class"] == "trading"]
    result = patching.plan(hosts, serial={"pg": [1]}, class_order=["pg", "trading"], members=members)
    assert result["order"] == ["dev-trading-01", "dev-trading-02"]
    with pytest.raises(patching.PatchPlanError, match="class 'gpu'"):
        patching.plan(hosts, class_order=["gpu"], members=members)


def test_each_switchover_is_reported_once_though_every_host_of_its_play_holds_it():
    pg = {"old_primary": "pg-1", "new_primary": "pg-2", "rto_seconds": 17.6, "rpo_rows": 0}
    redis = {"from": "redis-1", "to": "redis-2", "seconds": 17.5}
    facts = {"localhost": {"postgresql_failover": pg}, "pg-1": {"postgresql_failover": pg},
             "pg-2": {"postgresql_failover": dict(pg)}, "redis-1": {"redis_failover": redis},
             "redis-2": {"redis_failover": redis}, "vpn-1": {}}
    assert patching.switchovers(facts) == [pg, redis]
    assert patching.switchovers({"h": {}}) == []
