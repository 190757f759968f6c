#!/usr/bin/env bash
# Build the VM test-host image: a GPT disk with an EFI system partition and an ext4 root,
# debootstrapped, with Debian's kernel and GRUB installed the way a real machine has them
# (GRUB's EFI loader on the ESP's removable path, its modules and update-grub's
# /boot/grub/grub.cfg on the root), so the VM boots OVMF -> GRUB -> the kernel with the command
# line GRUB's own configuration gives. The ESP is made with mtools and the loader with
# grub-mkimage, as grub-install would: the build machine's kernel may have no FAT driver.
# Output: $QB_VM_DIR (default .state/vm)/base-<recipe hash>.qcow2; rebuilt only when the recipe
# (images/vm/*, images/host/qb-ssh-hostkeys.service) or the mirror changes. Needs root and loop
# devices; prints the image's path last.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
project="$(cd "$here/../.." && pwd)"
# shellcheck source=/dev/null
source "$here/recipe.env"
out="${QB_VM_DIR:-$project/.state/vm}"
mirror="$("$project/scripts/debian-mirror.sh" debian)"
security="$("$project/scripts/debian-mirror.sh" debian-security || true)"
hash="$( (cat "$here"/* "$project/images/host/qb-ssh-hostkeys.service"; echo "$mirror $security") | sha256sum | cut -c1-16)"
image="$out/base-$hash.qcow2"
if [[ -s "$image" && "${QB_FORCE_IMAGE_BUILD:-0}" != 1 ]]; then
  echo "VM image is up to date (recipe $hash)" >&2
  echo "$image"
  exit 0
fi
for tool in debootstrap qemu-img sgdisk mkfs.vfat mcopy mkfs.ext4 losetup; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (make setup installs it)" >&2; exit 1; }
done

