#include "lb/picker.h"

namespace autopipe::lb {
namespace {

bool Excluded(const Backend* b, const std::vector<const Backend*>& exclude) {
  bool skip = false;
  for (const Backend* e : exclude) skip |= e == b;
  return skip;
}

}  // namespace

std::shared_ptr<Backend> Picker::LeastOutstanding(const BackendList& all, const std::vector<const Backend*>& exclude) {
  const size_t n = all.size();
  if (n == 0) return nullptr;
  std::shared_ptr<Backend> best;
  int64_t best_out = 0;
  const size_t start = rr_++ % n;  // ties go round robin
  for (size_t k = 0; k < n; ++k) {
    const auto& b = all[(start + k) % n];
    if (!b->Routable() || Excluded(b.get(), exclude)) continue;
    int64_t out = b->outstanding.load(std::memory_order_relaxed);
    if (!best || out < best_out) {
      best = b;
      best_out = out;
    }
  }
  return best;
}

std::shared_ptr<Backend> Picker::RoundRobin(const BackendList& all, const std::vector<const Backend*>& exclude) {
  const size_t n = all.size();
  for (size_t k = 0; k < n; ++k) {
    const auto& b = all[rr_++ % n];
    if (b->Routable() && !Excluded(b.get(), exclude)) return b;
  }
  return nullptr;
}

}  // namespace autopipe::lb
