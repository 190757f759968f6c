"""Backup -> destroy the data -> restore: every row comes back, on the primary and its replica.

The backup goes to both repositories, the local one and the off-site one in S3 (a bucket of a
local AWS endpoint, prepare.yml); the restore reads the off-site one."""

import json
import time

from conftest import IP, flat, host, local_sql, playbook, psql

CHECKSUM = ("SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY symbol, ts, seq)) "
            "FROM market.ticks t")


def test_backup_destroy_restore_keeps_every_row(app_password):
    load = psql("dbha-app-1", "INSERT INTO market.ticks (ts, symbol, seq, price, size, venue) "
                "SELECT now() - (g || ' seconds')::interval, 'NQZ6', g, 21000 + g / 100.0, 1 + g % 7, 'XCME' "
                "FROM generate_series(1, 5000) g", host_ip=IP["dbha-pg-1"], password=app_password)
    assert load.rc == 0, load.stderr
    before = local_sql("dbha-pg-1", CHECKSUM).strip()
    assert int(before.split(":")[0]) >= 5000

    started = time.monotonic()
    backup = playbook("backup.yml", "-e", "backup_type=full")
    print(f"backup.yml (full + Redis snapshot): {time.monotonic() - started:.1f} s")
    assert "PostgreSQL full backup" in flat(backup)
    info = host("dbha-app-1").check_output("su postgres -s /bin/sh -c 'pgbackrest --stanza=quantbot info'")
    assert "status: ok" in info and "full backup:" in info
    (stanza,) = json.loads(host("dbha-app-1").check_output(
        "su postgres -s /bin/sh -c 'pgbackrest --stanza=quantbot info --output=json'"))
    assert [(r["key"], r["cipher"], r["status"]["code"]) for r in stanza["repo"]] == [
        (1, "aes-256-cbc", 0), (2, "aes-256-cbc", 0)]
    assert {b["database"]["repo-key"] for b in stanza["backup"] if b["type"] == "full"} == {1, 2}
    # the bucket holds the backup (encrypted by pgBackRest before it leaves the host)
    objects = _s3().list_objects_v2(Bucket="qb-molecule-backup", Prefix="quantbot/backup/quantbot/")
    assert objects["KeyCount"] > 0
    assert _s3().get_bucket_versioning(Bucket="qb-molecule-backup")["Status"] == "Enabled"

    # destroy the primary's data
    pg1 = host("dbha-pg-1")
    pg1.check_output("systemctl stop postgresql@15-main && rm -rf /var/lib/postgresql/15/main")
    assert not pg1.file("/var/lib/postgresql/15/main").exists

    # refused without confirmation, and nothing touched
    refused = playbook("restore.yml", check=False)
    assert refused.returncode != 0
    assert "-e restore_confirm=restore" in flat(refused)
    assert not pg1.file("/var/lib/postgresql/15/main").exists

    started = time.monotonic()
    # from the off-site copy: what is left when the repository host is lost too
    restored = playbook("restore.yml", "-e", "restore_confirm=restore", "-e", "restore_repo=2")
    print(f"restore.yml from S3 (restore + re-clone replica): {time.monotonic() - started:.1f} s")
    assert "dbha-pg-1 restored and primary after" in flat(restored)

    assert local_sql("dbha-pg-1", "SELECT pg_is_in_recovery()").strip() == "f"
    assert local_sql("dbha-pg-1", CHECKSUM).strip() == before
    # the replica was re-cloned from the restored primary and streams again
    assert local_sql("dbha-pg-2", "SELECT pg_is_in_recovery()").strip() == "t"
    assert local_sql("dbha-pg-2", CHECKSUM).strip() == before
    again = psql("dbha-app-1", "INSERT INTO market.repl_check VALUES (100001, 'after restore')",
                 host_ip=IP["dbha-pg-1"], password=app_password)
    assert again.rc == 0, again.stderr
    assert local_sql("dbha-pg-2", "SELECT note FROM market.repl_check WHERE id = 100001").strip() == "after restore"


def test_redis_snapshot_was_taken_and_checked():
    from conftest import rcli
    snapshots = []
    for name in ("dbha-redis-1", "dbha-redis-2", "dbha-redis-3"):
        out = host(name).run("ls /var/lib/qb-backups/redis/")
        snapshots += [(name, f) for f in out.stdout.split() if f.endswith(".rdb")]
    # taken on the primary only
    assert len({name for name, _ in snapshots}) == 1, snapshots
    name, latest = sorted(snapshots)[-1]
    assert rcli(name, IP[name], "ROLE").stdout.split()[0] == "master"
    check = host(name).run(f"redis-check-rdb /var/lib/qb-backups/redis/{latest}")
    assert check.rc == 0 and "RDB looks OK" in check.stdout
    assert host(name).file(f"/var/lib/qb-backups/redis/{latest}").mode == 0o600


def _s3():
    import boto3

    return boto3.client("s3", region_name="eu-west-1", endpoint_url="http://10.240.97.1:5199",
                        aws_access_key_id="testing", aws_secret_access_key="testing")
