#!/usr/bin/env bash
# The swap issue's GPU work in one run, on a machine with PyTorch 2.11 (CUDA 13) but no Rust,
# ffmpeg, dlib or network. Dry-run it on CPU first (`DEVICE=cpu`, short minutes).
#
#   scripts/gpu/warm_start.sh [BIN_DIR] [PRETRAIN_MINUTES] [FINETUNE_MINUTES]
#
# Carry: .gpu (make gpu-pack; host-trainer alone is enough) and $DS (datasets made here with
# `host-trainer extract` as `make pretrain` and `make demo` make them: franck, cap = cap12 +
# cap13, carphone, B = cap12; only each one's faces/, metadata.jsonl and *.toml, or they pass
# the 64 MiB that travels). movie.avi stays out: it is the stranger. Results land in $OUT as
# tars of at most two fp16 generators each (what comes back: 8 files of 16 MiB at most), for
# `eval --weights` (the dlib judge) back on the workstation — the GPU machine has no dlib.
#
# Phase 1: the committed warm start (assets/pretrained/lite.safetensors) continued on franck +
#   cap + carphone with the fine-tune recipe (no warp, no GAN, the rate falling over the second
#   half), alone on the GPU at batch 64:
#   on an H200 that is 2029 images/s, three times what it gets sharing the GPU at batch 32.
#   SCRATCH=1 also trains the demo pair from random weights with the full recipe beside it
#   (does the verified rate fall as training goes on? measured December 4th: it rises).
# Phase 2, side by side (these models are launch-bound; three runs fit where one does):
#   ft-new: the demo's fine-tune recipe on the demo pair from the new warm start, snapshots up
#     to the end, to see whether the verified rate holds over a fine-tune longer than the demo's;
#   ft-gan: the same with the GAN on (the default adversarial and feature-matching weights), as
#     DeepFaceLab turns it on for the last stretch: the lever left for the swaps' softness, a
#     wash at the demo's 10 CPU minutes (1215 steps against 2074, the same figures);
#   ft-old: the demo's recipe from the committed warm start (what phase 1 bought; FT_OLD=0 leaves
#     it out, as SCRATCH=1 must: nine tars would not all come back).
set -uo pipefail
BIN=${1:-.gpu}
PRETRAIN=${2:-3.5}
FINETUNE=${3:-2.5}
DEVICE=${DEVICE:-cuda}
PRETRAIN_BATCH=${PRETRAIN_BATCH:-64}
SCRATCH=${SCRATCH:-0}
FT_OLD=${FT_OLD:-1}
OUT=${OUT:-/tmp/gpu-warm}
DS=${DS:-out/gpu-ds}
WORK=${WORK:-/tmp/gpu-work}
mkdir -p "$OUT" && rm -rf "$WORK" && mkdir -p "$WORK"

if [ "$DEVICE" = cuda ]; then
    # shellcheck source=scripts/gpu/unpack.sh
    . "$(dirname "$0")/unpack.sh"
    nvidia-smi -L
fi
HT="$BIN/host-trainer"
# Dense snapshots: the step rate there is not known beforehand, and the last one kept stands
# for the end of the run (a full checkpoint, with Adam's state, is too big to bring back).
SNAPS=${SNAPS:-1000,2000,3000,4000,5000,6000,8000,10000,12000,15000,20000,25000,30000,40000,50000,60000}
# The early snapshots brought back beside the last one.
EARLY=${EARLY:-1000 3000}
# A run may overrun --minutes by its data loading; past this it is stopped as Ctrl-C stops it
# (which saves), so the phases stay inside the call's limit.
stop_after() { awk -v m="$1" 'BEGIN { printf "%d", m * 60 + 45 }'; }

pair() { # name minutes extra-args...: a run on the demo pair
    local name=$1 minutes=$2
    shift 2
    timeout -s INT "$(stop_after "$minutes")" "$HT" train --a "$DS/franck" --b "$DS/B" \
        --out "$WORK/$name" --preset lite --device "$DEVICE" --minutes "$minutes" \
        --steps 1000000 --save-every 100000 --preview-every 1000 --snapshot-at "$SNAPS" "$@" \
        >"$WORK/$name.log" 2>&1
    echo "$name: exit $?"
    grep -E "steps \(|rror" "$WORK/$name.log" | head -5
}

