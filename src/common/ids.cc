#include "common/ids.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace autopipe {
namespace {

std::vector<unsigned char> RandomBytes(size_t n) {
  std::vector<unsigned char> b(n);
  if (RAND_bytes(b.data(), static_cast<int>(n)) != 1) std::abort();  // no entropy: nothing safe to do
  return b;
}

std::string FromAlphabet(const char* alphabet, size_t alphabet_size, size_t n) {
  auto bytes = RandomBytes(n);
  std::string out;
  out.reserve(n);
  for (unsigned char c : bytes) out.push_back(alphabet[c % alphabet_size]);
  return out;
}

}  // namespace

std::string RandomHex(size_t n) { return FromAlphabet("0123456789abcdef", 16, n); }

std::string NewUuid() {
  auto b = RandomBytes(16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  char buf[37];
  std::snprintf(buf, sizeof buf, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return buf;
}

std::string NewInstanceId() { return "i-" + RandomHex(17); }

std::string NewAccessKeyId() { return "AKIA" + FromAlphabet("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 32, 16); }

std::string NewSecretAccessKey() {
  return FromAlphabet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 64, 40);
}

}  // namespace autopipe
