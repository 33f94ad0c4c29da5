// ATen calls that tch 0.24 does not bind, or binds through an API libtorch 2.11 deprecates.
#include <cstdio>
#include <exception>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

extern "C" {

// Enters a CUDA autocast region; returns whether CUDA autocast was already on. (tch's `autocast`
// calls at::autocast::set_enabled, which warns on every call: tens of lines per training step.)
bool doppel_autocast_enter() {
  bool previous = at::autocast::is_autocast_enabled(at::kCUDA);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
  at::autocast::increment_nesting();
  return previous;
}

// Leaves it; the cast-weight cache is dropped when the outermost region ends.
void doppel_autocast_exit(bool previous) {
  if (at::autocast::decrement_nesting() == 0) {
    at::autocast::clear_cache();
  }
  at::autocast::set_autocast_enabled(at::kCUDA, previous);
}

// LeakyReLU with any slope (tch binds only the 0.01 default). Null on error, after printing it.
at::Tensor* doppel_leaky_relu(const at::Tensor* x, double slope) {
  try {
    return new at::Tensor(at::leaky_relu(*x, slope));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "leaky_relu: %s\n", e.what());
    return nullptr;
  }
}
}
