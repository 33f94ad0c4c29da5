# Sourced by the GPU scripts: unpacks the xz-packed binaries of BIN (make gpu-pack) and points
# the loader at the GPU machine's own PyTorch (the binaries' rpath names the workstation's venv).
for f in "$BIN"/*.xz; do
    [ -f "$f" ] || continue
    python3 -c "import lzma,sys; open(sys.argv[2],'wb').write(lzma.open(sys.argv[1]).read())" "$f" "${f%.xz}"
    chmod +x "${f%.xz}"
done
SITE=$(python3 -c "import torch,os; print(os.path.dirname(os.path.dirname(torch.__file__)))")
LD_LIBRARY_PATH=$SITE/torch/lib:$(ls -d "$SITE"/nvidia/*/lib | paste -sd:)
export LD_LIBRARY_PATH
