#!/usr/bin/env bash
# Print the Debian mirror URI this machine's apt uses for an archive ("debian" or
# "debian-security"). QB_DEBIAN_MIRROR / QB_DEBIAN_SECURITY_MIRROR override it.
set -euo pipefail
archive="${1:-debian}"
case "$archive" in
  debian) override="${QB_DEBIAN_MIRROR:-}" ;;
  debian-security) override="${QB_DEBIAN_SECURITY_MIRROR:-}" ;;
  *) echo "usage: $0 debian|debian-security" >&2; exit 2 ;;
esac
if [[ -n "$override" ]]; then echo "$override"; exit 0; fi
python3 - "$archive" <<'PY'
import glob, re, sys
archive = sys.argv[1]
want_security = archive == "debian-security"
uris = []
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in open(path).read().split("\n\n"):
        fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
        if fields.get("Types", "deb").split()[0] != "deb" or fields.get("Enabled", "yes") == "no":
            continue
        suites = fields.get("Suites", "").split()
        for uri in fields.get("URIs", "").split():
            uris.append((uri, suites))
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        m = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line.strip())
        if m:
            uris.append((m.group(1), [m.group(2)]))
for uri, suites in uris:
    is_security = any(s.endswith("-security") for s in suites)
    if is_security == want_security:
        print(uri.rstrip("/"))
        sys.exit(0)
sys.exit(f"no apt source for {archive} found; set QB_DEBIAN_MIRROR")
PY
