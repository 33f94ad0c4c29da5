//! ATen calls tch does not bind (LeakyReLU with a slope) or binds through a deprecated API
//! (CUDA autocast). The C++ side is `aten.cpp`, built by `build.rs` against torch-sys's libtorch.

use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn doppel_autocast_enter() -> bool;
    fn doppel_autocast_exit(previous: bool);
    fn doppel_leaky_relu(x: *const C_tensor, slope: f64) -> *mut C_tensor;
}

/// `max(x, slope·x)` in one kernel forward and one backward (PReLU, the alternative, also
/// reduces a gradient for its slope every step; `maximum` costs three kernels each way).
pub fn leaky_relu(x: &Tensor, slope: f64) -> Tensor {
    // SAFETY: `x` is a live tensor; the shim returns a new owned tensor or null.
    let out = unsafe { doppel_leaky_relu(x.as_ptr(), slope) };
    assert!(!out.is_null(), "leaky_relu failed (see the message above)");
    // SAFETY: non-null and owned by us from here on.
    unsafe { Tensor::from_ptr(out) }
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
    use tch::{Kind, Tensor};

    #[test]
    fn leaky_relu_has_the_slope_and_gradient_of_its_definition() {
        let x = Tensor::from_slice(&[-2.0f32, -0.5, 0.0, 0.5, 3.0]).set_requires_grad(true);
        let y = super::leaky_relu(&x, 0.1);
        let want = [-0.2f32, -0.05, 0.0, 0.5, 3.0];
        assert!(
            y.allclose(&Tensor::from_slice(&want), 1e-6, 1e-7, false),
            "{y}"
        );
        y.sum(Kind::Float).backward();
        let grad = Vec::<f32>::try_from(x.grad()).unwrap();
        assert_eq!(grad, [0.1, 0.1, 0.1, 1.0, 1.0]);
    }

    /// `DOPPEL_TEST_DEVICE=cuda` runs this on the GPU, where the region must switch to fp16.
    #[test]
    fn regions_nest_restore_and_cast_only_cuda_work() {
        let device = crate::test_device();
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
