#!/usr/bin/env bash
# `make image`: dist/doppel-booth-arm64.img.xz and .bmap — Debian 12 arm64 (minimal) for a
# Raspberry Pi 4, with the booth's Debian package installed and enabled.
#
#   1. base (cached by its inputs): debootstrap --foreign on this machine, then its second stage
#      and the board setup (stage-base.sh) inside qemu-system-aarch64;
#   2. booth: a copy of the base gets the .deb and the first-boot service (stage-booth.sh);
#   3. the root file system is shrunk, genimage lays out the card (FAT boot + ext4 root, MBR),
#      xz and bmaptool make what the user flashes.
#
# usage: scripts/image/build.sh DEB   (make image passes the one make deb built)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
. "$ROOT/scripts/image/lib.sh"
DEB="$(readlink -f "${1:?usage: build.sh doppel-device_*.deb}")"
[ "$(id -u)" = 0 ] || { echo "make image runs as root (debootstrap, device files in the tree)" >&2; exit 1; }
CACHE="${DOPPEL_IMAGE_CACHE:-$HOME/.cache/doppel/image}"
OUT="${DOPPEL_IMAGE_OUT:-$ROOT/out/image}"
DIST="$ROOT/dist"
SUITE=bookworm
MIRROR="${DOPPEL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# What a booth needs beyond Debian's minimal base: systemd as init, the Pi's kernel and firmware,
# DHCP + DNS + clock, SSH (off until a key is given), sfdisk for the first boot's growing.
PACKAGES=systemd-sysv,udev,dbus,kmod,initramfs-tools,zstd,linux-image-arm64,raspi-firmware,openssh-server,fdisk,e2fsprogs,iproute2,systemd-resolved,systemd-timesyncd,adduser,nano,less,busybox-static
ROOT_SIZE=3G
BOOT_SIZE=256M
# TCG is slow: the second stage takes ~15 min on 2 cores, the booth's a few seconds.
BASE_LIMIT_S="${DOPPEL_IMAGE_BASE_LIMIT_S:-5400}"
BOOTH_LIMIT_S="${DOPPEL_IMAGE_BOOTH_LIMIT_S:-1800}"
mkdir -p "$CACHE" "$OUT" "$DIST"
started=$SECONDS

key="$( { echo "$SUITE $MIRROR $PACKAGES $ROOT_SIZE $BOOT_SIZE"; cat "$IMAGE_DIR/lib.sh" "$IMAGE_DIR/helper-init" "$IMAGE_DIR/stage-base.sh"; } | sha256sum | cut -c1-16)"
base="$CACHE/base-$key"
if [ ! -f "$base/done" ]; then
  echo "image: building the base $base (debootstrap + second stage under qemu; cached after)"
  rm -rf "$base.tmp" && mkdir -p "$base.tmp"
  tree="$base.tmp/tree"
  debootstrap --foreign --arch=arm64 --variant=minbase --components=main,non-free-firmware \
    --include="$PACKAGES" "$SUITE" "$tree" "$MIRROR" > "$base.tmp/debootstrap.log" 2>&1 \
    || { tail -n 20 "$base.tmp/debootstrap.log" >&2; exit 1; }
  img_unpack_kernel "$tree/var/cache/apt/archives" "$base.tmp/kernel"
  img_helper_initramfs "$base.tmp/kernel" "$(ls "$tree"/var/cache/apt/archives/busybox-static_*_arm64.deb)" \
    "$base.tmp/helper.cpio.gz"
  rm -f "$tree/etc/resolv.conf" "$tree/etc/hostname"
  mke2fs -q -t ext4 -L RASPIROOT -d "$tree" "$base.tmp/root.ext4" "$ROOT_SIZE"
  rm -rf "$tree"
  mkfs.vfat -n RASPIFIRM -C "$base.tmp/boot.vfat" $(( $(numfmt --from=iec "$BOOT_SIZE") / 1024 )) >/dev/null
  mkdir -p "$base.tmp/payload" && cp "$IMAGE_DIR/stage-base.sh" "$base.tmp/payload/stage.sh"
  t0=$SECONDS
  img_run_stage "$base.tmp/kernel" "$base.tmp/helper.cpio.gz" "$base.tmp/root.ext4" "$base.tmp/boot.vfat" \
    "$base.tmp/payload" "$base.tmp/stage-base.log" "$BASE_LIMIT_S"
  echo "image: base stage took $((SECONDS - t0)) s under qemu"
  rm -rf "$base.tmp/payload" "$base" && mv "$base.tmp" "$base" && touch "$base/done"
