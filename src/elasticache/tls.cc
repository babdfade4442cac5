#include "elasticache/tls.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "lb/node_files.h"

namespace autopipe::elasticache {
namespace {

namespace fs = std::filesystem;

Status OpensslError(const std::string& what) {
  const unsigned long e = ERR_get_error();  // NOLINT(runtime/int): OpenSSL's type
  char buf[256] = "";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return Status::Internal(what + (e ? std::string(": ") + buf : std::string()));
}

struct Deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Deleter>;

std::string BioText(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);  // NOLINT(runtime/int): OpenSSL's type
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

Result<std::string> KeyPem(EVP_PKEY* key) {
  Owned<BIO> b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_PrivateKey(b.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpensslError("cannot write a private key");
  }
  return BioText(b.get());
}

Result<std::string> CertPem(X509* cert) {
  Owned<BIO> b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_X509(b.get(), cert) != 1) return OpensslError("cannot write a certificate");
  return BioText(b.get());
}

Result<Owned<X509>> ReadCert(const std::string& pem) {
  Owned<BIO> b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Owned<X509> cert(b ? PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return OpensslError("cannot read a certificate");
  return cert;
}

Result<Owned<EVP_PKEY>> ReadKey(const std::string& pem) {
  Owned<BIO> b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Owned<EVP_PKEY> key(b ? PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return OpensslError("cannot read a private key");
  return key;
}

Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
  if (!ext) return OpensslError("cannot make extension " + value);
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1 ? Status::Ok() : OpensslError("cannot add extension " + value);
}

// A certificate for `key` named `common_name`, valid from an hour ago for `days`, with a random serial.
Result<Owned<X509>> NewCertificate(EVP_PKEY* key, const std::string& common_name, int days) {
  Owned<X509> cert(X509_new());
  if (!cert) return OpensslError("cannot allocate a certificate");
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return OpensslError("no random serial");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  const bool serial_ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) != nullptr;
  BN_free(bn);
  if (!serial_ok) return OpensslError("cannot set the serial");
  X509_set_version(cert.get(), 2);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 24 * 3600);  // NOLINT(runtime/int)
  if (X509_set_pubkey(cert.get(), key) != 1) return OpensslError("cannot set the public key");
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Auto_Pipeline"), -1,
                             -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
  return cert;
}

}  // namespace

Result<CertificateAuthority> MakeCertificateAuthority(const std::string& common_name) {
  Owned<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (!key) return OpensslError("cannot make the CA key");
  AP_ASSIGN_OR_RETURN(auto cert, NewCertificate(key.get(), common_name, 3650));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  AP_RETURN_IF_ERROR(AddExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE"));
  AP_RETURN_IF_ERROR(AddExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  AP_RETURN_IF_ERROR(AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return OpensslError("cannot sign the CA certificate");
  CertificateAuthority ca;
  AP_ASSIGN_OR_RETURN(ca.cert_pem, CertPem(cert.get()));
  AP_ASSIGN_OR_RETURN(ca.key_pem, KeyPem(key.get()));
  return ca;
}

Result<IssuedCertificate> IssueCertificate(const CertificateAuthority& ca, const std::string& common_name,
                                           const std::vector<std::string>& ip_addresses,
                                           const std::vector<std::string>& dns_names) {
  AP_ASSIGN_OR_RETURN(auto ca_cert, ReadCert(ca.cert_pem));
  AP_ASSIGN_OR_RETURN(auto ca_key, ReadKey(ca.key_pem));
  Owned<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (!key) return OpensslError("cannot make a node key");
  AP_ASSIGN_OR_RETURN(auto cert, NewCertificate(key.get(), common_name, 825));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get()));
  AP_RETURN_IF_ERROR(AddExtension(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  AP_RETURN_IF_ERROR(AddExtension(cert.get(), ca_cert.get(), NID_key_usage, "critical,digitalSignature"));
  AP_RETURN_IF_ERROR(AddExtension(cert.get(), ca_cert.get(), NID_ext_key_usage, "serverAuth,clientAuth"));
  AP_RETURN_IF_ERROR(AddExtension(cert.get(), ca_cert.get(), NID_authority_key_identifier, "keyid:always"));
  std::string san;
  for (const auto& ip : ip_addresses) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  for (const auto& dns : dns_names) san += (san.empty() ? "" : ",") + std::string("DNS:") + dns;
  if (!san.empty()) AP_RETURN_IF_ERROR(AddExtension(cert.get(), ca_cert.get(), NID_subject_alt_name, san));
  if (X509_sign(cert.get(), ca_key.get(), EVP_sha256()) == 0) return OpensslError("cannot sign a node certificate");
  IssuedCertificate out;
  AP_ASSIGN_OR_RETURN(out.cert_pem, CertPem(cert.get()));
  AP_ASSIGN_OR_RETURN(out.key_pem, KeyPem(key.get()));
  return out;
}

Result<std::vector<std::string>> SubjectAltNames(const std::string& cert_pem) {
  AP_ASSIGN_OR_RETURN(auto cert, ReadCert(cert_pem));
  std::vector<std::string> out;
  Owned<GENERAL_NAMES> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names.get(), i);
    if (n->type == GEN_DNS) {
      out.push_back("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
                                         ASN1_STRING_length(n->d.dNSName)));
    } else if (n->type == GEN_IPADD && ASN1_STRING_length(n->d.iPAddress) == 4) {
      const unsigned char* b = ASN1_STRING_get0_data(n->d.iPAddress);
      out.push_back("IP:" + std::to_string(b[0]) + "." + std::to_string(b[1]) + "." + std::to_string(b[2]) + "." +
                    std::to_string(b[3]));
    }
  }
  return out;
}

