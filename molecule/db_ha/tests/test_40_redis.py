"""Redis on real hosts: replication, ACLs, binding, exporter and a sentinel failover."""

import time

from conftest import IP, host, playbook, rcli, secret

NODES = ("dbha-redis-1", "dbha-redis-2", "dbha-redis-3")


def sentinel_cmd(via: str, *args: str):
    pw = secret("redis", "sentinel-auth")
    return host(via).run(f"REDISCLI_AUTH={pw} redis-cli --no-auth-warning -h {IP[via]} -p 26379 " + " ".join(args))


def current_primary() -> str:
    ip = sentinel_cmd("dbha-redis-1", "SENTINEL", "get-master-addr-by-name", "quantbot").stdout.split()[0]
    return next(name for name, addr in IP.items() if addr == ip)


def test_write_on_primary_is_read_on_replicas():
    primary = current_primary()
    app = secret("redis", "app")
    assert rcli(primary, IP[primary], "SET", "qb:test:last-px", "5012.25", user="app", password=app).stdout.strip() == "OK"
    assert rcli(primary, IP[primary], "WAIT", "2", "5000", user="app", password=app).stdout.strip() == "2"
    for node in NODES:
        if node == primary:
            continue
        assert rcli(node, IP[node], "ROLE").stdout.split()[0] == "slave"
        assert rcli(node, IP[node], "GET", "qb:test:last-px", user="app", password=app).stdout.strip() == "5012.25"
        # replicas refuse writes
        assert "READONLY" in rcli(node, IP[node], "SET", "x", "1", user="app", password=app).stdout


def test_unauthenticated_command_refused():
    out = rcli("dbha-redis-1", IP["dbha-redis-2"], "GET", "qb:test:last-px", user=None)
    assert out.stdout.startswith("NOAUTH"), out.stdout + out.stderr


def test_wrong_password_and_forbidden_command_refused():
    out = rcli("dbha-redis-1", IP["dbha-redis-1"], "PING", user="app", password="wrong")
    assert "WRONGPASS" in out.stdout + out.stderr
    # the application login has no admin commands
    out = rcli("dbha-redis-1", IP["dbha-redis-1"], "CONFIG", "GET", "requirepass", user="app",
               password=secret("redis", "app"))
    assert "NOPERM" in out.stdout
    # the sentinel itself wants its password too
    assert "NOAUTH" in rcli("dbha-redis-1", IP["dbha-redis-1"], "PING", user=None, port=26379).stdout


def test_bound_to_the_private_address_only_with_protected_mode():
    node = host("dbha-redis-1")
    listening = node.check_output("ss -Htln")
    assert f"{IP['dbha-redis-1']}:6379" in listening and f"{IP['dbha-redis-1']}:26379" in listening
    assert "127.0.0.1:6379" not in listening and "*:6379" not in listening and "0.0.0.0:6379" not in listening
    assert "Connection refused" in rcli("dbha-redis-1", "127.0.0.1", "PING").stderr
    out = rcli("dbha-redis-1", IP["dbha-redis-1"], "CONFIG", "GET", "protected-mode")
    assert out.stdout.split() == ["protected-mode", "yes"]
    # the ACL file holds hashes, never the passwords
    acl = node.file("/etc/redis/users.acl")
    assert acl.mode == 0o640
    assert secret("redis", "app") not in acl.content_string


def test_exporter_answers():
    metrics = host("dbha-app-1").check_output(f"curl -fsS http://{IP['dbha-redis-1']}:9121/metrics")
    assert "\nredis_up 1" in metrics


def test_sentinel_promotes_a_replica_within_30s_when_the_primary_stops():
    old = current_primary()
    watcher = next(n for n in NODES if n != old)
    host(old).check_output("systemctl stop redis-server")
    started = time.monotonic()
    new = old
    while time.monotonic() - started < 30:
        new = current_primary_via(watcher)
        if new and new != old:
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    print(f"sentinel promoted {new} {elapsed:.1f} s after {old} stopped")
    assert new and new != old, f"no promotion within 30 s (primary still {old})"
    assert rcli(new, IP[new], "ROLE").stdout.split()[0] == "master"
    app = secret("redis", "app")
    assert rcli(new, IP[new], "SET", "qb:test:after-failover", "1", user="app", password=app).stdout.strip() == "OK"
    # the old primary comes back as a replica of the new one
    host(old).check_output("systemctl start redis-server")
    for _ in range(60):
        role = rcli(old, IP[old], "ROLE").stdout.split()
        if role and role[0] == "slave" and IP[new] in role:
            break
        time.sleep(1)
    assert role[0] == "slave" and IP[new] in role
    for _ in range(30):
        if rcli(old, IP[old], "GET", "qb:test:after-failover", user="app", password=app).stdout.strip() == "1":
            break
        time.sleep(1)
    assert rcli(old, IP[old], "GET", "qb:test:after-failover", user="app", password=app).stdout.strip() == "1"


def current_primary_via(node: str) -> str:
    out = sentinel_cmd(node, "SENTINEL", "get-master-addr-by-name", "quantbot")
    ip = out.stdout.split()[0] if out.rc == 0 and out.stdout.strip() else ""
    return next((name for name, addr in IP.items() if addr == ip), "")


def test_sigkill_of_the_primary_sentinels_promote_and_the_role_converges_it_as_replica():
    old = current_primary()
    watcher = next(n for n in NODES if n != old)
    app = secret("redis", "app")
    # acknowledged writes: each confirmed by a replica (WAIT 1) before the next
    acked = []
    for i in range(40):
        if rcli(old, IP[old], "SET", f"qb:drill:{i}", str(i), user="app", password=app).stdout.strip() == "OK" \
                and int(rcli(old, IP[old], "WAIT", "1", "1000", user="app", password=app).stdout.strip() or 0) >= 1:
            acked.append(i)
    assert len(acked) == 40
    started = time.monotonic()
    host(old).check_output("kill -KILL $(systemctl show -p MainPID --value redis-server)")
    new = old
    while time.monotonic() - started < 45 and new in (old, ""):
        new = current_primary_via(watcher)
        time.sleep(0.5)
    assert new not in (old, ""), f"no promotion within 45 s (primary still {old})"
    while rcli(new, IP[new], "SET", "qb:drill:after", "1", user="app", password=app).stdout.strip() != "OK":
        assert time.monotonic() - started < 60, "the new primary took no write"
        time.sleep(0.2)
    rto = time.monotonic() - started
    missing = [i for i in acked
               if rcli(new, IP[new], "GET", f"qb:drill:{i}", user="app", password=app).stdout.strip() != str(i)]
    print(f"drill SIGKILL Redis primary {old}: {new} promoted and took a write {rto:.1f} s later; "
          f"{len(missing)} of {len(acked)} replica-acknowledged writes lost")
    assert not missing
    # systemd restarts the crashed node only after the sentinels had time to promote (RestartSec):
    # it comes back as a replica of the new primary, not as a second primary
    for _ in range(60):
        role = rcli(old, IP[old], "ROLE").stdout.split()
        if role and role[0] == "slave" and IP[new] in role:
            break
        time.sleep(1)
    assert role and role[0] == "slave" and IP[new] in role, role
    converged = playbook("data.yml", "--tags", "redis")
    assert "failed=0" in converged.stdout
    assert current_primary() == new
    assert rcli(old, IP[old], "GET", "qb:drill:after", user="app", password=app).stdout.strip() == "1"
