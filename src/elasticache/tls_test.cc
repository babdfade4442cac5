// The region's CA and node certificates (made with OpenSSL, checked here with OpenSSL's verifier), the CA's files
// and modes, and RedisConnection over TLS with AUTH against a real redis-server started by the test (skipped
// when redis-server is not installed): the certificate must name the address, and only the token is accepted.
#include "elasticache/tls.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "elasticache/redis_client.h"
#include "elasticache/replication_groups.h"
#include "process/launcher.h"

namespace autopipe::elasticache {
namespace {

namespace fs = std::filesystem;

TEST(ElastiCacheTls, IssuedCertificatesChainToTheCaAndNameTheirAddresses) {
  auto ca = MakeCertificateAuthority("test CA");
  ASSERT_TRUE(ca.ok()) << ca.status().ToString();
  auto cert = IssueCertificate(*ca, "rg-0001-001", {"127.5.1.10", "127.5.220.1"}, {"node.example"});
  ASSERT_TRUE(cert.ok()) << cert.status().ToString();
  EXPECT_TRUE(VerifyIssuedBy(cert->cert_pem, ca->cert_pem).ok());
  auto sans = SubjectAltNames(cert->cert_pem);
  ASSERT_TRUE(sans.ok());
  EXPECT_EQ(*sans, (std::vector<std::string>{"IP:127.5.1.10", "IP:127.5.220.1", "DNS:node.example"}));
  EXPECT_NE(cert->key_pem.find("PRIVATE KEY"), std::string::npos);
  // Another CA's certificate does not verify.
  auto other = MakeCertificateAuthority("other CA");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(VerifyIssuedBy(cert->cert_pem, other->cert_pem).ok());
}

TEST(ElastiCacheTls, TheCaIsMadeOnceWithAPrivateKey) {
  char tmpl[] = "/tmp/autopipe_ca_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto first = LoadOrCreateCa(dir);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/ca/elasticache-ca.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(CaCertPath(dir).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  auto again = LoadOrCreateCa(dir);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->cert_pem, first->cert_pem);
  EXPECT_EQ(again->key_pem, first->key_pem);
  fs::remove_all(dir);
}

TEST(ElastiCacheTls, AuthTokenRules) {
  EXPECT_TRUE(ValidateAuthToken("abcdefghijklmnop").ok());
  EXPECT_TRUE(ValidateAuthToken("Aa0!&#$^<>-Aa0!&#$^<>-").ok());
  EXPECT_TRUE(ValidateAuthToken(std::string(128, 'x')).ok());
  EXPECT_FALSE(ValidateAuthToken("abcdefghijklmno").ok());  // 15
  EXPECT_FALSE(ValidateAuthToken(std::string(129, 'x')).ok());
  for (const char* bad : {"abcdefghijklmnop@", "abcdefghijklmnop/", "abcdefghijklmnop\"", "abcdefghijklmnop ",
                          "abcdefghijklmnop%", "abcdefghijklmnop*", "abcdefghijklmnop\t"}) {
    Status st = ValidateAuthToken(bad);
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.message(), "Invalid AuthToken provided.");
  }
  EXPECT_EQ(TokenHash("foobar"), "c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2");
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), 0600);
}

TEST(ElastiCacheTls, RedisConnectionSpeaksTlsAndAuth) {
  if (::access("/usr/bin/redis-server", X_OK) != 0) GTEST_SKIP() << "redis-server is not installed";
  char tmpl[] = "/tmp/autopipe_tls_redis.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto ca = MakeCertificateAuthority("test CA");
  ASSERT_TRUE(ca.ok());
  auto cert = IssueCertificate(*ca, "node", {"127.0.0.1"}, {});
  ASSERT_TRUE(cert.ok());
  Write(dir + "/node.crt", cert->cert_pem);
  Write(dir + "/node.key", cert->key_pem);
  Write(dir + "/ca.crt", ca->cert_pem);
  const std::string token = "Test-token-0123456789";
  // The AUTH settings come on stdin, as the controller starts its nodes.
  Write(dir + "/auth.conf", "user default on #" + TokenHash(token) + " ~* &* +@all\n");
  const int port = FreePort();
  ASSERT_GT(port, 0);
  LocalProcessLauncher launcher;
  LaunchSpec spec;
  spec.argv = {"/usr/bin/redis-server", "-", "--bind", "127.0.0.1", "--port", "0", "--tls-port",
               std::to_string(port), "--tls-cert-file", "node.crt", "--tls-key-file", "node.key",
               "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no", "--save", "", "--appendonly", "no"};
  spec.env = {{"PATH", "/usr/bin:/bin"}};
  spec.working_dir = dir;
  spec.stdin_path = dir + "/auth.conf";
  spec.log_path = dir + "/redis.log";
  auto pid = launcher.Launch(spec);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  auto tls = TlsClientContext::FromCaPem(ca->cert_pem);
  ASSERT_TRUE(tls.ok());
  const ConnectOptions good{*tls, {"Wrong-token-0123456789", token}};
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {  // up to ~5 s for the server to listen
    up = RedisConnection::Connect("127.0.0.1", port, 200, good).ok();
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(up) << "no TLS connection with the token";
  auto c = RedisConnection::Connect("127.0.0.1", port, 1000, good);
  ASSERT_TRUE(c.ok());
  auto r = (*c)->Command({"SET", "k", std::string(100000, 'v')});  // larger than one TLS record
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto v = (*c)->Command({"GET", "k"});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->size(), 100000u);
  // Only the token; without one, commands are refused.
  auto wrong = RedisConnection::Connect("127.0.0.1", port, 1000, {*tls, {"Wrong-token-0123456789"}});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), "RedisAuthFailed");
  EXPECT_EQ(wrong.status().message().find("Wrong-token"), std::string::npos);
  auto none = RedisConnection::Connect("127.0.0.1", port, 1000, {*tls, {}});
  ASSERT_TRUE(none.ok());
  auto refused = (*none)->Command({"GET", "k"});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("NOAUTH"), std::string::npos);
  // Plain TCP gets no Redis answer; a certificate for another address, or from another CA, is refused.
  auto plain = RedisConnection::Connect("127.0.0.1", port, 500, {nullptr, {token}});
  EXPECT_FALSE(plain.ok());
  auto other_ca = MakeCertificateAuthority("other");
  ASSERT_TRUE(other_ca.ok());
  auto other_tls = TlsClientContext::FromCaPem(other_ca->cert_pem);
  ASSERT_TRUE(other_tls.ok());
  auto untrusted = RedisConnection::Connect("127.0.0.1", port, 1000, {*other_tls, {token}});
  EXPECT_FALSE(untrusted.ok());
  c->reset();
  launcher.SignalGroup(*pid, /*force=*/true);
  for (int i = 0; i < 100 && launcher.GroupAlive(*pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace autopipe::elasticache
