// How SNS signs what it delivers: the region's signing key and certificate, the canonical string of a message,
// and its SignatureVersion 1 (SHA1withRSA) or 2 (SHA256withRSA) signature, base64 as SNS sends it.
//
// The key (RSA 2048) and a self-signed certificate for it are made on first use in DATA_DIR/sns/ (signing-key.pem
// mode 0600, signing-cert.pem 0644) and kept across restarts, so a subscriber that cached the certificate keeps
// verifying. The region serves the certificate at /SimpleNotificationService-<hash>.pem (CertPath()), which is
// what SigningCertURL names.
//
// Thread-safety: SnsSigner is immutable once made and safe to share; SignerFor() is safe from any thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "store/store.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace autopipe::sns {

class SnsSigner {
 public:
  ~SnsSigner();
  // Loads DIR/sns/signing-{key,cert}.pem, making them first when absent. `common_name` names the certificate's
  // subject (sns.<region>.amazonaws.com).
  static Result<std::unique_ptr<SnsSigner>> Open(const std::string& data_dir, const std::string& common_name);

  // Base64 signature of `text` for SignatureVersion "1" (SHA1) or "2" (SHA256).
  Result<std::string> Sign(const std::string& text, const std::string& signature_version) const;
  const std::string& cert_pem() const { return cert_pem_; }
  // "/SimpleNotificationService-<32 hex of the certificate's SHA-256>.pem"
  const std::string& cert_path() const { return cert_path_; }

 private:
  SnsSigner() = default;
  EVP_PKEY* key_ = nullptr;
  std::string cert_pem_;
  std::string cert_path_;
};

// The region's signer for `data_dir` (made once per data dir and process); nullptr when it cannot be made (the
// error is logged).
const SnsSigner* SignerFor(const std::string& data_dir, const std::string& region);

// SNS's canonical string: "Name\nValue\n" for each of the fields a message of its Type signs, in SNS's order
// (Notification: Message, MessageId, Subject if present, Timestamp, TopicArn, Type; SubscriptionConfirmation and
// UnsubscribeConfirmation: Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type). `message` is
// the delivery's JSON body without its signature fields.
std::string StringToSign(const Json& message);

}  // namespace autopipe::sns
