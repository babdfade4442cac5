#include "dns/answer_cache.h"

namespace autopipe::dns {
namespace {
constexpr size_t kMaxCachedQuery = 512;
}  // namespace

bool AnswerCache::Answer(const std::shared_ptr<const CompiledZones>& snapshot, const uint8_t* query, size_t size,
                         bool udp, uint64_t rng, std::string* reply) {
  if (snapshot != snapshot_) {
    replies_.clear();
    snapshot_ = snapshot;
  }
  const bool cacheable = size >= 12 && size <= kMaxCachedQuery;
  std::string key;
  if (cacheable) {
    // The transport is part of the key: the same bytes may be truncated over UDP and not over TCP.
    key.reserve(size - 1);
    key.push_back(udp ? 'u' : 't');
    key.append(reinterpret_cast<const char*>(query) + 2, size - 2);
    auto it = replies_.find(key);
    if (it != replies_.end()) {
      *reply = it->second;
      (*reply)[0] = static_cast<char>(query[0]);
      (*reply)[1] = static_cast<char>(query[1]);
      ++hits_;
      return true;
    }
  }
  bool used_rng = false;
  if (!dns::Answer(snapshot.get(), query, size, udp, rng, reply, &used_rng)) return false;
  if (cacheable && !used_rng && reply->size() >= 2) {
    if (replies_.size() >= max_entries_) replies_.clear();
    replies_.emplace(std::move(key), *reply);
  }
  return true;
}

}  // namespace autopipe::dns
