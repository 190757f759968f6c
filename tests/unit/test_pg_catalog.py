"""quantbot_infra.pg_catalog: what the postgresql role would change on a primary, judged from
one read of its catalogs. The fixture is the read command's real output on the db_ha
scenario's primary, with a throwaway login (password "fixture-password") added for the
verifier and every other login's verifier blanked."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from quantbot_infra import pg_catalog

READ = (Path(__file__).parent / "fixtures" / "pg_catalog_read.txt").read_text()
SYSTEM = [{"name": "replicator", "flags": "LOGIN,REPLICATION"}, {"name": "rewind", "flags": "LOGIN"},
          {"name": "prometheus", "flags": "LOGIN"}]
USERS = [{"name": "marketdata", "databases": ["marketdata"]}]
DATABASES = [{"name": "marketdata", "owner": "marketdata"}]


def plan(output=READ, logins=SYSTEM, passwords=None, databases=DATABASES, users=USERS,
         slots=("dbha_pg_2",), stale="dbha_pg_1", owner="marketdata"):
    return pg_catalog.plan(output, list(logins), passwords or {}, databases, users, list(slots), stale, owner)


def edited(change) -> str:
    """The fixture with its cluster document changed by ``change``."""
    first, *rest = READ.splitlines()
    doc = json.loads(first)
    change(doc)
    return "\n".join([json.dumps(doc), *rest])


def test_a_settled_primary_needs_no_module():
    p = plan(logins=[*SYSTEM, {"name": "fixture_login"}], passwords={"fixture_login": "fixture-password"})
    assert p == {
        "read": True, "superuser_local": True, "grants": True, "grant_sql": pg_catalog.GRANT_SQL,
        "logins": [], "databases": [],
        "privileges": [], "slots": [], "stale_slot": False,
        "marketdata": {"partman_schema": False, "partman_extension": False, "market_schema": False,
                       "ticks_created": True,
                       "partman": {"retention": "30 days", "premake": 7, "retention_keep_table": False}},
    }


def test_a_changed_password_or_attribute_sends_the_login_to_its_module():
    p = plan(logins=[{"name": "fixture_login"}, {"name": "rewind", "flags": "LOGIN,REPLICATION"},
                     {"name": "prometheus", "flags": "LOGIN,NOSUPERUSER"}, {"name": "absent_login"}],
             passwords={"fixture_login": "another-password"})
    assert p["logins"] == ["fixture_login", "rewind", "absent_login"]
    # a keyword not judged here goes to the module too
    assert plan(logins=[{"name": "rewind", "flags": "LOGIN,CONNECTION LIMIT 3"}])["logins"] == ["rewind"]


def test_scram_verifier_of_the_server_is_checked():
    verifier = json.loads(READ.splitlines()[0])["roles"]["fixture_login"]["password"]
    assert verifier.startswith("SCRAM-SHA-256$4096:")
    assert pg_catalog.scram_matches(verifier, "fixture-password")
    assert not pg_catalog.scram_matches(verifier, "fixture-passwore")
    assert not pg_catalog.scram_matches(verifier, "fïxture-password")  # no SASLprep here: the module decides
    assert not pg_catalog.scram_matches("SCRAM-SHA-256$broken", "fixture-password")
    assert not pg_catalog.scram_matches("", "fixture-password")


def test_legacy_md5_verifier():
    # md5 of password + login name, as PostgreSQL stored it before SCRAM
    stored = "md5" + hashlib.md5(b"secretalice", usedforsecurity=False).hexdigest()
    assert pg_catalog.scram_matches(stored, "secret", "alice")
    assert not pg_catalog.scram_matches(stored, "secret", "bob")


def test_connect_grants_follow_each_logins_databases():
    users = [*USERS, {"name": "reporting", "databases": []}]
    assert pg_catalog.connect_grants(DATABASES, users) == [
        {"database": "marketdata", "role": "PUBLIC", "present": False},
        {"database": "marketdata", "role": "marketdata", "present": True},
        {"database": "marketdata", "role": "reporting", "present": False},
    ]
    # reporting holds no CONNECT on marketdata: settled; a new database has the default ACL
    p = plan(users=users, databases=[*DATABASES, {"name": "postgres", "owner": "postgres"}])
    assert p["privileges"] == [{"database": "postgres", "role": r, "present": False}
                               for r in ("PUBLIC", "marketdata", "reporting")]
    assert p["databases"] == []


def test_public_connect_left_on_a_database_is_revoked():
    def grant_public(doc):
        doc["databases"]["marketdata"]["acl"].append("=c/marketdata")
    revoke = {"database": "marketdata", "role": "PUBLIC", "present": False}
    assert plan(edited(grant_public))["privileges"] == [revoke]


def test_missing_database_grants_and_slots_are_listed():
    def strip(doc):
        del doc["databases"]["marketdata"]
        doc["functions"]["pg_catalog.pg_stat_file(text, boolean)"] = ["postgres=X/postgres"]
        doc["members"]["prometheus"] = None
        doc["slots"] = ["dbha_pg_1"]
        doc["roles"]["postgres"]["config"] = None
    p = plan(edited(strip))
    assert p["databases"] == ["marketdata"] and p["slots"] == ["dbha_pg_2"] and p["stale_slot"]
    assert not p["grants"] and not p["superuser_local"]
    assert len(p["privileges"]) == 2


def test_the_grant_statements_are_what_the_read_checks():
    def granted_by_the_statements(doc):
        doc["functions"] = {}
        doc["members"]["prometheus"] = None
        for statement in filter(None, pg_catalog.GRANT_SQL.split(";\n")):
            words = statement.split(" TO ")
            if words[0].startswith("GRANT EXECUTE ON FUNCTION "):
                doc["functions"][words[0].removeprefix("GRANT EXECUTE ON FUNCTION ")] = [
                    f"{words[1]}=X/postgres"]
            else:
                doc["members"][words[1]] = [words[0].removeprefix("GRANT ")]
    assert not plan(edited(lambda doc: doc["functions"].clear()))["grants"]
    assert plan(edited(granted_by_the_statements))["grants"]


def test_nothing_read_means_every_module_runs():
    for output in ("", "psql: error: connection to server failed\n", "null\nnull\nnull\n"):
        p = plan(output, passwords={"rewind": "x"})
        assert not p["read"] and not p["grants"] and p["stale_slot"]
        assert p["logins"] == ["replicator", "rewind", "prometheus"] and p["databases"] == ["marketdata"]
        assert p["slots"] == ["dbha_pg_2"] and len(p["privileges"]) == 2
        assert p["marketdata"] == {"partman_schema": True, "partman_extension": True, "market_schema": True,
                                   "ticks_created": False, "partman": None}


def test_a_new_market_data_database_has_nothing_yet():
    first = READ.splitlines()[0]
    p = plan(f"{first}\nnull\nnull\n")
    assert p["marketdata"]["partman_schema"] and p["marketdata"]["market_schema"]
    assert not p["marketdata"]["ticks_created"] and p["marketdata"]["partman"] is None
    assert "marketdata" not in plan(owner=None)


@pytest.mark.parametrize("database", [None, "marketdata"])
def test_the_read_command_is_valid_shell_that_only_reads(database):
    cmd = pg_catalog.read_command(5432, database)
    assert subprocess.run(["sh", "-n", "-c", cmd], check=False).returncode == 0
    sql = cmd.upper()
    for verb in ("INSERT", "UPDATE", "DELETE", "ALTER", "CREATE", "DROP", "GRANT"):
        assert f" {verb} " not in sql
    assert "pager=off" in cmd and "w" in pg_catalog.psql(5432).split()[1]  # never prompts
    assert cmd.count("psql ") == (3 if database else 1)
