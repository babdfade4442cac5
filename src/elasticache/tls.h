// In-transit encryption for ElastiCache: the region's own certificate authority, the certificates it issues to
// cache nodes, and the client side the control plane uses to reach such nodes over TLS.
//
// The CA is made once per region data dir with OpenSSL (an EC P-256 key, a self-signed certificate valid ten
// years): <data dir>/ca/elasticache-ca.pem (0644, what clients pass as --cacert / ssl_ca_certs) and
// elasticache-ca.key (0600, never leaves the server). Each node gets its own key and a certificate whose
// subjectAltName lists its address and the group's endpoint addresses (the configuration endpoint forwards TLS
// unopened, so a client that checks the name sees the endpoint's address there).
//
// Thread-safety: the functions are pure except LoadOrCreateCa and ClientTlsFor, which serialise on an internal
// mutex; a TlsClientContext may be shared by any number of threads (OpenSSL's SSL_CTX is, once built).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

struct ssl_ctx_st;

namespace autopipe::elasticache {

struct CertificateAuthority {
  std::string cert_pem;
  std::string key_pem;
};

struct IssuedCertificate {
  std::string cert_pem;
  std::string key_pem;
};

// A new CA (self-signed, CA:TRUE, keyCertSign) named `common_name`.
Result<CertificateAuthority> MakeCertificateAuthority(const std::string& common_name);
// A leaf certificate signed by `ca` for `common_name`, valid for the IP addresses and DNS names given
// (subjectAltName), for TLS servers and clients (Redis nodes present it to each other too).
Result<IssuedCertificate> IssueCertificate(const CertificateAuthority& ca, const std::string& common_name,
                                           const std::vector<std::string>& ip_addresses,
                                           const std::vector<std::string>& dns_names);
// The subjectAltName entries of a PEM certificate ("IP:127.0.0.1", "DNS:x"), for tests and checks.
Result<std::vector<std::string>> SubjectAltNames(const std::string& cert_pem);
// OK when `cert_pem` chains to `ca_pem`.
Status VerifyIssuedBy(const std::string& cert_pem, const std::string& ca_pem);

// <data dir>/ca, and the CA certificate's path in it.
std::string CaDir(const std::string& data_dir);
std::string CaCertPath(const std::string& data_dir);
// Reads the region's CA from CaDir, making it first when it does not exist yet (the key written 0600).
Result<CertificateAuthority> LoadOrCreateCa(const std::string& data_dir);

// A TLS client context that trusts one CA and checks the peer's certificate (and, per connection, its address).
class TlsClientContext {
 public:
  static Result<std::shared_ptr<TlsClientContext>> FromCaPem(const std::string& ca_pem);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;
  ssl_ctx_st* get() const { return ctx_; }

 private:
  explicit TlsClientContext(ssl_ctx_st* ctx) : ctx_(ctx) {}
  ssl_ctx_st* ctx_;
};

// The region's client context (made once per data dir, and the CA with it when missing).
Result<std::shared_ptr<TlsClientContext>> ClientTlsFor(const std::string& data_dir);

}  // namespace autopipe::elasticache
