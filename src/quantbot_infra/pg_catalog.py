"""What the postgresql role would change on a primary, judged from one read of its catalogs.

The primary's logins, databases, CONNECT grants, replication slots, the grants pg_rewind and
the exporter need, and the market-data schemas are read by one shell command
(``read_command``: psql as the postgres superuser over the local socket, JSON out). ``plan``
then compares, on the controller, what the catalogs hold with what the role asks for and
lists only the items that differ; the role runs community.postgresql's modules for those
items alone, and those modules still make (and report) every change. Anything the read could
not show (the server did not answer, a password stored in a form not checked here, a NULL
ACL) counts as differing, so the module decides.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shlex

# the functions pg_rewind reads the data directory with, as the role grants them
REWIND_FUNCTIONS = (
    "pg_catalog.pg_ls_dir(text, boolean, boolean)",
    "pg_catalog.pg_stat_file(text, boolean)",
    "pg_catalog.pg_read_binary_file(text)",
    "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
)
REWIND_LOGIN, MONITOR_LOGIN, MONITOR_ROLE = "rewind", "prometheus", "pg_monitor"
# what the role grants, from the same names the read checks
GRANT_SQL = "".join(f"GRANT EXECUTE ON FUNCTION {f} TO {REWIND_LOGIN};\n" for f in REWIND_FUNCTIONS) + (
    f"GRANT {MONITOR_ROLE} TO {MONITOR_LOGIN};\n")
# role_attr_flags keyword -> pg_authid column
_FLAGS = {
    "LOGIN": "rolcanlogin", "REPLICATION": "rolreplication", "SUPERUSER": "rolsuper",
    "CREATEDB": "rolcreatedb", "CREATEROLE": "rolcreaterole", "INHERIT": "rolinherit",
    "BYPASSRLS": "rolbypassrls",
}
_CLUSTER_SQL = """
SELECT json_build_object(
  'roles', (SELECT json_object_agg(rolname, json_build_object(
              'rolcanlogin', rolcanlogin, 'rolreplication', rolreplication, 'rolsuper', rolsuper,
              'rolcreatedb', rolcreatedb, 'rolcreaterole', rolcreaterole, 'rolinherit', rolinherit,
              'rolbypassrls', rolbypassrls, 'password', rolpassword,
              'config', (SELECT setconfig FROM pg_db_role_setting
                           WHERE setrole = a.oid AND setdatabase = 0)))
              FROM pg_authid a WHERE rolname !~ '^pg_'),
  'members', (SELECT json_object_agg(u.rolname, (SELECT json_agg(r.rolname) FROM pg_auth_members m
                JOIN pg_roles r ON r.oid = m.roleid WHERE m.member = u.oid))
              FROM pg_roles u WHERE rolname !~ '^pg_'),
  'databases', (SELECT json_object_agg(datname, json_build_object(
                  'owner', pg_get_userbyid(datdba), 'encoding', pg_encoding_to_char(encoding),
                  'acl', datacl::text[])) FROM pg_database),
  'functions', (SELECT json_object_agg(f, (SELECT proacl::text[] FROM pg_proc
                  WHERE oid = to_regprocedure(f))) FROM unnest(ARRAY[{functions}]) AS f),
  'slots', (SELECT coalesce(json_agg(slot_name), '[]') FROM pg_replication_slots))
"""
_DATABASE_SQL = """
SELECT json_build_object(
  'schemas', (SELECT json_object_agg(nspname, pg_get_userbyid(nspowner)) FROM pg_namespace),
  'extensions', (SELECT coalesce(json_object_agg(e.extname, n.nspname), '{}') FROM pg_extension e
                   JOIN pg_namespace n ON n.oid = e.extnamespace),
  'ticks', to_regclass('market.ticks') IS NOT NULL)
"""
# pg_partman's settings of the tick table (a query of its own: it fails where pg_partman is not
# installed yet)
_PARTMAN_SQL = """
SELECT coalesce((SELECT row_to_json(c)::text FROM (SELECT retention, premake, retention_keep_table
  FROM partman.part_config WHERE parent_table = 'market.ticks') c), 'null')
