# Shared by scripts/image/build.sh (`make image`) and scripts/image/test.py's helpers: the arm64
# steps of the image build run inside qemu-system-aarch64 (TCG), booted from a small busybox
# initramfs (helper-init), because this machine cannot run arm64 programs in a chroot.
# shellcheck shell=bash

IMAGE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The helper's kernel modules, in load order: the disks (virtio-mmio), ext4 and the FAT boot
# partition.
HELPER_MODULES="crc32c_generic crc16 mbcache jbd2 ext4 fat vfat nls_cp437 nls_ascii nls_utf8 nls_iso8859-1 virtio_mmio virtio_blk"

# img_unpack_kernel ARCHIVES OUT: vmlinuz and the modules of the Debian arm64 kernel package
# debootstrap downloaded into ARCHIVES (/var/cache/apt/archives of the tree).
img_unpack_kernel() {
  local archives="$1" out="$2" deb
  deb="$(ls "$archives"/linux-image-[0-9]*-arm64_*_arm64.deb | sort -V | tail -n1)"
  [ -f "$deb" ] || { echo "image: no linux-image-*-arm64 package in $archives" >&2; return 1; }
  rm -rf "$out" && mkdir -p "$out"
  dpkg-deb -x "$deb" "$out/pkg"
  cp "$out"/pkg/boot/vmlinuz-* "$out/vmlinuz"
}

# img_helper_initramfs KERNEL_DIR BUSYBOX_DEB OUT: the helper initramfs (cpio.gz).
img_helper_initramfs() {
  local kdir="$1" busybox_deb="$2" out="$3" tmp m ko
  tmp="$(mktemp -d)"
  mkdir -p "$tmp/bin" "$tmp/modules"
  dpkg-deb --fsys-tarfile "$busybox_deb" | tar -x -C "$tmp" ./bin/busybox
  install -m 0755 "$IMAGE_DIR/helper-init" "$tmp/init"
  for m in $HELPER_MODULES; do
    ko="$(find "$kdir"/pkg/lib/modules -name "$m.ko" | head -n1)"
    [ -n "$ko" ] || { echo "image: kernel module $m not found" >&2; rm -rf "$tmp"; return 1; }
    cp "$ko" "$tmp/modules/"
  done
  echo "$HELPER_MODULES" | tr ' ' '\n' > "$tmp/modules.list"
  (cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
  rm -rf "$tmp"
}

# img_run_stage KERNEL_DIR INITRAMFS ROOT_IMG BOOT_IMG PAYLOAD_DIR LOG TIMEOUT_S: boots the helper
# with the two file-system images and PAYLOAD_DIR (its stage.sh runs chrooted into the root);
# fails unless stage.sh exited 0.
img_run_stage() {
  local kdir="$1" initrd="$2" root="$3" boot="$4" payload_dir="$5" log="$6" limit="$7"
  local payload rc
  payload="$(mktemp --suffix=.tar)"
  tar -C "$payload_dir" -cf "$payload" .
  rm -f "$log"
  timeout --foreground "$limit" qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 2048 \
    -accel tcg,thread=multi -display none -monitor none -serial "file:$log" -no-reboot -nic none \
    -kernel "$kdir/vmlinuz" -initrd "$initrd" -append "console=ttyAMA0 panic=-1 loglevel=4" \
    -drive "if=none,id=root,file=$root,format=raw" -device virtio-blk-device,drive=root,serial=root \
    -drive "if=none,id=boot,file=$boot,format=raw" -device virtio-blk-device,drive=boot,serial=boot \
    -drive "if=none,id=payload,file=$payload,format=raw,readonly=on" \
    -device virtio-blk-device,drive=payload,serial=payload </dev/null || {
      rc=$?
      rm -f "$payload"
      echo "image: qemu stopped with $rc (124: over ${limit}s); serial log: $log" >&2
      tail -n 30 "$log" >&2
      return 1
    }
  rm -f "$payload"
  rc="$(grep -a -o 'doppel-stage-rc=[0-9]*' "$log" | tail -n1 | cut -d= -f2)"
  if [ "$rc" != 0 ]; then
    echo "image: the stage failed (rc=${rc:-none}); serial log: $log" >&2
    tail -n 40 "$log" >&2
    return 1
  fi
}