Status VerifyIssuedBy(const std::string& cert_pem, const std::string& ca_pem) {
  AP_ASSIGN_OR_RETURN(auto cert, ReadCert(cert_pem));
  AP_ASSIGN_OR_RETURN(auto ca, ReadCert(ca_pem));
  Owned<X509_STORE> store(X509_STORE_new());
  Owned<X509_STORE_CTX> vctx(X509_STORE_CTX_new());
  if (!store || !vctx || X509_STORE_add_cert(store.get(), ca.get()) != 1 ||
      X509_STORE_CTX_init(vctx.get(), store.get(), cert.get(), nullptr) != 1) {
    return OpensslError("cannot set up the verification");
  }
  if (X509_verify_cert(vctx.get()) != 1) {
    return Status::InvalidParameterValue(std::string("certificate does not verify: ") +
                                         X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx.get())));
  }
  return Status::Ok();
}

std::string CaDir(const std::string& data_dir) { return data_dir + "/ca"; }
std::string CaCertPath(const std::string& data_dir) { return CaDir(data_dir) + "/elasticache-ca.pem"; }

namespace {
std::mutex ca_mu;  // LoadOrCreateCa and ClientTlsFor

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(404, "NotFound", "cannot read " + path, false);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<CertificateAuthority> LoadOrCreateCaLocked(const std::string& data_dir) {
  const std::string dir = CaDir(data_dir);
  const std::string key_path = dir + "/elasticache-ca.key";
  const std::string cert_path = CaCertPath(data_dir);
  auto cert = ReadFile(cert_path);
  auto key = ReadFile(key_path);
  if (cert.ok() && key.ok()) return CertificateAuthority{*cert, *key};
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Internal("cannot create " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0755);  // the certificate is public; the key file itself is 0600
  AP_ASSIGN_OR_RETURN(auto ca, MakeCertificateAuthority("Auto_Pipeline ElastiCache CA"));
  // The key first: a certificate without its key would be taken for a complete CA on the next start.
  AP_RETURN_IF_ERROR(lb::WriteFileAtomically(key_path, ca.key_pem, 0600));
  AP_RETURN_IF_ERROR(lb::WriteFileAtomically(cert_path, ca.cert_pem, 0644));
  return ca;
}
}  // namespace

Result<CertificateAuthority> LoadOrCreateCa(const std::string& data_dir) {
  std::lock_guard lock(ca_mu);
  return LoadOrCreateCaLocked(data_dir);
}

Result<std::shared_ptr<TlsClientContext>> TlsClientContext::FromCaPem(const std::string& ca_pem) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return OpensslError("cannot make a TLS context");
  std::shared_ptr<TlsClientContext> out(new TlsClientContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  AP_ASSIGN_OR_RETURN(auto ca, ReadCert(ca_pem));
  if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca.get()) != 1) return OpensslError("cannot trust the CA");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return out;
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

Result<std::shared_ptr<TlsClientContext>> ClientTlsFor(const std::string& data_dir) {
  std::lock_guard lock(ca_mu);
  static auto* contexts = new std::map<std::string, std::shared_ptr<TlsClientContext>>();
  auto it = contexts->find(data_dir);
  if (it != contexts->end()) return it->second;
  AP_ASSIGN_OR_RETURN(auto ca, LoadOrCreateCaLocked(data_dir));
  AP_ASSIGN_OR_RETURN(auto ctx, TlsClientContext::FromCaPem(ca.cert_pem));
  contexts->emplace(data_dir, ctx);
  return ctx;
}

}  // namespace autopipe::elasticache
