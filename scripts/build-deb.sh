#!/usr/bin/env bash
# `make deb`: the aarch64 booth as a Debian package, dist/doppel-device_<version>_arm64.deb,
# built with debhelper from packaging/debian around the cross-built binary, then checked with
# lintian and `systemd-analyze security --offline`.
#
# usage: scripts/build-deb.sh [BIN]   (default: cross-build it with cross/build-aarch64.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${1:-}"
if [ -z "$BIN" ]; then
  bash "$ROOT/cross/build-aarch64.sh"
  BIN="${DOPPEL_AARCH64_TARGET_DIR:-$HOME/.cache/doppel/target-aarch64}/aarch64-unknown-linux-gnu/release/doppel-device"
fi
[ -x "$BIN" ] || { echo "no aarch64 doppel-device at $BIN" >&2; exit 1; }
BIN="$(readlink -f "$BIN")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
src="$work/doppel-device"
mkdir -p "$src"
cp -r "$ROOT/packaging/debian" "$src/debian"
cp "$ROOT/configs/booth.example.toml" "$src/debian/booth.example.toml"
cp "$ROOT/README.md" "$src/debian/README.md"
(
  cd "$src"
  DOPPEL_BIN="$BIN" DOPPEL_ROOT="$ROOT" dpkg-buildpackage -aarm64 -b -us -uc -d --no-check-builddeps \
    > "$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
)
mkdir -p "$ROOT/dist"
deb="$(ls "$work"/doppel-device_*_arm64.deb)"
cp "$deb" "$ROOT/dist/"
deb="$ROOT/dist/$(basename "$deb")"
echo "package: $deb"
# lintian: errors and warnings fail the build (the justified overrides live in packaging/).
lintian --fail-on error,warning --suppress-tags-from-file "$ROOT/packaging/lintian-suppressed" "$deb"
echo "lintian: clean"
systemd-analyze security --offline=true --no-pager "$ROOT/packaging/debian/doppel-device.service" \
  | tail -1
