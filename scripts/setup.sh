#!/usr/bin/env bash
# One-time (and idempotent) set-up of a Debian 12 controller, as root:
# Docker engine (Debian's docker.io, started if not running), the project's virtualenv,
# promtool/amtool, the test-host image, and the dev environment's generated secrets.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m== %s\033[0m\n' "$*"; }

if [[ $EUID -ne 0 ]]; then
  echo "setup needs root (it installs Debian packages and runs the Docker engine)" >&2
  exit 1
fi

# --- Debian packages -------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v ssh >/dev/null || need+=(openssh-client)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
# the QEMU VM test hosts of kernel-level roles (images/vm, quantbot-infra vm)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
[[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ]] || need+=(ovmf)
command -v sgdisk >/dev/null || need+=(gdisk)
command -v mkfs.vfat >/dev/null || need+=(dosfstools)
command -v mcopy >/dev/null || need+=(mtools)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- Docker engine ---------------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  log "starting the Docker engine"
  if [[ -d /run/systemd/system ]]; then
    systemctl start docker
  else
    # no systemd on this machine: run the engine in the background, logging to a file
    nohup dockerd >/var/log/quantbot-dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "the Docker engine did not start; see /var/log/quantbot-dockerd.log" >&2; exit 1; }
fi

# --- monitoring tools ------------------------------------------------------------------------
# promtool and amtool check and unit-test the alert rules and routes without any host. They are
# unpacked from the very Debian packages the monitoring hosts install (same versions), into the
# ignored .tools/ folder: nothing is installed or started on the controller.
tools_want="prometheus prometheus-alertmanager"
if [[ "$(cat .tools/.installed 2>/dev/null)" != "$tools_want" ]] || [[ ! -x .tools/bin/promtool || ! -x .tools/bin/amtool ]]; then
  log "unpacking promtool and amtool into .tools/"
  rm -rf .tools && mkdir -p .tools/bin .tools/debs
  (cd .tools/debs && { apt-get download $tools_want >/dev/null 2>&1 || { apt-get update -qq && apt-get download $tools_want >/dev/null; }; })
  for deb in .tools/debs/*.deb; do dpkg-deb -x "$deb" .tools/root; done
  ln -s ../root/usr/bin/promtool .tools/bin/promtool
  ln -s ../root/usr/bin/amtool .tools/bin/amtool
  rm -rf .tools/debs
  echo "$tools_want" >.tools/.installed
fi

# --- virtualenv ------------------------------------------------------------------------------
venv() {
  local stamp=".venv/.quantbot-installed" want start=$SECONDS
  want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
  if [[ ! -x .venv/bin/python ]]; then
    echo "creating .venv"
    python3 -m venv .venv
  fi
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "installing quantbot-infra with dev extras into .venv"
    .venv/bin/pip install -q --upgrade pip
    # constraints.txt pins the whole tested set (refresh: pip freeze --exclude-editable)
    .venv/bin/pip install -q -c constraints.txt -e '.[dev]'
    echo "$want" >"$stamp"
    echo ".venv installed in $((SECONDS - start))s"
  else
    echo ".venv is up to date"
  fi
}

# --- the virtualenv and the test-host images, side by side ----------------------------------
# They do not depend on each other, and each mostly waits (downloads, dpkg's writes, one core
# at most): on a fresh machine the three take about as long as the VM image alone. Each part
# logs to .state/setup/<part>.log; a failed part's last lines are printed.
install -d -m 0700 .state .state/setup
parts=(venv container-image vm-image)
declare -A pid=()
venv >.state/setup/venv.log 2>&1 &
pid[venv]=$!
images/build.sh >.state/setup/container-image.log 2>&1 &
pid[container-image]=$!
images/vm/build.sh >.state/setup/vm-image.log 2>&1 &
pid[vm-image]=$!
log "${parts[*]}, side by side (logs: .state/setup/)"
failed=0
for part in "${parts[@]}"; do
  if wait "${pid[$part]}"; then
    # each part's own last word on it: built (and how long it took) or up to date
    printf '   %-16s %s\n' "$part" "$(grep -E '^(built|\.venv|VM image|image)' ".state/setup/$part.log" | tail -n 1)"
  else
    failed=1
    echo "   $part FAILED; the end of .state/setup/$part.log:" >&2
    tail -n 30 ".state/setup/$part.log" | sed 's/^/   | /' >&2
  fi
done
((failed == 0)) || exit 1

# --- dev secrets -----------------------------------------------------------------------------
# dev's vault password is generated once into the ignored .state/ folder; staging, prod and dr
# take theirs from QB_VAULT_PASSWORD_FILE.
install -d -m 0700 .state/dev
if [[ ! -s .state/dev/vault-pass ]]; then
  (umask 077; head -c 32 /dev/urandom | base64 >.state/dev/vault-pass)
fi
log "setup done"
