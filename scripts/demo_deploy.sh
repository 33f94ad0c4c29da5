#!/usr/bin/env bash
# The demo's last step: a booth started on loopback (with an empty state folder, as a freshly
# flashed board) takes the demo's bundle by `host-trainer deploy`, which waits for the trial's
# verdict and prints the booth's status. The booth stops with the script.
#
# usage: scripts/demo_deploy.sh BIN_DIR OUT KEYS
set -euo pipefail
BIN=$1 OUT=$2 KEYS=$3
state="$OUT/booth-state"
log="$OUT/booth-console.log"
rm -rf "$state"
"$BIN/doppel-device" run --input data/franck.mp4 --loop --display headless \
  --pace --state-dir "$state" --trust "$KEYS/host.pub" --http 127.0.0.1:0 2> "$log" &
booth=$!
trap 'kill "$booth" 2>/dev/null; wait "$booth" 2>/dev/null || true' EXIT
url=""
for _ in $(seq 300); do
  url=$(sed -n 's|^operator console: \(http://[^ ]*\)/ .*|\1|p' "$log")
  [ -n "$url" ] && break
  kill -0 "$booth" 2>/dev/null || { cat "$log" >&2; echo "the booth did not start" >&2; exit 1; }
  sleep 0.2
done
[ -n "$url" ] || { echo "the booth printed no console address (see $log)" >&2; exit 1; }
echo "booth on $url (state folder $state, log $log)"
"$BIN/host-trainer" deploy "$OUT/bundle" --to "$url" --token-file "$state/operator.token"
