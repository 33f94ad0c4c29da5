//! CUDA autocast regions (fp16 forward passes) without tch's deprecated-API warnings; the
//! C++ side is `autocast.cpp`, built by `build.rs`.

extern "C" {
    fn doppel_autocast_enter() -> bool;
    fn doppel_autocast_exit(previous: bool);
}

/// Runs `f` with CUDA autocast on; the previous state is restored even if `f` panics.
pub fn cuda<T>(f: impl FnOnce() -> T) -> T {
    struct Region(bool);
    impl Drop for Region {
        fn drop(&mut self) {
            // SAFETY: pairs with the enter below; plain calls into libtorch's autocast state.
            unsafe { doppel_autocast_exit(self.0) }
        }
    }
    // SAFETY: no arguments; toggles thread-local autocast state in libtorch.
    let _region = Region(unsafe { doppel_autocast_enter() });
    f()
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind, Tensor};

    /// `DOPPEL_TEST_DEVICE=cuda` runs this on the GPU, where the region must switch to fp16.
    #[test]
    fn regions_nest_restore_and_cast_only_cuda_work() {
        let device = match std::env::var("DOPPEL_TEST_DEVICE").as_deref() {
            Ok("cuda") => Device::Cuda(0),
            _ => Device::Cpu,
        };
        let a = Tensor::rand([8, 8], (Kind::Float, device));
        let inner = super::cuda(|| super::cuda(|| a.matmul(&a)));
        let expected = if device.is_cuda() {
            Kind::Half
        } else {
            Kind::Float // CUDA autocast never touches CPU tensors
        };
        assert_eq!(inner.kind(), expected);
        assert!(inner
            .to_kind(Kind::Float)
            .allclose(&a.matmul(&a), 1e-2, 1e-2, false));
        assert_eq!(
            a.matmul(&a).kind(),
            Kind::Float,
            "autocast left on after the region"
        );
    }
}
