"""Find the Debian mirror this machine's apt uses, so test hosts follow the same source.

Runs standalone (``python3 aptsources.py debian|debian-security``) before the virtualenv
exists: standard library only.
"""

from __future__ import annotations

import glob
import re
import sys
from collections.abc import Iterable
from pathlib import Path

SOURCES = ("/etc/apt/sources.list", "/etc/apt/sources.list.d")


def _deb822(text: str) -> Iterable[tuple[str, list[str]]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields = {k.lower(): v for k, v in re.findall(r"^([\w-]+):[ \t]*(.*)$", stanza, re.M)}
        if not fields:
            continue
        if "deb" not in fields.get("types", "deb").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = fields.get("suites", "").split()
        for uri in fields.get("uris", "").split():
            yield uri, suites


def _one_line(text: str) -> Iterable[tuple[str, list[str]]]:
    for line in text.splitlines():
        m = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
        if m:
            yield m.group(1), [m.group(2)]


def sources(root: str = "/") -> list[tuple[str, list[str]]]:
    """(uri, suites) of every enabled binary source, in apt's reading order."""
    base = Path(root)
    found: list[tuple[str, list[str]]] = []
    main = base / SOURCES[0].lstrip("/")
    if main.is_file():
        found += _one_line(main.read_text())
    for path in sorted(glob.glob(str(base / SOURCES[1].lstrip("/") / "*"))):
        text = Path(path).read_text()
        if path.endswith(".sources"):
            found += _deb822(text)
        elif path.endswith(".list"):
            found += _one_line(text)
    return found


def mirror(archive: str = "debian", root: str = "/") -> str | None:
    """The first URI serving ``archive``: 'debian' (main suites) or 'debian-security'."""
    want_security = archive == "debian-security"
    for uri, suites in sources(root):
        if any(s.endswith("-security") for s in suites) == want_security:
            return uri.rstrip("/")
    return None


if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else "debian"
    found = mirror(name)
    if not found:
        sys.exit(f"no apt source for {name} found; set QB_DEBIAN_MIRROR")
    print(found)
