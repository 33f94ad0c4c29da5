//! Links libtorch so that CUDA is actually usable.
//!
//! torch-sys links `torch_cuda`, but Debian's linker drops shared libraries the binary calls no
//! symbol from (`--as-needed`), so CUDA kernels would never be registered and tch would report no
//! GPU. Forcing `libtorch.so` in with `--no-as-needed` pulls in `torch_cuda` whenever the wheel
//! ships it *and* its CUDA libraries are installed (the CPU-only venv lacks cuDNN & co., and
//! linking `torch_cuda` there would fail at load time).

use std::path::PathBuf;

fn main() {
    // torch-sys reports the libtorch it linked, however it found it (`LIBTORCH` or
    // `LIBTORCH_USE_PYTORCH`): the shim, the rpath and the CUDA link all use that one.
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys reports its libtorch lib dir"),
    );
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed={}", lib.display());
    aten_shim(&lib);
    let torch = lib.join("..");
    // The binary finds libtorch without LD_LIBRARY_PATH.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());

    let cudnn = torch.join("../nvidia/cudnn/lib/libcudnn.so.9");
    if lib.join("libtorch_cuda.so").exists() && cudnn.exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{}", lib.display());
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
        println!("cargo:rustc-env=DOPPEL_TORCH_CUDA_LINKED=1");
    } else {
        println!("cargo:rustc-env=DOPPEL_TORCH_CUDA_LINKED=0");
    }

    let version = std::fs::read_to_string(torch.join("version.py"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("__version__ = ")
                    .map(|v| v.trim_matches(['\'', '"']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=DOPPEL_TORCH_VERSION={version}");
}

/// Compiles `src/model/aten.cpp` against the libtorch in `lib`.
fn aten_shim(lib: &std::path::Path) {
    println!("cargo:rerun-if-changed=src/model/aten.cpp");
    let include = lib.join("../include");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .file("src/model/aten.cpp")
        .compile("doppel_aten");
}