# pack name: two tars of the run, its config, metrics, preview and log with the EARLY snapshots,
# and its last snapshot alone.
pack() {
    local name=$1 dir=$WORK/$1
    [ -d "$dir/snapshots" ] || { echo "$name: no snapshots"; return; }
    cp "$dir/config.toml" "$dir/crop.toml" "$dir/datasets.toml" "$dir/preview.png" "$dir/snapshots/" 2>/dev/null
    gzip -c "$dir/metrics.csv" >"$dir/snapshots/metrics.csv.gz"
    cp "$WORK/$name.log" "$dir/snapshots/train.log"
    local snaps last
    snaps=$(cd "$dir" && ls snapshots/generator-*.safetensors | sort -t- -k2 -n)
    last=$(echo "$snaps" | tail -1)
    local early=""
    for s in $EARLY; do
        [ -f "$dir/snapshots/generator-$s.safetensors" ] && [ "snapshots/generator-$s.safetensors" != "$last" ] &&
            early="$early snapshots/generator-$s.safetensors"
    done
    local about
    about=$(cd "$dir" && ls snapshots/*.toml snapshots/*.png snapshots/metrics.csv.gz snapshots/train.log 2>/dev/null)
    # shellcheck disable=SC2086
    tar -C "$dir" -cf "$OUT/$name-early.tar" $about $early
    tar -C "$dir" -cf "$OUT/$name-last.tar" "$last"
    echo "$name: snapshots $(echo "$snaps" | sed 's/.*generator-//; s/.safetensors//' | paste -sd' '), kept$early $last"
}

echo "== phase 1: warm start continued ($PRETRAIN min, batch $PRETRAIN_BATCH)$([ "$SCRATCH" = 1 ] && echo " | demo pair from scratch")"
timeout -s INT "$(stop_after "$PRETRAIN")" "$HT" pretrain \
    --datasets "$DS/franck" "$DS/cap" "$DS/carphone" --out "$WORK/pretrain" --preset lite \
    --device "$DEVICE" --minutes "$PRETRAIN" --steps 10000000 \
    --init assets/pretrained/lite.safetensors --config configs/train.finetune.toml \
    --batch-size "$PRETRAIN_BATCH" >"$WORK/pretrain.log" 2>&1 &
PRE=$!
# How busy the GPU is.
[ "$DEVICE" = cuda ] && (sleep 100 && nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader) &
[ "$SCRATCH" = 1 ] && pair scratch "$PRETRAIN"
wait $PRE
echo "pretrain: exit $?"
wait
grep -E "steps \(|warm start|rror" "$WORK/pretrain.log" | head -5
gzip -c "$WORK/pretrain/metrics.csv" >"$WORK/pretrain-metrics.csv.gz"
tar -C "$WORK" -cf "$OUT/pretrain.tar" pretrain/warm_start.safetensors pretrain/warm_start.json \
    pretrain/preview.png pretrain-metrics.csv.gz pretrain.log
[ "$SCRATCH" = 1 ] && pack scratch

echo "== phase 2: the demo's fine-tune ($FINETUNE min) from the new warm start | with the GAN | from the committed one"
NEW=$WORK/pretrain/warm_start.safetensors
[ -f "$NEW" ] || NEW=assets/pretrained/lite.safetensors
# The demo's recipe with the GAN back at its defaults (every other key as the fine-tune has it).
grep -vE "^(gan|feature) =" configs/train.finetune.toml >"$WORK/finetune-gan.toml"
[ "$FT_OLD" = 1 ] && pair ft-old "$FINETUNE" --config configs/train.finetune.toml --init assets/pretrained/lite.safetensors &
pair ft-gan "$FINETUNE" --config "$WORK/finetune-gan.toml" --init "$NEW" &
pair ft-new "$FINETUNE" --config configs/train.finetune.toml --init "$NEW"
wait
pack ft-new
pack ft-gan
[ "$FT_OLD" = 1 ] && pack ft-old
ls -la "$OUT"