fi
echo "image: base $base"

# 2. The booth on a copy of the base.
work="$OUT/work"
rm -rf "$work" && mkdir -p "$work/payload/image" "$work/genimage-root"
cp --sparse=always "$base/root.ext4" "$work/root.ext4"
cp --sparse=always "$base/boot.vfat" "$work/boot.vfat"
cp "$DEB" "$work/payload/"
cp "$ROOT"/packaging/image/{firstboot,doppel-firstboot.service,README.txt} "$work/payload/image/"
cp "$IMAGE_DIR/stage-booth.sh" "$work/payload/stage.sh"
t0=$SECONDS
img_run_stage "$base/kernel" "$base/helper.cpio.gz" "$work/root.ext4" "$work/boot.vfat" \
  "$work/payload" "$OUT/stage-booth.log" "$BOOTH_LIMIT_S"
echo "image: booth stage took $((SECONDS - t0)) s under qemu"

# 3. Shrink the root to its contents plus room for the first boot (which grows it to the card),
#    lay out the card, compress.
e2fsck -fy "$work/root.ext4" > /dev/null 2>&1 || [ $? -le 1 ]
resize2fs -M "$work/root.ext4" > /dev/null 2>&1
# Free blocks still hold what was deleted (the downloaded .debs): discard punches them out of
# the file, so xz and bmap see holes.
e2fsck -fy -E discard "$work/root.ext4" > /dev/null 2>&1 || [ $? -le 1 ]
blocks="$(dumpe2fs -h "$work/root.ext4" 2>/dev/null | awk -F: '/^Block count/ {print $2+0}')"
bs="$(dumpe2fs -h "$work/root.ext4" 2>/dev/null | awk -F: '/^Block size/ {print $2+0}')"
blocks=$(( blocks + 256 * 1024 * 1024 / bs ))
resize2fs "$work/root.ext4" "$blocks" > /dev/null 2>&1
truncate -s $(( blocks * bs )) "$work/root.ext4"
cat > "$work/genimage.cfg" <<CFG
image doppel-booth-arm64.img {
  hdimage {
    partition-table-type = "mbr"
  }
  partition boot {
    partition-type = 0xC
    bootable = true
    offset = 4M
    image = "boot.vfat"
  }
  partition root {
    partition-type = 0x83
    image = "root.ext4"
  }
}
CFG
genimage --config "$work/genimage.cfg" --rootpath "$work/genimage-root" --tmppath "$work/genimage-tmp" \
  --inputpath "$work" --outputpath "$work" > "$OUT/genimage.log" 2>&1 \
  || { cat "$OUT/genimage.log" >&2; exit 1; }
img="$DIST/doppel-booth-arm64.img"
rm -f "$img.xz" "$img.bmap"
# bmaptool copy dist/doppel-booth-arm64.img.xz finds the .img.bmap next to it.
bmaptool -q create -o "$img.bmap" "$work/doppel-booth-arm64.img"
xz -T0 -6 -c "$work/doppel-booth-arm64.img" > "$img.xz.tmp" && mv "$img.xz.tmp" "$img.xz"
rm -rf "$work"
echo "image: $img.xz ($(du -h "$img.xz" | cut -f1), $(( $(stat -c %s "$img.xz") ))) and $img.bmap"
echo "image: sha256 $(sha256sum "$img.xz" | cut -d' ' -f1)"
echo "image: built in $((SECONDS - started)) s"
