#!/usr/bin/env bash
# Build the test-host image: debootstrap -> docker import -> systemd/sshd/python3 layer.
# Rebuilds only when the recipe (images/host/*) or the mirror changes: the recipe hash is
# stored as an image label and compared on every call.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
recipe="$here/host"
# shellcheck source=/dev/null
source "$recipe/recipe.env"

mirror="$("$here/../scripts/debian-mirror.sh" debian)"
security="$("$here/../scripts/debian-mirror.sh" debian-security || true)"
hash="$( (cat "$recipe"/* ; echo "$mirror $security") | sha256sum | cut -c1-16)"
ref="$IMAGE:$TAG"

current="$(docker image inspect -f '{{ index .Config.Labels "org.quantbot.recipe" }}' "$ref" 2>/dev/null || true)"
if [[ "$current" == "$hash" && "${QB_FORCE_IMAGE_BUILD:-0}" != 1 ]]; then
  echo "image $ref is up to date (recipe $hash)"
  exit 0
fi

echo "building $ref (recipe $hash)"
previous="$(docker image inspect -f '{{ .Id }}' "$ref" 2>/dev/null || true)"
work="$(mktemp -d /var/tmp/qb-image.XXXXXX)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
start=$SECONDS
debootstrap --variant="$VARIANT" "$SUITE" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2; exit 1; }
# apt sources inside the hosts follow the controller's own mirror configuration
{
  echo "deb $mirror $SUITE main"
  echo "deb $mirror $SUITE-updates main"
  [[ -n "$security" ]] && echo "deb $security $SUITE-security main"
} >"$rootfs/etc/apt/sources.list"
rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
echo "  debootstrap done in $((SECONDS - start))s"
tar -C "$rootfs" -c . | docker import - "$IMAGE-rootfs:$hash" >/dev/null
docker build --quiet \
  --build-arg ROOTFS_IMAGE="$IMAGE-rootfs:$hash" \
  --label "org.quantbot.recipe=$hash" \
  -t "$ref" "$recipe" >/dev/null
docker image rm "$IMAGE-rootfs:$hash" >/dev/null || true
# the superseded image goes too, unless a host still runs on it
if [[ -n "$previous" && "$previous" != "$(docker image inspect -f '{{ .Id }}' "$ref")" ]]; then
  docker image rm "$previous" >/dev/null 2>&1 || true
fi
echo "built $ref in $((SECONDS - start))s"
