#!/usr/bin/env bash
# Cross-builds the device side for aarch64-unknown-linux-gnu with Debian's toolchain (no Docker,
# no rustup target): rustc-web/cargo-web 1.96 + libstd-rust-web-dev:arm64 + gcc-aarch64-linux-gnu.
#
#   cross/build-aarch64.sh          build doppel-device (release) for aarch64
#   cross/build-aarch64.sh --test   build and run the device-side tests under qemu-aarch64-static
#                                   (cargo-nextest, one process per test, hangs ended and retried)
#   cross/build-aarch64.sh --package  also pack a tarball for the board (bin + models + systemd unit)
#
# The cargo config at .cargo/config.toml names the linker and the qemu runner.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TARGET=aarch64-unknown-linux-gnu
# rustup's proxies shadow Debian's cargo on PATH; Debian's rustc has the arm64 std.
CARGO_BIN=/usr/bin/cargo
export RUSTC=/usr/bin/rustc
# Host build scripts compiled by two different rustc versions would invalidate each other.
export CARGO_TARGET_DIR="${DOPPEL_AARCH64_TARGET_DIR:-$HOME/.cache/doppel/target-aarch64}"
# Device crates only: tch (host-trainer) is x86-workstation-only.
PKGS=(-p shared-proto -p facekit -p device-firmware)

for tool in "$CARGO_BIN" "$RUSTC" aarch64-linux-gnu-gcc qemu-aarch64-static; do
  command -v "$tool" >/dev/null || { echo "cross: $tool missing; run make setup" >&2; exit 1; }
done
[ -d /usr/lib/rustlib/$TARGET ] || { echo "cross: no aarch64 std (libstd-rust-web-dev:arm64); run make setup" >&2; exit 1; }

case "${1:-}" in
  --test)
    # Runner from .cargo/config.toml: qemu-aarch64-static with the multiarch arm64 libc.
    # Unit and integration tests; doctests would need a rustdoc with the arm64 std and we
    # keep no runnable examples in docs.
    # Tests that start the booth binary start it through the emulator too.
    # cargo-nextest runs each test in its own emulated process and ends one that hangs (the
    # `qemu` profile in .config/nextest.toml says why); it builds with Debian's cargo.
    if ! command -v cargo-nextest >/dev/null; then
      echo "cross: installing cargo-nextest (crates.io)" >&2
      cargo install --locked cargo-nextest
    fi
    DOPPEL_DEVICE_WRAPPER=qemu-aarch64-static CARGO="$CARGO_BIN" \
      cargo-nextest nextest run --profile qemu --release --target $TARGET "${PKGS[@]}" \
      --lib --bins --tests
    ;;
  --package)
    "$CARGO_BIN" build --release --target $TARGET -p device-firmware
    bash "$ROOT/cross/package.sh" "$CARGO_TARGET_DIR/$TARGET/release/doppel-device"
    ;;
  "")
    "$CARGO_BIN" build --release --target $TARGET -p device-firmware
    file "$CARGO_TARGET_DIR/$TARGET/release/doppel-device" 2>/dev/null || true
    echo "aarch64 binary: $CARGO_TARGET_DIR/$TARGET/release/doppel-device"
    ;;
  *) echo "usage: $0 [--test|--package]" >&2; exit 2 ;;
esac
