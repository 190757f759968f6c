"""Filters of the postgresql role: thin shims over quantbot_infra.pg_catalog."""

from __future__ import annotations

from quantbot_infra import pg_catalog
from quantbot_infra.filters import call as _call


def qb_pg_psql(port):
    """psql as the superuser over the local socket, for a shell (raw) read."""
    return _call(pg_catalog.psql, int(port))


def qb_pg_catalog_read_command(port, database=None):
    """The shell command that prints the primary's catalogs (and ``database``'s schemas) as JSON."""
    return _call(pg_catalog.read_command, int(port), str(database) if database else None)


def qb_pg_catalog_plan(output, logins, passwords, databases, users, slots, stale_slot, marketdata_owner=None):
    """What the role's modules would change on the primary, from qb_pg_catalog_read_command's output."""
    return _call(pg_catalog.plan, str(output), list(logins), dict(passwords), list(databases), list(users),
                 [str(s) for s in slots], str(stale_slot),
                 str(marketdata_owner) if marketdata_owner else None)


class FilterModule:
    def filters(self):
        return {
            "qb_pg_psql": qb_pg_psql,
            "qb_pg_catalog_read_command": qb_pg_catalog_read_command,
            "qb_pg_catalog_plan": qb_pg_catalog_plan,
        }
