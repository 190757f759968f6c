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
exec python3 "$(dirname "$0")/../src/quantbot_infra/aptsources.py" "$archive"
