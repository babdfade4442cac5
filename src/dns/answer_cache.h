// AnswerCache: replies the DNS server already computed, so that a repeated query is answered without parsing it
// or building a reply again (dnsperf and real resolvers ask the same few names over and over).
//
// A reply is stored only when dns::Answer says it did not depend on its random input (no weighted pick among
// several sets). Such a reply is a function of the query's bytes and the snapshot alone, except for the 16-bit
// message ID that the reply copies from the query: so the key is the query's bytes after its ID, and a hit is
// the stored reply with the new query's ID written over the first two bytes. The cache belongs to one snapshot;
// handing it another (SetZones swapped it, a health check flipped) empties it first. It holds that snapshot
// alive, so a new snapshot at the same address can never be mistaken for the old one. It is bounded: at most
// `max_entries` replies to queries of at most 512 bytes; when full, it starts over empty.
//
// Thread-safety: none; each UDP thread of the server owns one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "dns/authority.h"

namespace autopipe::dns {

class AnswerCache {
 public:
  explicit AnswerCache(size_t max_entries = 2048) : max_entries_(max_entries) {}

  // The reply to `query` under `snapshot`: from the cache when there, else computed by dns::Answer (and kept when
  // it may be). Returns false when nothing should be sent, as Answer does.
  bool Answer(const std::shared_ptr<const CompiledZones>& snapshot, const uint8_t* query, size_t size, bool udp,
              uint64_t rng, std::string* reply);

  size_t size() const { return replies_.size(); }
  uint64_t hits() const { return hits_; }

 private:
  const size_t max_entries_;
  std::shared_ptr<const CompiledZones> snapshot_;  // the snapshot every stored reply was computed from
  std::unordered_map<std::string, std::string> replies_;  // query bytes after the ID -> reply
  uint64_t hits_ = 0;
};

}  // namespace autopipe::dns
