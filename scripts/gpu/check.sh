#!/usr/bin/env bash
# The CUDA path of training, checked on a GPU machine that has PyTorch 2.11 (CUDA 13) in its
# python3 but no Rust toolchain. Binaries built here travel stripped and xz-compressed in .gpu/
# (`make gpu-pack`) and link the machine's own libtorch.
#
#   scripts/gpu/check.sh [BIN_DIR] [TRAIN_MINUTES]      results land in $OUT (or /tmp/gpu-check)
#
# 1. the trainer's unit tests with DOPPEL_TEST_DEVICE=cuda (one step lowers each loss, exact
#    resume, NaN recovery, fp16 autocast regions, mixed precision learns);
# 2. real training runs on the demo datasets: a short fp16 mixed-precision one, then an f32 one
#    of TRAIN_MINUTES followed by `eval`;
# 3. the CUDA table of the train-step benchmark (ours vs PyTorch on the same GPU).
set -uo pipefail
BIN=${1:-.gpu}
MINUTES=${2:-2}
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"

# shellcheck source=scripts/gpu/unpack.sh
. "$(dirname "$0")/unpack.sh"
# The image has neither ffmpeg nor fonts: OpenCV stands in for the two calls VideoReader makes,
# and the plots get the DejaVu font packed next to the binaries.
if ! command -v ffmpeg >/dev/null; then
    mkdir -p /tmp/ffbin
    for t in ffmpeg ffprobe; do ln -sf "$PWD/scripts/gpu/ffmpeg_stand_in.py" /tmp/ffbin/$t; done
    export PATH=/tmp/ffbin:$PATH
fi
if [ -f "$BIN/DejaVuSans.ttf" ] && [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
    mkdir -p /usr/share/fonts/truetype/dejavu && cp "$BIN/DejaVuSans.ttf" /usr/share/fonts/truetype/dejavu/
fi
# Tests and benchmarks find models/ and data/ through their compile-time source path.
[ -e /work/main/models ] || { mkdir -p /work && ln -sfn "$PWD" /work/main; }

nvidia-smi -L
python3 -c "import torch; print('python torch', torch.__version__, torch.cuda.get_device_name(0))"

echo "== trainer tests on CUDA"
DOPPEL_TEST_DEVICE=cuda "$BIN/host_trainer_tests" train:: --test-threads 1 >"$OUT/tests.log" 2>&1
grep -E "^test |test result" "$OUT/tests.log"

train() { # name minutes extra-args...
    local name=$1 minutes=$2
    shift 2
    rm -rf "/tmp/$name"
    "$BIN/host-trainer" train --a out/datasets/A --b out/datasets/B --out "/tmp/$name" --preset lite \
        --device cuda --minutes "$minutes" --steps 1000000 --save-every 1000 --preview-every 1000 \
        "$@" >"$OUT/$name.log" 2>&1
    echo "$name: exit $?, $(grep -c . "$OUT/$name.log") log lines"
    grep -E "steps \(|error|warn|WARN" "$OUT/$name.log" | head -5
}
echo "== training lite on CUDA"
train mixed 0.3 --mixed-precision
train f32 "$MINUTES"
"$BIN/host-trainer" train --a out/datasets/A --b out/datasets/B --out /tmp/f32 --preset lite \
    --device cuda --minutes 0.1 --steps 1000000 >"$OUT/resume.log" 2>&1
echo "resume: exit $?"; grep -E "steps \(" "$OUT/resume.log"
"$BIN/host-trainer" eval --run /tmp/f32 --a out/datasets/A --b out/datasets/B >"$OUT/eval.log" 2>&1
echo "eval: exit $?"; tail -3 "$OUT/eval.log"
cat /tmp/f32/eval.md
cp /tmp/f32/eval.md /tmp/f32/preview.png "$OUT"/ 2>/dev/null

[ -n "${SKIP_BENCH:-}" ] && exit 0
echo "== train-step benchmark, CUDA table"
DOPPEL_PYTHON=$(command -v python3) timeout 150 "$BIN/train_step" --bench --cuda-only >"$OUT/bench.txt" 2>&1
grep "^|\|images/s" "$OUT/bench.txt"