"""


def psql(port: int) -> str:
    """psql as the postgres superuser over the local socket (root is mapped to it), for a
    shell read: unaligned tuples only, no password prompt, no pager (a raw task's terminal
    over SSH has no size, so psql would page even one line and wait), stop at an error."""
    return f"psql -XAtqw -P pager=off -v ON_ERROR_STOP=1 -h /var/run/postgresql -p {int(port)} -U postgres"


def read_command(port: int, database: str | None = None) -> str:
    """One line of JSON for the cluster, then, for the market-data ``database``, one of its
    schemas and extensions and one of pg_partman's tick settings ("null" where there are none
    yet); nothing at all when the server does not answer. Read-only."""
    functions = ", ".join(f"'{f}'" for f in REWIND_FUNCTIONS)
    base = psql(port)
    cluster = " ".join(_CLUSTER_SQL.replace("{functions}", functions).split())
    cmd = f"{base} -d postgres -c {shlex.quote(cluster)}"
    if database:
        for sql in (_DATABASE_SQL, _PARTMAN_SQL):
            sql = shlex.quote(" ".join(sql.split()))
            cmd += f" && {{ {base} -d {shlex.quote(database)} -c {sql} 2>/dev/null || echo null; }}"
    return cmd + "; exit 0"


def scram_matches(verifier: str, password: str, name: str = "") -> bool:
    """Whether ``verifier`` (pg_authid.rolpassword) is of ``password``: SCRAM-SHA-256 as
    PostgreSQL stores it, or the legacy md5 form. An ASCII password only (SASLprep is identity
    there); anything else is not judged here and reads as a mismatch."""
    if not verifier or not password.isascii():
        return False
    if verifier.startswith("md5"):
        # PostgreSQL's own legacy format, compared only (never written)
        digest = hashlib.md5((password + name).encode(), usedforsecurity=False).hexdigest()
        return hmac.compare_digest(verifier, "md5" + digest)
    try:
        scheme, rest = verifier.split("$", 1)
        params, keys = rest.split("$", 1)
        iterations, salt = params.split(":", 1)
        stored_key, server_key = (base64.b64decode(k) for k in keys.split(":", 1))
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    except ValueError:
        return False
    if scheme != "SCRAM-SHA-256":
        return False
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return (hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key)
            and hmac.compare_digest(hmac.new(salted, b"Server Key", "sha256").digest(), server_key))


def _flags_hold(role: dict, flags: str) -> bool:
    """Whether every attribute of ``flags`` ("LOGIN,NOSUPERUSER", as role_attr_flags) holds;
    a keyword not known here reads as not holding."""
    for flag in filter(None, (f.strip().upper() for f in flags.split(","))):
        negated = flag.startswith("NO") and flag[2:] in _FLAGS
        column = _FLAGS.get(flag[2:] if negated else flag)
        if column is None or bool(role.get(column)) == negated:
            return False
    return True


def _flags_of(login: dict) -> str:
    # the role's own logins name "flags"; postgresql_users entries "attributes" (default LOGIN)
    return login.get("flags", login.get("attributes", "LOGIN"))


def login_settled(roles: dict, name: str, flags: str, password: str | None) -> bool:
    role = roles.get(name)
    if role is None or not _flags_hold(role, flags):
        return False
    return password is None or scram_matches(role.get("password") or "", password, name)


def _acl_grantees(acl: list[str], privilege: str) -> set[str]:
    """Grantees ("" is PUBLIC) holding ``privilege`` (one aclitem letter) in ``acl``."""
    holders = set()
    for item in acl:
        grantee, _, rest = item.partition("=")
        privileges = rest.split("/", 1)[0]
        if privilege in privileges:
            holders.add(grantee.strip('"'))
    return holders


def connect_settled(databases: dict, database: str, role: str, present: bool) -> bool:
    acl = (databases.get(database) or {}).get("acl")
    if acl is None:  # the default ACL: the first GRANT or REVOKE writes it out
        return False
    holds = ("" if role.upper() == "PUBLIC" else role) in _acl_grantees(acl, "c")
    return holds == present


def _grants_settled(cluster: dict) -> bool:
    functions = cluster.get("functions") or {}
    for signature in REWIND_FUNCTIONS:
        acl = functions.get(signature)
        if acl is None or REWIND_LOGIN not in _acl_grantees(acl, "X"):
            return False
    return MONITOR_ROLE in ((cluster.get("members") or {}).get(MONITOR_LOGIN) or [])


def _parse(output: str) -> list[dict | None]:
    """The read's three documents (cluster, market-data database, pg_partman), None where
    missing or unreadable."""
    lines = [line for line in output.replace("\r\n", "\n").split("\n") if line.strip()]
    docs: list[dict | None] = []
    for line in (lines + [""] * 3)[:3]:
        try:
            doc = json.loads(line) if line else None
        except ValueError:
            doc = None
        docs.append(doc if isinstance(doc, dict) else None)
    return docs


def connect_grants(databases: list[dict], users: list[dict]) -> list[dict]:
    """The CONNECT grant of every (database, login) pair the role manages, PUBLIC included:
    [{database, role, present}], present where the login lists the database."""
    allowed = {u["name"]: set(u.get("databases") or []) for u in users}
    return [{"database": d["name"], "role": role, "present": d["name"] in allowed.get(role, set())}
            for d in databases for role in ["PUBLIC", *allowed]]


def plan(output: str, logins: list[dict], passwords: dict, databases: list[dict], users: list[dict],
         slots: list[str], stale_slot: str, marketdata_owner: str | None = None) -> dict:
    """What differs on the primary, from ``read_command``'s ``output``:

    - ``logins``: [{name, flags}] (or postgresql_users' entries: ``attributes``, default LOGIN),
      checked against ``passwords`` by name (a login without one has no managed password) ->
      the names to apply;
    - ``databases``: [{name, owner}] -> the names to apply; with ``users`` ([{name,
      databases}]) -> the CONNECT grants to apply, as ``connect_grants`` lists them;
    - ``grants``: whether pg_rewind's function grants and the exporter's pg_monitor are in
      place; ``grant_sql``: the statements that put them there;
    - ``slots``: slots that must exist -> those missing; ``stale_slot``: must not exist;
    - ``marketdata_owner``: where the market-data database is managed, its owner -> whether
      each schema and the extension need their module, and the tick table's state.
    """
    cluster, database, partman = _parse(output)
    cluster = cluster or {}
    roles = cluster.get("roles") or {}
    dbs = cluster.get("databases") or {}
    present_slots = set(cluster.get("slots") or [])
    postgres_config = (roles.get("postgres") or {}).get("config") or []
    result = {
        "read": bool(cluster),
        "superuser_local": "synchronous_commit=local" in postgres_config,
        "grants": bool(cluster) and _grants_settled(cluster),
        "grant_sql": GRANT_SQL,
        "logins": [login["name"] for login in logins
                   if not login_settled(roles, login["name"], _flags_of(login),
                                        passwords.get(login["name"]))],
        "databases": [d["name"] for d in databases
                      if (dbs.get(d["name"]) or {}).get("owner") != d["owner"]
                      or dbs[d["name"]].get("encoding") != "UTF8"],
        "privileges": [g for g in connect_grants(databases, users)
                       if not connect_settled(dbs, g["database"], g["role"], g["present"])],
        "slots": [s for s in slots if s not in present_slots],
        "stale_slot": not cluster or stale_slot in present_slots,
    }
    if marketdata_owner is not None:
        schemas = (database or {}).get("schemas") or {}
        extensions = (database or {}).get("extensions") or {}
        result["marketdata"] = {
            "partman_schema": "partman" not in schemas,
            "partman_extension": extensions.get("pg_partman") != "partman",
            "market_schema": schemas.get("market") != marketdata_owner,
            # as the tick tasks read them: whether the table exists, pg_partman's settings of it
            "ticks_created": bool((database or {}).get("ticks")),
            "partman": partman,
        }
    return result
