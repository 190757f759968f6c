"""PostgreSQL on real hosts: replication, pooling, refusals, TLS, partitions, exporter, facts."""

import datetime as dt

from conftest import IP, local_sql, module, psql, secret

PG1, PG2 = IP["dbha-pg-1"], IP["dbha-pg-2"]


def test_rows_written_on_primary_are_read_on_replica(app_password):
    out = psql("dbha-app-1", "CREATE TABLE IF NOT EXISTS market.repl_check (id int PRIMARY KEY, note text);"
               "INSERT INTO market.repl_check SELECT g, md5(g::text) FROM generate_series(1, 500) g "
               "ON CONFLICT DO NOTHING;", host_ip=PG1, password=app_password)
    assert out.rc == 0, out.stderr
    # synchronous replication: the commit returned after the replica flushed it
    on_replica = psql("dbha-app-1", "SELECT count(*), sum(id) FROM market.repl_check",
                      host_ip=PG2, password=app_password)
    assert on_replica.rc == 0, on_replica.stderr
    assert on_replica.stdout.strip() == "500|125250"
    assert local_sql("dbha-pg-2", "SELECT pg_is_in_recovery()").strip() == "t"


def test_pooled_connection_through_pgbouncer_reaches_the_primary(app_password):
    # the replica's pgBouncer pools towards the primary
    out = psql("dbha-app-1", "SELECT host(inet_server_addr()), pg_is_in_recovery()", host_ip=PG2, port=6432,
               password=app_password)
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == f"{PG1}|f"
    clients = local_sql("dbha-pg-1", "SELECT count(*) FROM pg_stat_activity WHERE usename = 'marketdata' "
                        f"AND client_addr = '{PG2}'")
    assert int(clients) >= 1, "pgBouncer keeps its server connection in the pool"


def test_connection_without_password_refused():
    out = psql("dbha-app-1", "SELECT 1", host_ip=PG1)
    assert out.rc != 0
    assert "no password supplied" in out.stderr


def test_wrong_password_refused():
    out = psql("dbha-app-1", "SELECT 1", host_ip=PG1, password="not-the-password")
    assert out.rc != 0
    assert 'password authentication failed for user "marketdata"' in out.stderr


def test_wrong_password_refused_by_pgbouncer():
    out = psql("dbha-app-1", "SELECT 1", host_ip=PG1, port=6432, password="not-the-password")
    assert out.rc != 0
    assert "SASL authentication failed" in out.stderr


def test_non_allowed_address_refused(app_password):
    # a Redis node is not a PostgreSQL client, even with the right password
    out = psql("dbha-redis-1", "SELECT 1", host_ip=PG1, password=app_password)
    assert out.rc != 0
    assert "rejects connection" in out.stderr or "no pg_hba.conf entry" in out.stderr, out.stderr
    assert IP["dbha-redis-1"] in out.stderr
    via_pool = psql("dbha-redis-1", "SELECT 1", host_ip=PG1, port=6432, password=app_password)
    assert via_pool.rc != 0


def test_unencrypted_connection_refused(app_password):
    out = psql("dbha-app-1", "SELECT 1", host_ip=PG1, password=app_password, sslmode="disable")
    assert out.rc != 0
    assert "no encryption" in out.stderr


def test_client_connections_use_tls_with_the_environment_ca(app_password):
    out = psql("dbha-app-1", "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
               host_ip=PG1, password=app_password)
    assert out.rc == 0 and out.stdout.startswith("t|TLSv1.")
    # the replica's own stream is encrypted too
    assert local_sql("dbha-pg-1", "SELECT bool_and(s.ssl) FROM pg_stat_replication r "
                     "JOIN pg_stat_ssl s USING (pid)").strip() == "t"


def test_ticks_partitioned_by_day_made_ahead(app_password):
    today = dt.datetime.now(dt.UTC).date()
    names = local_sql("dbha-pg-1", "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                      "WHERE i.inhparent = 'market.ticks'::regclass").split()
    for days in range(0, 8):
        day = today + dt.timedelta(days=days)
        assert f"ticks_p{day:%Y_%m_%d}" in names, (day, names)
    out = psql("dbha-app-1", "INSERT INTO market.ticks (ts, symbol, seq, price, size, venue) "
               "VALUES (now(), 'ESZ6', 1, 5012.25, 3, 'XCME') RETURNING tableoid::regclass",
               host_ip=PG1, password=app_password)
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == f"market.ticks_p{today:%Y_%m_%d}"


def test_partitions_past_retention_are_dropped():
    local_sql("dbha-pg-1", "SELECT partman.create_partition_time('market.ticks', ARRAY['2020-01-01'::timestamptz])")
    assert local_sql("dbha-pg-1", "SELECT to_regclass('market.ticks_p2020_01_01') IS NOT NULL").strip() == "t"
    local_sql("dbha-pg-1", "SELECT partman.run_maintenance('market.ticks')")
    assert local_sql("dbha-pg-1", "SELECT to_regclass('market.ticks_p2020_01_01') IS NULL").strip() == "t"
    # and the worker that does this on its own is loaded
    assert "pg_partman_bgw" in local_sql("dbha-pg-1", "SHOW shared_preload_libraries")


def test_exporter_answers_on_the_private_address_only():
    from conftest import host
    metrics = host("dbha-app-1").check_output(f"curl -fsS http://{PG1}:9187/metrics")
    assert "\npg_up 1" in metrics
    assert host("dbha-pg-1").run("curl -fsS -o /dev/null http://127.0.0.1:9187/metrics").rc != 0


def test_pgbackrest_archives_wal_to_the_repository():
    from conftest import host
    info = host("dbha-app-1").check_output("su postgres -s /bin/sh -c 'pgbackrest --stanza=quantbot info'")
    assert "wal archive min/max (15): 0000000100000000" in info
    local_sql("dbha-pg-1", "SELECT pg_switch_wal()")
    check = host("dbha-app-1").run("su postgres -s /bin/sh -c 'pgbackrest --stanza=quantbot check'")
    assert check.rc == 0, check.stderr


def test_replication_facts_module():
    primary = module("dbha-pg-1", "qb_pg_replication_facts", "data_directory=/var/lib/postgresql/15/main")
    rep = primary["replication"]
    assert rep["role"] == "primary" and rep["sync_replicas"] == ["dbha-pg-2"]
    assert [r["client_addr"] for r in rep["replicas"]] == [PG2]
    assert rep["slots"][0]["name"] == "dbha_pg_2" and rep["slots"][0]["active"] is True
    replica = module("dbha-pg-2", "qb_pg_replication_facts", "data_directory=/var/lib/postgresql/15/main", "--check")
    assert replica["replication"]["role"] == "replica"
    assert replica["replication"]["streaming"] is True
    assert replica["replication"]["upstream"]["host"] == PG1
    assert replica["changed"] is False
    absent = module("dbha-app-1", "qb_pg_replication_facts", "data_directory=/var/lib/postgresql/15/main")
    assert absent["replication"]["state"] == "absent"


def test_secrets_are_not_left_readable():
    from conftest import host
    pg = host("dbha-pg-1")
    assert pg.file("/var/lib/postgresql/.pgpass").mode == 0o600
    assert pg.file("/etc/pgbouncer/userlist.txt").mode == 0o600
    assert secret("postgresql", "marketdata") not in pg.file("/etc/pgbouncer/userlist.txt").content_string
    assert pg.file("/etc/quantbot/pki/host.key").mode == 0o640
    assert pg.file("/etc/quantbot/pki/host.key").group == "ssl-cert"
