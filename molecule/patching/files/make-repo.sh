#!/usr/bin/env bash
# Build the patching scenario's apt repository on the host that serves it: two small packages in
# two versions each, made with dpkg-deb, indexed with apt-ftparchive, signed with a key made
# once beside it (its public half, qb-test.gpg, goes into the clients' keyring).
#   qb-demo-service  a daemon (qb-demo.service runs a copy of sleep(1) it ships): after its
#                    upgrade the running process maps a replaced file, so needrestart lists it;
#                    on a host with /etc/qb-demo/break-node-exporter, its upgrade stops the node
#                    exporter (a bad release the canary's gate must catch)
#   qb-demo-kmod     marks a reboot required in its postinst, as a kernel or microcode does
# Usage: make-repo.sh DIR VERSION... ; the suite "qbtest", component "main", origin "quantbot-test".
set -euo pipefail
dir="$1"; shift
versions=("$@")
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rm -rf "$dir/dists"
mkdir -p "$dir/pool" "$dir/dists/qbtest/main/binary-all"

build() {  # name version
  local name="$1" version="$2" root="$work/$1-$2"
  mkdir -p "$root/DEBIAN"
  case "$name" in
    qb-demo-service)
      install -D -m 0755 /bin/sleep "$root/usr/lib/qb-demo/qb-demo"
      mkdir -p "$root/lib/systemd/system"
      cat >"$root/lib/systemd/system/qb-demo.service" <<UNIT
[Unit]
Description=quantbot-infra patching scenario demo daemon
[Service]
ExecStart=/usr/lib/qb-demo/qb-demo infinity
[Install]
WantedBy=multi-user.target
UNIT
      printf '%s\n' "$version" >"$root/usr/lib/qb-demo/VERSION"
      cat >"$root/DEBIAN/postinst" <<'POST'
#!/bin/sh
set -e
if [ "$1" = configure ] && [ -z "$2" ]; then systemctl enable --now qb-demo.service || true; fi
# the scenario's bad release, on a host that asks for it: the upgrade stops the node exporter,
# so the host's health gate fails after its patch
if [ "$1" = configure ] && [ -n "$2" ] && [ -e /etc/qb-demo/break-node-exporter ]; then
  systemctl stop prometheus-node-exporter.service || true
fi
POST
      ;;
    qb-demo-kmod)
      install -D -m 0644 /dev/null "$root/usr/lib/qb-demo-kmod/VERSION"
      printf '%s\n' "$version" >"$root/usr/lib/qb-demo-kmod/VERSION"
      cat >"$root/DEBIAN/postinst" <<'POST'
#!/bin/sh
set -e
if [ "$1" = configure ] && [ -n "$2" ]; then
  touch /var/run/reboot-required
  echo qb-demo-kmod >>/var/run/reboot-required.pkgs
fi
POST
      ;;
  esac
  chmod 0755 "$root/DEBIAN/postinst"
  cat >"$root/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: all
Maintainer: quantbot-infra <ops@quantbot.invalid>
Priority: optional
Section: misc
Description: quantbot-infra patching scenario package
CONTROL
  dpkg-deb --root-owner-group -Zgzip --build "$root" "$dir/pool/${name}_${version}_all.deb" >/dev/null
}

for version in "${versions[@]}"; do
  build qb-demo-service "$version"
  build qb-demo-kmod "$version"
done

cd "$dir"
apt-ftparchive packages pool >dists/qbtest/main/binary-all/Packages
gzip -kf dists/qbtest/main/binary-all/Packages
apt-ftparchive -o APT::FTPArchive::Release::Origin=quantbot-test \
  -o APT::FTPArchive::Release::Label=quantbot-test -o APT::FTPArchive::Release::Suite=qbtest \
  -o APT::FTPArchive::Release::Codename=qbtest -o APT::FTPArchive::Release::Architectures="all amd64" \
  -o APT::FTPArchive::Release::Components=main release dists/qbtest >"$work/Release"
mv "$work/Release" dists/qbtest/Release
# the signing key lives beside the served folder (never in it) and is made once
export GNUPGHOME="$dir.key"
if [[ ! -d "$GNUPGHOME" ]]; then
  mkdir -m 0700 "$GNUPGHOME"
  gpg --batch --quiet --passphrase '' --quick-generate-key \
    "quantbot-infra patching scenario <ops@quantbot.invalid>" ed25519 sign 1d
fi
gpg --batch --quiet --yes --clearsign -o dists/qbtest/InRelease dists/qbtest/Release
gpg --batch --quiet --export >"$dir/qb-test.gpg"
echo "$dir"
