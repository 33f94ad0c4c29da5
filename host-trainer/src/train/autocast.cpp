// CUDA autocast through the current ATen API. tch 0.24's `autocast` calls the deprecated
// at::autocast::set_enabled / is_enabled, and libtorch 2.11 prints a deprecation warning on
// every call: tens of lines per training step.
#include <ATen/autocast_mode.h>

extern "C" {

// Enters an autocast region; returns whether CUDA autocast was already on.
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
}