echo "building the VM image (recipe $hash)" >&2
start=$SECONDS
mkdir -p "$out"
work="$(mktemp -d /var/tmp/qb-vm-image.XXXXXX)"
root="$work/root"
raw="$work/disk.raw"
loops=()
cleanup() {
  local m l
  for m in dev/pts dev proc sys ""; do
    if mountpoint -q "$root/$m" 2>/dev/null; then umount -l "$root/$m"; fi
  done
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

truncate -s "$DISK_SIZE" "$raw"
sgdisk --clear -n 1:1MiB:+128MiB -t 1:EF00 -c 1:esp -n 2:0:0 -t 2:8304 -c 2:root "$raw" >/dev/null
# a partition's first sector and size in sectors
extent() {
  sgdisk -i "$1" "$raw" | awk '/^First sector/ {f=$3} /^Last sector/ {l=$3} END {print f, l - f + 1}'
}
read -r esp_first esp_sectors < <(extent 1)
read -r root_first root_sectors < <(extent 2)
# the root through a loop device at its offset (partition scanning of loop devices is not
# available on every machine)
rootdev="$(losetup --find --show --offset $((root_first * 512)) --sizelimit $((root_sectors * 512)) "$raw")"
loops+=("$rootdev")
mkfs.ext4 -q -L root "$rootdev"
mkdir -p "$root"
mount "$rootdev" "$root"

debootstrap --variant="$VARIANT" "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2; exit 1; }
echo "  debootstrap done in $((SECONDS - start))s" >&2
{
  echo "deb $mirror $SUITE main"
  echo "deb $mirror $SUITE-updates main"
  if [[ -n "$security" ]]; then echo "deb $security $SUITE-security main"; fi
} >"$root/etc/apt/sources.list"
mkdir -p "$root/boot/efi"
# a /dev of the chroot's own: update-grub writes root=UUID=… only where
# /dev/disk/by-uuid/<uuid> exists, and the build machine's /dev stays untouched
mount -t tmpfs -o mode=0755 qb-dev "$root/dev"
cp -a /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty "$rootdev" "$root/dev/"
mkdir -p "$root/dev/pts" "$root/dev/disk/by-uuid"
ln -s "../../$(basename "$rootdev")" "$root/dev/disk/by-uuid/$(blkid -s UUID -o value "$rootdev")"
mount --bind /dev/pts "$root/dev/pts"
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
# the ESP is mounted when first used (GRUB's package writes to it), not at boot: under emulation
# loading the FAT modules and mounting it held local-fs.target, and so sshd, for 8-10 s per boot
cat >"$root/etc/fstab" <<FSTAB
LABEL=root / ext4 errors=remount-ro 0 1
LABEL=ESP /boot/efi vfat umask=0077,noauto,x-systemd.automount 0 0
FSTAB
install -D -m 0644 "$here/grub-defaults" "$root/etc/default/grub"
install -m 0644 "$here/early-grub.cfg" "$root/tmp/early-grub.cfg"
# GRUB finds its root by the device the chroot's / is mounted from: the root loop device
chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive PACKAGES="$PACKAGES" \
    ROOT_UUID="$(blkid -s UUID -o value "$rootdev")" bash -euc '
  apt-get update -qq
  # each kernel package would make an initramfs of every storage driver, made again below with
  # the root'"'"'s modules only: update-initramfs is a no-op while the packages install
  dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs
  ln -s /bin/true /usr/sbin/update-initramfs
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
  rm /usr/sbin/update-initramfs
  dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs
  # the VM boots under emulation, where each megabyte of initramfs is seconds of firmware reads
  # and unpacking: it holds the modules the root file system needs (virtio disk, ext4 and its
  # checksum), not every storage driver Debian ships (37 MB)
  echo MODULES=list >/etc/initramfs-tools/conf.d/qb-vm.conf
  printf "%s\n" virtio_pci virtio_blk ext4 crc32c_generic >>/etc/initramfs-tools/modules
  update-initramfs -c -k all >/dev/null
  for k in /boot/vmlinuz-*; do test -s "/boot/initrd.img-${k#/boot/vmlinuz-}"; done
  # a test VM lives for minutes: the maintenance timers (apt, dpkg backup, fstrim, e2scrub) would
  # only run at its boots, in emulated seconds
  systemctl mask apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer \
    e2scrub_all.timer e2scrub_reap.service
  # GRUB sorts "-rt-amd64" before the ordinary kernel of the same release: boot the ordinary
  # one, by menu entry id, until a role chooses otherwise
  plain="$(find /boot -name "vmlinuz-*" ! -name "*-rt-*" -printf "%f\n" | sed "s/^vmlinuz-//" | sort -V | tail -1)"
  sed -i "s|^GRUB_DEFAULT=.*|GRUB_DEFAULT=\"gnulinux-advanced-$ROOT_UUID>gnulinux-$plain-advanced-$ROOT_UUID\"|" /etc/default/grub
  mkdir -p /boot/grub/x86_64-efi
  cp /usr/lib/grub/x86_64-efi/*.mod /usr/lib/grub/x86_64-efi/*.lst /boot/grub/x86_64-efi/
  grub-mkimage -O x86_64-efi -o /tmp/BOOTX64.EFI -p /boot/grub -c /tmp/early-grub.cfg \
    part_gpt fat ext2 search search_label normal configfile linux echo serial terminal efi_gop all_video
  # 10_linux skips a root on a loop device ("devices loop-mounted from files"): the first
  # grub.cfg is made with that case taken out of a copy, then the packaged script is put back;
  # the UUIDs it writes are those the VM boots from
  cp /etc/grub.d/10_linux /tmp/10_linux.orig
  sed -i "s|/dev/loop/\*\|/dev/loop\[0-9\])|/dev/qb-never-matches)|" /etc/grub.d/10_linux
  update-grub
  cp /tmp/10_linux.orig /etc/grub.d/10_linux
' >"$work/install.log" 2>&1 || { tail -30 "$work/install.log" >&2; exit 1; }
echo "  kernel, GRUB and sshd installed in $((SECONDS - start))s" >&2

install -m 0755 "$here/qb-fwcfg" "$root/usr/local/sbin/qb-fwcfg"
install -m 0644 "$here/qb-fwcfg.service" "$project/images/host/qb-ssh-hostkeys.service" \
  "$root/etc/systemd/system/"
install -m 0644 "$here/10-qb-dhcp.network" "$here/20-qb-trading.network" "$root/etc/systemd/network/"
install -m 0440 "$project/images/host/sudoers-ansible" "$root/etc/sudoers.d/ansible"
chroot "$root" bash -euc '
  visudo -cf /etc/sudoers.d/ansible >/dev/null
  useradd --uid 1000 --create-home --shell /bin/bash --groups sudo ansible
  install -d -m 0700 -o ansible -g ansible /home/ansible/.ssh
  systemctl enable qb-fwcfg.service qb-ssh-hostkeys.service ssh.service systemd-networkd.service
  # each VM is a machine of its own: host keys and machine id are made at its first boot
  rm -f /etc/ssh/ssh_host_*
  : >/etc/machine-id
  rm -f /var/lib/dbus/machine-id
  echo qb-vm >/etc/hostname
  apt-get clean
' >>"$work/install.log" 2>&1 || { tail -30 "$work/install.log" >&2; exit 1; }
grep -q "root=UUID=" "$root/boot/grub/grub.cfg" || { echo "update-grub wrote no entry booting the root by UUID:" >&2; tail -20 "$work/install.log" >&2; exit 1; }
esp="$work/esp.img"
mkfs.vfat -C -F 32 -n ESP "$esp" $((esp_sectors / 2)) >/dev/null
mmd -i "$esp" ::/EFI ::/EFI/BOOT
mcopy -i "$esp" "$root/tmp/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
rm -f "$root/tmp/BOOTX64.EFI" "$root/tmp/early-grub.cfg"
dd if="$esp" of="$raw" bs=512 seek="$esp_first" conv=notrunc status=none
for m in dev/pts dev proc sys ""; do umount "$root/$m"; done
for l in "${loops[@]}"; do losetup -d "$l"; done
loops=()
qemu-img convert -O qcow2 "$raw" "$image.tmp"
mv "$image.tmp" "$image"
# superseded images go
find "$out" -maxdepth 1 -name 'base-*.qcow2' ! -name "base-$hash.qcow2" -delete
echo "built the VM image in $((SECONDS - start))s" >&2
echo "$image"
