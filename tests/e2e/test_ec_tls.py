"""ElastiCache in-transit encryption and AUTH: a cluster-mode group created with TransitEncryptionEnabled and an
AuthToken serves only TLS (certificates from the region's CA, DATA_DIR/ca/elasticache-ca.pem) and only
authenticated clients, through redis-cli --tls and redis-py's RedisCluster(ssl=True); ModifyReplicationGroup
rotates the token (ROTATE: both work; SET: only the new one), a failover under TLS and AUTH still works and the
rebuilt node takes the current token; the refused calls create nothing; the token never shows in the server's log,
its events, any API answer or any process's command line.
"""

import json
import os
import subprocess
import sys
import unittest

import harness
from harness import Region, wait_until
from test_elasticache import key_in, slot_of

sys.path.append("/usr/lib/python3/dist-packages")
import redis  # noqa: E402
from redis.cluster import RedisCluster  # noqa: E402

RG = "tlsauth"
TOKEN = "First-token-0123456789abcdef"
TOKEN2 = "Second-token-<#$^&!>-98765"
CALL = dict(ReplicationGroupId=RG, ReplicationGroupDescription="tls and auth", NumNodeGroups=2,
            ReplicasPerNodeGroup=1, CacheNodeType="cache.t3.micro", Engine="redis",
            CacheParameterGroupName="default.redis7.cluster.on", AutomaticFailoverEnabled=True,
            TransitEncryptionEnabled=True, AtRestEncryptionEnabled=True, AuthToken=TOKEN)


