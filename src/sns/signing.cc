#include "sns/signing.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

namespace autopipe::sns {
namespace fs = std::filesystem;
namespace {

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes a file whole, with `mode`, by way of a temporary name (a crash never leaves half a key behind).
Status WriteFileAtomically(const fs::path& p, const std::string& data, mode_t mode) {
  const fs::path tmp = p.string() + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::Internal("cannot create " + tmp.string());
  bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) && ::fsync(fd) == 0;
  ok = ::fchmod(fd, mode) == 0 && ok;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), p.c_str()) != 0) return Status::Internal("cannot write " + p.string());
  return Status::Ok();
}

std::string Base64(const unsigned char* data, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(len);
  return out;
}

// A new RSA key and a self-signed certificate for it (10 years), both PEM.
Status MakeKeyAndCert(const std::string& common_name, std::string* key_pem, std::string* cert_pem) {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  if (!key) return Status::Internal("RSA key generation failed");
  X509* cert = X509_new();
  Status st;
  do {
    ASN1_INTEGER_set(X509_get_serialNumber(cert), static_cast<long>(::time(nullptr)));  // NOLINT
    X509_set_version(cert, 2);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Auto_Pipeline"),
                               -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    if (X509_sign(cert, key, EVP_sha256()) == 0) {
      st = Status::Internal("certificate signing failed");
      break;
    }
    BIO* kb = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(kb, key, nullptr, nullptr, 0, nullptr, nullptr);
    char* p;
    long n = BIO_get_mem_data(kb, &p);
    key_pem->assign(p, n);
    BIO_free(kb);
    BIO* cb = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(cb, cert);
    n = BIO_get_mem_data(cb, &p);
    cert_pem->assign(p, n);
    BIO_free(cb);
  } while (false);
  X509_free(cert);
  EVP_PKEY_free(key);
  return st;
}

}  // namespace

SnsSigner::~SnsSigner() { EVP_PKEY_free(key_); }

Result<std::unique_ptr<SnsSigner>> SnsSigner::Open(const std::string& data_dir, const std::string& common_name) {
  const fs::path dir = fs::path(data_dir) / "sns";
  const fs::path key_path = dir / "signing-key.pem", cert_path = dir / "signing-cert.pem";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Internal("cannot create " + dir.string() + ": " + ec.message());
  if (!fs::exists(key_path) || !fs::exists(cert_path)) {
    std::string key_pem, cert_pem;
    AP_RETURN_IF_ERROR(MakeKeyAndCert(common_name, &key_pem, &cert_pem));
    AP_RETURN_IF_ERROR(WriteFileAtomically(cert_path, cert_pem, 0644));
    AP_RETURN_IF_ERROR(WriteFileAtomically(key_path, key_pem, 0600));
  }
  std::unique_ptr<SnsSigner> s(new SnsSigner());
  const std::string key_pem = ReadAll(key_path);
  BIO* kb = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  s->key_ = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
  BIO_free(kb);
  if (!s->key_) return Status::Internal("cannot read the SNS signing key " + key_path.string());
  s->cert_pem_ = ReadAll(cert_path);
  if (s->cert_pem_.empty()) return Status::Internal("cannot read " + cert_path.string());
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s->cert_pem_.data()), s->cert_pem_.size(), digest);
  static const char* kHex = "0123456789abcdef";
  std::string hash;
  for (int i = 0; i < 16; ++i) {
    hash += kHex[digest[i] >> 4];
    hash += kHex[digest[i] & 15];
  }
  s->cert_path_ = "/SimpleNotificationService-" + hash + ".pem";
  return s;
}

Result<std::string> SnsSigner::Sign(const std::string& text, const std::string& signature_version) const {
  const EVP_MD* md = signature_version == "2" ? EVP_sha256() : EVP_sha1();
  EVP_MD_CTX* mctx = EVP_MD_CTX_new();
  std::string sig(EVP_PKEY_get_size(key_), '\0');
  size_t len = sig.size();
  bool ok = EVP_DigestSignInit(mctx, nullptr, md, nullptr, key_) == 1 &&
            EVP_DigestSign(mctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(text.data()), text.size()) == 1;
  EVP_MD_CTX_free(mctx);
  if (!ok) return Status::Internal("SNS message signing failed");
  return Base64(reinterpret_cast<const unsigned char*>(sig.data()), len);
}

const SnsSigner* SignerFor(const std::string& data_dir, const std::string& region) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<SnsSigner>> signers;
  std::lock_guard lock(mu);
  auto it = signers.find(data_dir);
  if (it != signers.end()) return it->second.get();
  auto s = SnsSigner::Open(data_dir, "sns." + region + ".amazonaws.com");
  if (!s.ok()) {
    spdlog::error("sns: {}", s.status().message());
    return nullptr;
  }
  return (signers[data_dir] = std::move(*s)).get();
}

std::string StringToSign(const Json& m) {
  std::string out;
  auto add = [&](const char* name) {
    if (!m.contains(name) || !m[name].is_string()) return;
    out += name;
    out += '\n';
    out += m[name].get<std::string>();
    out += '\n';
  };
  if (m.value("Type", "") == "Notification") {
    for (const char* f : {"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}) add(f);
  } else {
    for (const char* f : {"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}) add(f);
  }
  return out;
}

}  // namespace autopipe::sns
