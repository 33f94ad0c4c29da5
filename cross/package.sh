#!/usr/bin/env bash
# Packs the aarch64 daemon with the detector into a tarball to copy onto a Raspberry Pi 4/5 or
# Jetson: `scp dist/doppel-device-aarch64.tar.gz pi:` then `sudo tar -C / -xzf ...`; it unpacks
# to /opt/doppel. (The systemd unit arrives with the camera daemon.)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$1"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
install -D -m755 "$BIN" "$STAGE/opt/doppel/bin/doppel-device"
install -D -m644 "$ROOT/models/retinaface-mnet025.onnx" "$STAGE/opt/doppel/models/retinaface-mnet025.onnx"
mkdir -p "$ROOT/dist"
tar -C "$STAGE" -czf "$ROOT/dist/doppel-device-aarch64.tar.gz" .
echo "package: $ROOT/dist/doppel-device-aarch64.tar.gz"