class CacheTlsTest(unittest.TestCase):
    answers = []  # every API answer's text, for the leak check

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        cls.ec = cls.region.boto3("elasticache")
        cls.keep(cls.ec.create_replication_group(**CALL))
        wait_until(lambda: cls.group()["Status"] == "available", 60, 0.1, "the group")
        cls.endpoint = cls.group()["ConfigurationEndpoint"]
        cls.ca = os.path.join(cls.region.data_dir, "ca", "elasticache-ca.pem")

    @classmethod
    def keep(cls, answer):
        cls.answers.append(json.dumps(answer, default=str))
        return answer

    @classmethod
    def group(cls):
        return cls.keep(cls.ec.describe_replication_groups(ReplicationGroupId=RG))["ReplicationGroups"][0]

    def nodes(self):
        """(address, port) of every node, from the description."""
        out = []
        for ng in self.group()["NodeGroups"]:
            for m in ng["NodeGroupMembers"]:
                out.append((m["ReadEndpoint"]["Address"], m["ReadEndpoint"]["Port"]))
        return out

    def node_client(self, address, port, password=None, tls=True, username=None):
        return redis.Redis(host=address, port=port, username=username, password=password, ssl=tls,
                           ssl_ca_certs=self.ca if tls else None, ssl_cert_reqs="required", socket_timeout=3)

    def accepts(self, address, port, password, username=None):
        """True when the node answers PING with this password (None: no AUTH)."""
        r = self.node_client(address, port, password, username=username)
        try:
            return r.ping()
        except (redis.exceptions.AuthenticationError, redis.exceptions.ResponseError):
            return False
        finally:
            r.close()

    def cli(self, *args, token=TOKEN, tls=True):
        env = dict(os.environ)
        env.pop("REDISCLI_AUTH", None)
        if token:
            env["REDISCLI_AUTH"] = token  # never on argv
        argv = ["redis-cli"] + (["--tls", "--cacert", self.ca] if tls else []) + [
            "-c", "-h", self.endpoint["Address"], "-p", str(self.endpoint["Port"])] + list(args)
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=20)
        return (p.stdout + p.stderr).strip()

    def test_01_description(self):
        g = self.group()
        self.assertTrue(g["TransitEncryptionEnabled"])
        self.assertEqual(g["TransitEncryptionMode"], "required")
        self.assertTrue(g["AuthTokenEnabled"])
        self.assertIn("AuthTokenLastModifiedDate", g)
        self.assertTrue(g["AtRestEncryptionEnabled"])  # recorded: the disk is the machine's, not ours to encrypt
        self.assertTrue(g["ClusterEnabled"])
        for out in (self.region.cli_v1("elasticache", "describe-replication-groups", "--replication-group-id", RG),
                    self.region.cli_v2("elasticache", "describe-cache-clusters", "--show-cache-node-info")):
            self.keep(out)
            text = json.dumps(out)
            self.assertIn('"TransitEncryptionEnabled": true', text)
            self.assertIn('"AuthTokenEnabled": true', text)

    def test_02_errors_create_nothing(self):
        base = ["elasticache", "create-replication-group", "--replication-group-description", "x",
                "--cache-node-type", "cache.t3.micro", "--engine", "redis", "--num-cache-clusters", "1"]
        cases = [
            (["--replication-group-id", "noenc", "--auth-token", "Valid-token-0123456789"], 1,
             "encryption-in-transit"),
            (["--replication-group-id", "shorttok", "--transit-encryption-enabled", "--auth-token", "short"], 2,
             "Invalid AuthToken"),
            (["--replication-group-id", "badchar", "--transit-encryption-enabled", "--auth-token",
              "has-an-at-sign@-0123456789"], 1, "Invalid AuthToken"),
            (["--replication-group-id", "slashtok", "--transit-encryption-enabled", "--auth-token",
              "has/a/slash/0123456789"], 2, "Invalid AuthToken"),
        ]
        for extra, version, message in cases:
            code, text = self.region.cli_error_code(*(base + extra), version=version)
            self.assertEqual(code, "InvalidParameterValue", text)
            self.assertIn(message, text)
            self.answers.append(text)
        with self.assertRaises(self.ec.exceptions.ClientError) as e:
            self.ec.create_replication_group(**dict(CALL, ReplicationGroupId="boto-noenc",
                                                    TransitEncryptionEnabled=False))
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidParameterValue")
        ids = [g["ReplicationGroupId"] for g in self.keep(self.ec.describe_replication_groups())["ReplicationGroups"]]
        self.assertEqual(ids, [RG])

    def test_03_redis_cli_tls_auth_through_the_configuration_endpoint(self):
        low, high = key_in(0, 8191, "cli"), key_in(8192, 16383, "cli")
        for k in (low, high):
            self.assertEqual(self.cli("SET", k, "v-" + k), "OK")
        for k in (low, high):
            self.assertEqual(self.cli("GET", k), "v-" + k)
        # Without AUTH: refused; in plaintext: no Redis answer at all.
        self.assertIn("NOAUTH", self.cli("GET", low, token=None))
        plain = self.cli("PING", tls=False)
        self.assertNotIn("PONG", plain)
        # Every node serves TLS only, and only with the token.
        for address, port in self.nodes():
            self.assertTrue(self.accepts(address, port, TOKEN))
            self.assertFalse(self.accepts(address, port, None))
            r = self.node_client(address, port, TOKEN, tls=False)
            with self.assertRaises(redis.exceptions.ConnectionError):
                r.ping()
            r.close()

    def test_04_redis_py_cluster_with_ssl(self):
        rc = RedisCluster(host=self.endpoint["Address"], port=self.endpoint["Port"], password=TOKEN, ssl=True,
                          ssl_ca_certs=self.ca, socket_timeout=3)
        try:
            keys = [key_in(0, 8191, "py"), key_in(8192, 16383, "py")]
            for k in keys:
                rc.set(k, k.upper())
            for k in keys:
                self.assertEqual(rc.get(k), k.upper().encode())
            self.assertEqual(len({slot_of(k) <= 8191 for k in keys}), 2)
        finally:
            rc.close()

    def wait_modified(self):
        wait_until(lambda: self.group()["Status"] == "available", 30, 0.1, "the token change")

    def test_05_rotate_then_set(self):
        before = self.group()["AuthTokenLastModifiedDate"]
        out = self.keep(self.region.cli_v2("elasticache", "modify-replication-group", "--replication-group-id", RG,
                                           "--auth-token", TOKEN2, "--auth-token-update-strategy", "ROTATE",
                                           "--apply-immediately"))
        self.assertEqual(out["ReplicationGroup"]["Status"], "modifying")
        self.wait_modified()
        for address, port in self.nodes():
            self.assertTrue(self.accepts(address, port, TOKEN), (address, port))
            self.assertTrue(self.accepts(address, port, TOKEN2), (address, port))
            self.assertFalse(self.accepts(address, port, None))
        self.assertGreaterEqual(self.group()["AuthTokenLastModifiedDate"], before)
        self.keep(self.region.cli_v1("elasticache", "modify-replication-group", "--replication-group-id", RG,
                                     "--auth-token", TOKEN2, "--auth-token-update-strategy", "SET",
                                     "--apply-immediately"))
        self.wait_modified()
        for address, port in self.nodes():
            self.assertFalse(self.accepts(address, port, TOKEN), (address, port))
            self.assertTrue(self.accepts(address, port, TOKEN2), (address, port))
        k = key_in(0, 8191, "cli")
        self.assertEqual(self.cli("GET", k, token=TOKEN2), "v-" + k)
        self.assertIn("WRONGPASS", self.cli("GET", k, token=TOKEN))
        # Replicas still follow their primaries (masterauth followed the token).
        for address, port in self.nodes():
            r = self.node_client(address, port, TOKEN2)
            info = r.info("replication")
            r.close()
            if info["role"] == "slave":
                self.assertEqual(info["master_link_status"], "up")
        # A bad strategy and a token on a group without TLS are refused.
        code, _ = self.region.cli_error_code("elasticache", "modify-replication-group", "--replication-group-id", RG,
                                             "--auth-token", "x", "--auth-token-update-strategy", "SET",
                                             "--apply-immediately", version=2)
        self.assertEqual(code, "InvalidParameterValue")

    def test_06_failover_under_tls_and_auth(self):
        self.keep(self.ec.test_failover(ReplicationGroupId=RG, NodeGroupId="0001"))

        def failed_over():
            events = self.keep(self.ec.describe_events(SourceIdentifier=RG, SourceType="replication-group",
                                                      Duration=60))["Events"]
            return any(e["Message"].startswith("Failover from") for e in events)
        try:
            wait_until(failed_over, 30, 0.1, "the failover")
            wait_until(lambda: self.group()["Status"] == "available", 60, 0.2, "recovery")
        except harness.WaitTimeout as e:
            self.fail("%s\n%s" % (e, self.failover_state()))
        k = key_in(0, 8191, "cli")
        self.assertEqual(self.cli("GET", k, token=TOKEN2), "v-" + k)
        # The rebuilt node started from the current settings: only the current token.
        for address, port in self.nodes():
            self.assertTrue(self.accepts(address, port, TOKEN2), (address, port))
            self.assertFalse(self.accepts(address, port, TOKEN), (address, port))

    def failover_state(self):
        """What the group, its nodes and the server saw: printed when a failover does not finish."""
        parts = [json.dumps(self.group(), default=str, indent=1)]
        for address, port in self.nodes():
            try:
                r = self.node_client(address, port, TOKEN2)
                parts.append("%s:%s role=%s\n%s" % (address, port, r.info("replication").get("role"),
                                                    r.execute_command("CLUSTER", "NODES")))
                r.close()
            except Exception as e:  # noqa: BLE001 - a diagnostic: any failure to ask is itself the answer
                parts.append("%s:%s unreachable: %s" % (address, port, e))
        parts.append(self.region.diagnostics(150))
        return "\n".join(str(p) for p in parts)

    def test_07_no_token_anywhere(self):
        events = self.keep(self.ec.describe_events(Duration=60))
        self.answers.append(json.dumps(events, default=str))
        texts = list(self.answers)
        for name in os.listdir(self.region.root):
            if name.startswith("server.stdout"):
                texts.append(harness.read_text(os.path.join(self.region.root, name)))
        procs = harness.data_dir_processes(self.region.data_dir)
        self.assertTrue(procs)
        for pid, _ in procs:
            texts.append(" ".join(harness.proc_cmdline(pid) or []))
        for pid in harness.all_pids():
            texts.append(" ".join(harness.proc_cmdline(pid) or []))
        for text in texts:
            for token in (TOKEN, TOKEN2):
                self.assertNotIn(token, text)
        # The CA key stays the server's; each node's key is its own and private.
        self.assertEqual(os.stat(os.path.join(self.region.data_dir, "ca", "elasticache-ca.key")).st_mode & 0o777,
                         0o600)
        group_dir = os.path.join(self.region.data_dir, "elasticache", RG)
        for node in os.listdir(group_dir):
            key = os.path.join(group_dir, node, "node.key")
            if os.path.exists(key):
                st = os.stat(key)
                self.assertEqual(st.st_mode & 0o777, 0o600)
                self.assertEqual(st.st_uid, os.stat(os.path.join(group_dir, node)).st_uid)

    def test_08_delete_then_rotate_from_no_token(self):
        # DELETE: no token any more (TLS stays); then a ROTATE adds one while clients without AUTH still work.
        out = self.ec.modify_replication_group(ReplicationGroupId=RG, AuthTokenUpdateStrategy="DELETE",
                                               ApplyImmediately=True)["ReplicationGroup"]
        self.assertFalse(out["AuthTokenEnabled"])
        self.wait_modified()
        for address, port in self.nodes():
            self.assertTrue(self.accepts(address, port, None), (address, port))
        token3 = "Third-token-0123456789"
        self.ec.modify_replication_group(ReplicationGroupId=RG, AuthToken=token3, AuthTokenUpdateStrategy="ROTATE",
                                         ApplyImmediately=True)
        self.wait_modified()
        self.assertTrue(self.group()["AuthTokenEnabled"])
        for address, port in self.nodes():
            self.assertTrue(self.accepts(address, port, None), (address, port))
            # Redis refuses the one-argument AUTH while the default user needs no password: clients send the
            # token as `AUTH default <token>` until the SET (docs/design.md).
            self.assertTrue(self.accepts(address, port, token3, username="default"), (address, port))
        k = key_in(0, 8191, "cli")
        self.assertEqual(self.cli("GET", k, token=None), "v-" + k)

    def test_09_non_cluster_group_over_tls(self):
        # Cluster mode disabled: replication over TLS (REPLICAOF), the primary and reader endpoints pass TLS through
        # and their addresses are in the nodes' certificates (the client checks them here).
        self.ec.create_replication_group(ReplicationGroupId="tlsflat", ReplicationGroupDescription="d",
                                         NumCacheClusters=2, CacheNodeType="cache.t3.micro", Engine="redis",
                                         AutomaticFailoverEnabled=True, TransitEncryptionEnabled=True,
                                         AuthToken=TOKEN)

        def flat():
            return self.ec.describe_replication_groups(ReplicationGroupId="tlsflat")["ReplicationGroups"][0]
        wait_until(lambda: flat()["Status"] == "available", 60, 0.1, "the non-cluster group")
        ng = flat()["NodeGroups"][0]
        primary, reader = ng["PrimaryEndpoint"], ng["ReaderEndpoint"]
        w = redis.Redis(host=primary["Address"], port=primary["Port"], password=TOKEN, ssl=True,
                        ssl_ca_certs=self.ca, ssl_check_hostname=True, socket_timeout=3)
        r = redis.Redis(host=reader["Address"], port=reader["Port"], password=TOKEN, ssl=True,
                        ssl_ca_certs=self.ca, ssl_check_hostname=True, socket_timeout=3)
        try:
            w.set("flat", "yes")
            wait_until(lambda: r.get("flat") == b"yes", 10, 0.05, "the replica to have the key")
            self.assertEqual(r.info("replication")["role"], "slave")
        finally:
            w.close()
            r.close()
        self.ec.delete_replication_group(ReplicationGroupId="tlsflat")


if __name__ == "__main__":
    unittest.main()
