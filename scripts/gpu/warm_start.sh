#!/usr/bin/env bash
# The swap issue's GPU work in one run, on a machine with PyTorch 2.11 (CUDA 13) but no Rust,
# ffmpeg, dlib or network. Prepared and dry-run on CPU first (`DEVICE=cpu`, a few minutes).
#
#   scripts/gpu/warm_start.sh [BIN_DIR] [PRETRAIN_MINUTES] [FINETUNE_MINUTES]
#
# Carry: .gpu (make gpu-pack) and out/ds (the extracted datasets: franck, cap12, cap13,
# carphone). Results land in $OUT: the warm start with its provenance, and the demo pair's
# fine-tuned checkpoints at several step counts, for `eval` (the dlib judge) back on the
# workstation — the GPU machine has no dlib.
#
# 1. pretrain: encoder and decoders on franck + cap12/cap13 + carphone (movie.avi stays out:
#    it is the stranger), PRETRAIN_MINUTES;
# 2. fine-tune A = franck, B = cap12 from it for FINETUNE_MINUTES, keeping the generator at
#    1k, 3k, 10k, 30k steps (the verified-against-steps table; `eval --weights` back here);
# 3. the same fine-tune from scratch for comparison.
set -uo pipefail
BIN=${1:-.gpu}
PRETRAIN=${2:-5}
FINETUNE=${3:-3}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-/tmp/gpu-warm}
DS=${DS:-out/ds}
mkdir -p "$OUT"

if [ "$DEVICE" = cuda ]; then
    # shellcheck source=scripts/gpu/unpack.sh
    . "$(dirname "$0")/unpack.sh"
    nvidia-smi -L
fi
HT="$BIN/host-trainer"

echo "== pretrain ($PRETRAIN min, $DEVICE)"
"$HT" pretrain --datasets "$DS/franck" "$DS/cap12" "$DS/cap13" "$DS/carphone" \
    --out "$OUT/pretrain" --preset lite --device "$DEVICE" --minutes "$PRETRAIN" --steps 10000000 \
    >"$OUT/pretrain.log" 2>&1
echo "pretrain: exit $?"; grep -E "steps \(|warm start|error" "$OUT/pretrain.log"

finetune() { # name init-args...
    local name=$1
    shift
    "$HT" train --a "$DS/franck" --b "$DS/cap12" --out "/tmp/$name" --preset lite --device "$DEVICE" \
        --minutes "$FINETUNE" --steps 30000 --save-every 1000 --preview-every 1000 \
        --snapshot-at 1000,3000,10000,30000 "$@" >"$OUT/$name.log" 2>&1
    echo "$name: exit $?"; grep -E "steps \(|error" "$OUT/$name.log"
    # What comes back: at most 8 files of 16 MiB; a snapshot is ~6 MB (fp16 generator).
    cp "/tmp/$name/config.toml" "/tmp/$name/crop.toml" "/tmp/$name/preview.png" "/tmp/$name/snapshots/"
    tar -C "/tmp/$name" -cf "$OUT/$name-a.tar" $(cd "/tmp/$name" && ls snapshots/*-1000.* snapshots/*-3000.* snapshots/*.toml snapshots/*.png 2>/dev/null)
    tar -C "/tmp/$name" -cf "$OUT/$name-b.tar" $(cd "/tmp/$name" && ls snapshots/*-10000.* snapshots/*-30000.* 2>/dev/null)
}
echo "== fine-tune franck/cap12 from the warm start ($FINETUNE min)"
finetune warm --init "$OUT/pretrain/warm_start.safetensors"
echo "== the same from scratch"
finetune scratch
mv "$OUT/pretrain/warm_start.safetensors" "$OUT/pretrain/warm_start.json" "$OUT/"
tar -C "$OUT" -cf "$OUT/logs.tar" pretrain.log warm.log scratch.log
rm -rf "$OUT/pretrain" "$OUT"/*.log
ls -la "$OUT"
