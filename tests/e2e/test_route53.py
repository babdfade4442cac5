"""Route 53 (the global service) and partitions: the real aws CLI v1 and v2, boto3 and dig.

A partition folder shared by `autopipe global` and regions; zones and records made through Route 53's REST-XML API
and answered by the global process's DNS server over UDP and TCP; weighted and failover routing with real health
checks; Route 53's errors, after which nothing has changed.
"""

import contextlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

from harness import (CliError, Region, autopipe_bin, lease_block, log, parse_cli_error, wait_until)

DIG = shutil.which("dig")


class Global:
    """One `autopipe global` process under test."""

    def __init__(self, partition, root):
        self.partition = partition
        self.data_dir = os.path.join(root, "global")
        self.proc = None
        self.out = None
        self.root = root

    def start(self):
        ep_file = os.path.join(self.data_dir, "endpoint")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(ep_file)
        self.out = open(os.path.join(self.root, "global.stdout"), "ab")
        argv = [autopipe_bin(), "global", "--data-dir", self.data_dir, "--listen", "127.0.0.1:0",
                "--partition", self.partition]
        log("starting %s" % " ".join(argv))
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=_clean_env())

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("autopipe global exited %s: %s" % (self.proc.returncode, self.log_tail()))
            with open(ep_file) as f:
                return f.read().strip()
        self.endpoint = wait_until(ready, 20, 0.1, "the global service's endpoint")
        with open(os.path.join(self.data_dir, "dns-address")) as f:
            host, port = f.read().strip().rsplit(":", 1)
        self.dns_host, self.dns_port = host, int(port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.out:
            self.out.close()
            self.out = None

    def log_tail(self):
        with contextlib.suppress(OSError):
            with open(os.path.join(self.data_dir, "server.log"), errors="replace") as f:
                return f.read()[-3000:]
        return ""

    def env(self):
        env = _clean_env()
        env.update({
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.data_dir, "credentials"),
            "AWS_CONFIG_FILE": os.path.join(self.data_dir, "config"),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_PAGER": "",
            "AWS_EC2_METADATA_DISABLED": "true",
        })
        return env

    def cli(self, version, *args):
        base = Region.v1_argv() if version == 1 else Region.v2_argv()
        argv = list(base) + ["route53"] + [str(a) for a in args] + ["--endpoint-url", self.endpoint,
                                                                   "--output", "json"]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                             env=self.env())
        if res.returncode != 0:
            raise CliError(argv, res.returncode, res.stdout, res.stderr)
        return json.loads(res.stdout) if res.stdout.strip() else {}

    def cli_error(self, version, *args):
        try:
            self.cli(version, *args)
        except CliError as e:
            return e.code, e.message
        raise AssertionError("expected route53 %s to fail" % " ".join(map(str, args)))

    def boto3(self):
        import boto3
        from botocore.config import Config
        ak, sk = read_key(os.path.join(self.data_dir, "credentials"))
        return boto3.session.Session(aws_access_key_id=ak, aws_secret_access_key=sk, region_name="us-east-1").client(
            "route53", endpoint_url=self.endpoint, config=Config(proxies={}, retries={"max_attempts": 1}))

    def dig(self, name, rtype="A", tcp=False, extra=()):
        """(status, [(name, ttl, type, value)...] answer, authority) of one query."""
        argv = [DIG, "@" + self.dns_host, "-p", str(self.dns_port), name, rtype, "+noall", "+comments", "+answer",
                "+authority", "+tries=1", "+time=2"] + (["+tcp"] if tcp else ["+notcp", "+ignore"]) + list(extra)
        res = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        status = re.search(r"status: (\w+)", res.stdout)
        flags = re.search(r"flags: ([\w ]+);", res.stdout)
        answer, authority, section = [], [], None
        for line in res.stdout.splitlines():
            if line.startswith(";; ANSWER SECTION"):
                section = answer
            elif line.startswith(";; AUTHORITY SECTION"):
                section = authority
            elif line.startswith(";") or not line.strip():
                continue
            elif section is not None:
                f = line.split(None, 4)
                section.append((f[0], int(f[1]), f[3], f[4]))
        return (status.group(1) if status else res.stdout + res.stderr,
                flags.group(1).split() if flags else [], answer, authority)


def _clean_env():
    return {k: v for k, v in os.environ.items()
            if not k.startswith("AWS_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}


def read_text(path):
    with open(path) as f:
        return f.read().strip()


def read_key(path):
    import configparser
    cp = configparser.RawConfigParser()
    cp.read(path)
    return cp["default"]["aws_access_key_id"], cp["default"]["aws_secret_access_key"]


def change_batch(*changes, comment=None):
    batch = {"Changes": [{"Action": a, "ResourceRecordSet": s} for a, s in changes]}
    if comment:
        batch["Comment"] = comment
    return batch


def rrset(name, rtype, values, ttl=300, **kw):
    s = {"Name": name, "Type": rtype, "TTL": ttl, "ResourceRecords": [{"Value": v} for v in values]}
    s.update(kw)
    return s


class HealthServer:
    """An HTTP server on loopback answering 200 to GET /health, until stop()."""

    def __init__(self):
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@unittest.skipIf(DIG is None, "dig (dnsutils) is not installed")
class Route53Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="autopipe-e2e-r53-")
        cls.partition = os.path.join(cls.root, "partition")
        cls.g = Global(cls.partition, cls.root)
        cls.addClassCleanup(cls._cleanup)
        cls.g.start()

    @classmethod
    def _cleanup(cls):
        cls.g.stop()
        if os.environ.get("AUTOPIPE_E2E_KEEP"):
            log("keeping %s" % cls.root)
        else:
            shutil.rmtree(cls.root, ignore_errors=True)

    def new_zone(self, version=1, name=None):
        name = name or "z%s.example.test" % uuid.uuid4().hex[:8]
        out = self.g.cli(version, "create-hosted-zone", "--name", name, "--caller-reference", uuid.uuid4().hex)
        return out["HostedZone"]["Id"].split("/")[-1], name + "."

    def change(self, version, zone, *changes):
        out = self.g.cli(version, "change-resource-record-sets", "--hosted-zone-id", zone, "--change-batch",
                         json.dumps(change_batch(*changes)))
        return out["ChangeInfo"]

    def insync(self, version, change_id):
        return wait_until(lambda: self.g.cli(version, "get-change", "--id", change_id)["ChangeInfo"]["Status"] ==
                          "INSYNC", 10, 0.2, "change %s INSYNC" % change_id)

    # -- zones and records answered by dig ------------------------------------------------------------

    def test_zone_records_dig_udp_tcp(self):
        for version in (1, 2):
            with self.subTest(cli=version):
                zone, apex = self.new_zone(version)
                info = self.change(version, zone,
                                   ("CREATE", rrset("www." + apex, "A", ["192.0.2.10", "192.0.2.11"], ttl=120)),
                                   ("CREATE", rrset("www." + apex, "AAAA", ["2001:db8::1"], ttl=60)),
                                   ("CREATE", rrset("alias." + apex, "CNAME", ["www." + apex], ttl=30)),
                                   ("CREATE", rrset("txt." + apex, "TXT", ['"hello world"'], ttl=45)),
                                   ("CREATE", rrset("deep.sub." + apex, "A", ["192.0.2.20"])))
                self.assertEqual(info["Status"], "PENDING")
                self.insync(version, info["Id"].split("/")[-1])
                for tcp in (False, True):
                    status, flags, ans, _ = self.g.dig("www." + apex, "A", tcp=tcp)
                    self.assertEqual(status, "NOERROR")
                    self.assertIn("aa", flags)
                    self.assertEqual(sorted(a[3] for a in ans), ["192.0.2.10", "192.0.2.11"])
                    self.assertEqual({a[1] for a in ans}, {120})
                    status, _, ans, _ = self.g.dig("WWW." + apex.upper(), "AAAA", tcp=tcp)
                    self.assertEqual((status, [(a[1], a[3]) for a in ans]), ("NOERROR", [(60, "2001:db8::1")]))
                    status, _, ans, _ = self.g.dig("alias." + apex, "A", tcp=tcp)
                    self.assertEqual([a[2] for a in ans], ["CNAME", "A", "A"])
                    self.assertEqual(ans[0][1], 30)
                    status, _, ans, _ = self.g.dig("txt." + apex, "TXT", tcp=tcp)
                    self.assertEqual([(a[1], a[3]) for a in ans], [(45, '"hello world"')])
                    # NXDOMAIN and NODATA carry the SOA (negative TTL min(900, 86400) = 900).
                    status, _, ans, auth = self.g.dig("missing." + apex, "A", tcp=tcp)
                    self.assertEqual((status, ans), ("NXDOMAIN", []))
                    self.assertEqual([(a[1], a[2]) for a in auth], [(900, "SOA")])
                    status, _, ans, auth = self.g.dig("www." + apex, "MX", tcp=tcp)
                    self.assertEqual((status, ans, [a[2] for a in auth]), ("NOERROR", [], ["SOA"]))
                    status, _, ans, auth = self.g.dig("sub." + apex, "A", tcp=tcp)  # an empty non-terminal
                    self.assertEqual((status, ans, [a[2] for a in auth]), ("NOERROR", [], ["SOA"]))
                    status, _, ans, _ = self.g.dig(apex, "NS", tcp=tcp)
                    self.assertEqual(sorted(a[3] for a in ans), ["ns-1.autopipe-dns.test.", "ns-2.autopipe-dns.test."])
                    status, _, ans, _ = self.g.dig(apex, "SOA", tcp=tcp)
                    self.assertEqual([a[2] for a in ans], ["SOA"])
                    status, flags, _, _ = self.g.dig("www.not-ours.test", "A", tcp=tcp)
                    self.assertEqual(status, "REFUSED")
                listed = self.g.cli(version, "list-resource-record-sets", "--hosted-zone-id", zone)
                names = [(s["Name"], s["Type"]) for s in listed["ResourceRecordSets"]]
                self.assertEqual(len(names), 7)
                self.assertIn(("www." + apex, "AAAA"), names)
                www = [s for s in listed["ResourceRecordSets"] if s["Name"] == "www." + apex and s["Type"] == "A"][0]
                self.assertEqual(www["TTL"], 120)
                got = self.g.cli(version, "get-hosted-zone", "--id", zone)
                self.assertEqual(got["HostedZone"]["Name"], apex)
                self.assertEqual(got["HostedZone"]["ResourceRecordSetCount"], 7)
                zones = self.g.cli(version, "list-hosted-zones")["HostedZones"]
                self.assertIn(apex, [z["Name"] for z in zones])
                # UPSERT then DELETE: dig follows.
                info = self.change(version, zone, ("UPSERT", rrset("www." + apex, "A", ["192.0.2.99"], ttl=10)),
                                   ("DELETE", rrset("deep.sub." + apex, "A", ["192.0.2.20"])))
                self.insync(version, info["Id"].split("/")[-1])
                self.assertEqual([a[3] for a in self.g.dig("www." + apex)[2]], ["192.0.2.99"])
                self.assertEqual(self.g.dig("deep.sub." + apex)[0], "NXDOMAIN")

    def test_weighted_boto3(self):
        r53 = self.g.boto3()
        apex = "w%s.example.test." % uuid.uuid4().hex[:8]
        zone = r53.create_hosted_zone(Name=apex, CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
        name = "api." + apex
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=change_batch(
            ("CREATE", rrset(name, "A", ["192.0.2.1"], ttl=5, SetIdentifier="one", Weight=1)),
            ("CREATE", rrset(name, "A", ["192.0.2.2"], ttl=5, SetIdentifier="three", Weight=3)),
            ("CREATE", rrset(name, "A", ["192.0.2.3"], ttl=5, SetIdentifier="never", Weight=0))))
        wait_until(lambda: self.g.dig(name)[0] == "NOERROR", 10, 0.2)
        # 120 queries in one dig process.
        argv = [DIG, "@" + self.g.dns_host, "-p", str(self.g.dns_port), "+short", "+tries=1"]
        for _ in range(120):
            argv += [name, "A"]
        seen = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout.split()
        self.assertEqual(len(seen), 120)
        counts = {ip: seen.count(ip) for ip in set(seen)}
        self.assertNotIn("192.0.2.3", counts)
        self.assertGreater(counts.get("192.0.2.1", 0), 5)
        self.assertGreater(counts.get("192.0.2.2", 0), counts.get("192.0.2.1", 0))
        sets = r53.list_resource_record_sets(HostedZoneId=zone, StartRecordName=name, StartRecordType="A")
        self.assertEqual(sorted(s["SetIdentifier"] for s in sets["ResourceRecordSets"] if s["Name"] == name),
                         ["never", "one", "three"])

    def test_failover_follows_health_check(self):
        server = HealthServer()
        self.addCleanup(lambda: server.httpd.socket.fileno() >= 0 and server.stop())
        r53 = self.g.boto3()
        hc = r53.create_health_check(CallerReference=uuid.uuid4().hex, HealthCheckConfig={
            "IPAddress": "127.0.0.1", "Port": server.port, "Type": "HTTP", "ResourcePath": "/health",
            "RequestInterval": 10, "FailureThreshold": 1})["HealthCheck"]
        self.assertEqual(hc["HealthCheckConfig"]["RequestInterval"], 10)
        got = self.g.cli(2, "get-health-check", "--health-check-id", hc["Id"])["HealthCheck"]
        self.assertEqual(got["HealthCheckConfig"]["Port"], server.port)
        self.assertIn(hc["Id"], [h["Id"] for h in r53.list_health_checks()["HealthChecks"]])
        status = wait_until(lambda: r53.get_health_check_status(HealthCheckId=hc["Id"])["HealthCheckObservations"],
                            10, 0.2, "a first observation")
        self.assertTrue(status[0]["StatusReport"]["Status"].startswith("Success"), status)
        apex = "f%s.example.test." % uuid.uuid4().hex[:8]
        zone = r53.create_hosted_zone(Name=apex, CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
        name = "app." + apex
        ttl = 5
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=change_batch(
            ("CREATE", rrset(name, "A", ["192.0.2.1"], ttl=ttl, SetIdentifier="a", Failover="PRIMARY",
                             HealthCheckId=hc["Id"])),
            ("CREATE", rrset(name, "A", ["192.0.2.2"], ttl=ttl, SetIdentifier="b", Failover="SECONDARY"))))
        wait_until(lambda: [a[3] for a in self.g.dig(name)[2]] == ["192.0.2.1"], 10, 0.2, "the primary answered")
        # The health check is in use.
        code, _ = self.g.cli_error(1, "delete-health-check", "--health-check-id", hc["Id"])
        self.assertEqual(code, "HealthCheckInUse")
        server.stop()
        stopped = time.monotonic()
        bound = 10 * 1 + ttl + 5  # interval x threshold + TTL, and a probe's own time
        wait_until(lambda: [a[3] for a in self.g.dig(name)[2]] == ["192.0.2.2"], bound, 0.2,
                   "the secondary answered after the primary's server stopped")
        log("failover: secondary answered %.1fs after the primary stopped" % (time.monotonic() - stopped))
        obs = r53.get_health_check_status(HealthCheckId=hc["Id"])["HealthCheckObservations"]
        self.assertTrue(obs[0]["StatusReport"]["Status"].startswith("Failure"), obs)
        # Back: a server on the same port makes the primary answer again.
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass
        again = http.server.ThreadingHTTPServer(("127.0.0.1", server.port), H)
        t = threading.Thread(target=again.serve_forever, daemon=True)
        t.start()
        try:
            wait_until(lambda: [a[3] for a in self.g.dig(name)[2]] == ["192.0.2.1"], bound, 0.2,
                       "the primary answered again")
        finally:
            again.shutdown()
            again.server_close()
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=change_batch(
            ("DELETE", rrset(name, "A", ["192.0.2.1"], ttl=ttl, SetIdentifier="a", Failover="PRIMARY",
                             HealthCheckId=hc["Id"]))))
        r53.delete_health_check(HealthCheckId=hc["Id"])
        with self.assertRaises(r53.exceptions.NoSuchHealthCheck):
            r53.get_health_check(HealthCheckId=hc["Id"])

    # -- errors: Route 53's codes, and nothing changes ---------------------------------------------

    def test_errors_change_nothing(self):
        zone, apex = self.new_zone(1)
        self.change(1, zone, ("CREATE", rrset("a." + apex, "A", ["192.0.2.1"])))
        before = self.g.cli(1, "list-resource-record-sets", "--hosted-zone-id", zone)
        cases = [
            ("outside the zone", [("CREATE", rrset("a.other.test.", "A", ["192.0.2.1"]))], "InvalidChangeBatch",
             "is not permitted in zone"),
            ("duplicate CREATE", [("CREATE", rrset("b." + apex, "A", ["192.0.2.2"])),
                                  ("CREATE", rrset("a." + apex, "A", ["192.0.2.9"]))], "InvalidChangeBatch",
             "but it already exists"),
            ("DELETE of a missing set", [("DELETE", rrset("nope." + apex, "A", ["192.0.2.1"]))], "InvalidChangeBatch",
             "but it was not found"),
            ("DELETE with other values", [("DELETE", rrset("a." + apex, "A", ["192.0.2.7"]))], "InvalidChangeBatch",
             "do not match the current values"),
            ("unknown health check", [("CREATE", rrset("h." + apex, "A", ["192.0.2.1"], SetIdentifier="x",
                                                       Failover="PRIMARY", HealthCheckId=str(uuid.uuid4())))],
             "NoSuchHealthCheck", None),
            ("bad IPv4", [("CREATE", rrset("c." + apex, "A", ["192.0.2"]))], "InvalidChangeBatch", None),
            ("CNAME beside A", [("CREATE", rrset("a." + apex, "CNAME", ["x.example.test."]))], "InvalidChangeBatch",
             "conflicts with other records"),
            ("no TTL", [("CREATE", {"Name": "d." + apex, "Type": "A", "ResourceRecords": [{"Value": "192.0.2.1"}]})],
             "InvalidInput", None),
            ("weighted without SetIdentifier", [("CREATE", rrset("e." + apex, "A", ["192.0.2.1"], Weight=5))],
             "InvalidInput", None),
        ]
        # Each case through one CLI (alternating v1 and v2: a CLI call costs seconds on a loaded machine).
        for i, (what, changes, code, text) in enumerate(cases):
            version = 1 + i % 2
            with self.subTest(cli=version, case=what):
                got, msg = self.g.cli_error(version, "change-resource-record-sets", "--hosted-zone-id", zone,
                                            "--change-batch", json.dumps(change_batch(*changes)))
                self.assertEqual(got, code, msg)
                if text:
                    self.assertIn(text, msg)
        r53 = self.g.boto3()
        with self.assertRaises(r53.exceptions.InvalidChangeBatch) as cm:
            r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=change_batch(
                ("UPSERT", rrset("b." + apex, "A", ["192.0.2.2"])),
                ("CREATE", rrset("a." + apex, "A", ["192.0.2.1"]))))
        self.assertIn("but it already exists", str(cm.exception))
        after = self.g.cli(2, "list-resource-record-sets", "--hosted-zone-id", zone)
        self.assertEqual(before, after)
        self.assertEqual(self.g.dig("b." + apex)[0], "NXDOMAIN")  # the batch with the duplicate applied nothing
        code, msg = self.g.cli_error(1, "get-hosted-zone", "--id", "ZNOSUCHZONE1")
        self.assertEqual(code, "NoSuchHostedZone")
        code, _ = self.g.cli_error(2, "change-resource-record-sets", "--hosted-zone-id", "ZNOSUCHZONE1",
                                   "--change-batch", json.dumps(change_batch(("CREATE", rrset("a.x.", "A", ["1.2.3.4"])))))
        self.assertEqual(code, "NoSuchHostedZone")
        code, _ = self.g.cli_error(1, "get-health-check", "--health-check-id", str(uuid.uuid4()))
        self.assertEqual(code, "NoSuchHealthCheck")
        ref = uuid.uuid4().hex
        self.g.cli(1, "create-hosted-zone", "--name", "dup%s.example.test" % ref[:6], "--caller-reference", ref)
        code, _ = self.g.cli_error(2, "create-hosted-zone", "--name", "other%s.example.test" % ref[:6],
                                   "--caller-reference", ref)
        self.assertEqual(code, "HostedZoneAlreadyExists")
        code, _ = self.g.cli_error(2, "create-hosted-zone", "--name", apex, "--caller-reference", uuid.uuid4().hex)
        self.assertEqual(code, "ConflictingDomainExists")
        code, _ = self.g.cli_error(1, "delete-hosted-zone", "--id", zone)
        self.assertEqual(code, "HostedZoneNotEmpty")
        for cfg, why in ((dict(RequestInterval=20), "interval"), (dict(FailureThreshold=11), "threshold"),
                         (dict(Type="HTTPS"), "type")):
            with self.subTest(health_check=why):
                c = {"IPAddress": "127.0.0.1", "Port": 80, "Type": "HTTP"}
                c.update(cfg)
                code, _ = self.g.cli_error(1, "create-health-check", "--caller-reference", uuid.uuid4().hex,
                                           "--health-check-config", json.dumps(c))
                self.assertEqual(code, "InvalidInput")
        self.assertEqual(self.g.cli(1, "list-resource-record-sets", "--hosted-zone-id", zone), before)
        # A signature with a key from outside the partition.
        env = self.g.env()
        fake = os.path.join(self.root, "other-credentials")
        with open(fake, "w") as f:
            f.write("[default]\naws_access_key_id = AKIAOTHEROTHEROTHER1\naws_secret_access_key = x\n")
        env["AWS_SHARED_CREDENTIALS_FILE"] = fake
        res = subprocess.run(list(Region.v2_argv()) + ["route53", "list-hosted-zones", "--endpoint-url",
                                                       self.g.endpoint], capture_output=True, text=True, env=env,
                             timeout=60)
        self.assertNotEqual(res.returncode, 0)
        self.assertEqual(parse_cli_error(res.stderr)[0], "InvalidClientTokenId", res.stderr)
        # Deleting an emptied zone works; it is gone for dig too.
        self.change(1, zone, ("DELETE", rrset("a." + apex, "A", ["192.0.2.1"])))
        self.g.cli(2, "delete-hosted-zone", "--id", zone)
        wait_until(lambda: self.g.dig(apex, "SOA")[0] == "REFUSED", 10, 0.2)

    def test_durable_across_restart(self):
        zone, apex = self.new_zone(2)
        self.change(2, zone, ("CREATE", rrset("keep." + apex, "TXT", ['"kept"'], ttl=77)))
        self.g.stop()
        self.g.start()
        self.assertEqual([(a[1], a[3]) for a in self.g.dig("keep." + apex, "TXT")[2]], [(77, '"kept"')])


@unittest.skipIf(DIG is None, "dig (dnsutils) is not installed")
class AliasTest(unittest.TestCase):
    """An alias record to a Classic LB of a region in the partition, resolved by asking that region."""

    def test_alias_to_a_regions_load_balancer(self):
        root = tempfile.mkdtemp(prefix="autopipe-e2e-alias-")
        self.addCleanup(shutil.rmtree, root, True)
        partition = os.path.join(root, "partition")
        region = Region("test_route53.alias")
        self.addCleanup(region.close)
        region.server_args = ["--partition", partition]
        region.start()
        g = Global(partition, root)
        self.addCleanup(g.stop)
        g.start()
        lb = region.boto3("elb").create_load_balancer(
            LoadBalancerName="web", AvailabilityZones=["us-west-2a"],
            Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstanceProtocol": "HTTP", "InstancePort": 80}])
        dns_name = lb["DNSName"]
        r53 = g.boto3()
        apex = "a%s.example.test." % uuid.uuid4().hex[:8]
        zone = r53.create_hosted_zone(Name=apex, CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
        elb_zone = "Z1H1FL5HABSF5"  # ELB's hosted zone id in us-west-2
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=change_batch(
            ("CREATE", {"Name": "lb." + apex, "Type": "A", "AliasTarget": {
                "HostedZoneId": elb_zone, "DNSName": dns_name, "EvaluateTargetHealth": False}}),
            # With EvaluateTargetHealth, a load balancer without an InService instance is unhealthy: the secondary.
            ("CREATE", {"Name": "app." + apex, "Type": "A", "SetIdentifier": "p", "Failover": "PRIMARY",
                        "AliasTarget": {"HostedZoneId": elb_zone, "DNSName": dns_name, "EvaluateTargetHealth": True}}),
            ("CREATE", rrset("app." + apex, "A", ["192.0.2.2"], ttl=5, SetIdentifier="s", Failover="SECONDARY"))))
        wait_until(lambda: [(a[1], a[3]) for a in g.dig("lb." + apex)[2]] == [(60, dns_name)], 15, 0.3,
                   "the alias answered with the load balancer's address")
        self.assertEqual([a[3] for a in g.dig("app." + apex)[2]], ["192.0.2.2"])
        listed = r53.list_resource_record_sets(HostedZoneId=zone, StartRecordName="lb." + apex)
        self.assertEqual(listed["ResourceRecordSets"][0]["AliasTarget"]["DNSName"], dns_name + ".")
        # A target that no region of the partition has.
        with self.assertRaises(r53.exceptions.InvalidChangeBatch):
            r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=change_batch(
                ("CREATE", {"Name": "bad." + apex, "Type": "A", "AliasTarget": {
                    "HostedZoneId": elb_zone, "DNSName": "127.250.200.9", "EvaluateTargetHealth": False}})))
        # The region gone: the alias has nothing to answer (NODATA), the failover record answers the secondary.
        region.kill9()
        wait_until(lambda: g.dig("lb." + apex)[2] == [], 15, 0.3, "the alias to stop answering")
        self.assertEqual([a[3] for a in g.dig("app." + apex)[2]], ["192.0.2.2"])


class PartitionTest(unittest.TestCase):
    """Two regions and the global service in one partition share its key pair; each keeps its own entry."""

    def test_two_regions_and_global_share_the_key_pair(self):
        root = tempfile.mkdtemp(prefix="autopipe-e2e-partition-")
        self.addCleanup(shutil.rmtree, root, True)
        partition = os.path.join(root, "partition")
        regions = []
        for name in ("us-west-2", "eu-west-1"):
            lease = lease_block()
            self.addCleanup(lease.release)
            data = os.path.join(root, name)
            out = open(os.path.join(root, name + ".stdout"), "wb")
            self.addCleanup(out.close)
            argv = [autopipe_bin(), "server", "--data-dir", data, "--listen", "127.0.0.1:0", "--region", name,
                    "--address-block", lease.block, "--partition", partition]
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, env=_clean_env())
            self.addCleanup(self._down, data, proc)
            ep = wait_until(lambda: read_text(os.path.join(data, "endpoint")), 20, 0.1, name + " endpoint")
            regions.append((name, data, proc, ep, lease.block))
        g = Global(partition, root)
        self.addCleanup(g.stop)
        g.start()
        shared = read_key(os.path.join(partition, "credentials"))
        self.assertEqual(os.stat(os.path.join(partition, "credentials")).st_mode & 0o777, 0o600)
        for _, data, _, _, _ in regions:
            self.assertEqual(read_key(os.path.join(data, "credentials")), shared)
            self.assertEqual(os.stat(os.path.join(data, "credentials")).st_mode & 0o777, 0o600)
        self.assertEqual(read_key(os.path.join(g.data_dir, "credentials")), shared)
        entries = {}
        for name, data, proc, ep, block in regions:
            with open(os.path.join(partition, "regions", name + ".json")) as f:
                e = json.load(f)
            self.assertEqual((e["Region"], e["Endpoint"], e["AddressBlock"], e["Pid"], e["State"]),
                             (name, ep, block, proc.pid, "running"))
            entries[name] = e
        self.assertNotEqual(entries["us-west-2"]["AddressBlock"], entries["eu-west-1"]["AddressBlock"])
        with open(os.path.join(partition, "global.json")) as f:
            self.assertEqual(json.load(f)["Endpoint"], g.endpoint)
        # The one key pair works in both regions and the global service.
        import boto3
        from botocore.config import Config
        for name, _, _, ep, _ in regions:
            ec2 = boto3.session.Session(aws_access_key_id=shared[0], aws_secret_access_key=shared[1],
                                        region_name=name).client("ec2", endpoint_url=ep, config=Config(proxies={}))
            self.assertEqual(ec2.describe_availability_zones()["AvailabilityZones"][0]["RegionName"], name)
        self.assertEqual(g.boto3().list_hosted_zones()["HostedZones"], [])
        # One region's crash changes nothing in the other: its entry stays, its pid is gone.
        name, data, proc, ep, _ = regions[0]
        proc.kill()
        proc.wait(10)
        with open(os.path.join(partition, "regions", name + ".json")) as f:
            self.assertEqual(json.load(f)["Pid"], proc.pid)
        self.assertFalse(os.path.exists("/proc/%d" % proc.pid) and
                         open("/proc/%d/stat" % proc.pid).read().split()[2] != "Z")
        other = regions[1]
        ec2 = boto3.session.Session(aws_access_key_id=shared[0], aws_secret_access_key=shared[1],
                                    region_name=other[0]).client("ec2", endpoint_url=other[3],
                                                                 config=Config(proxies={}))
        self.assertEqual(ec2.describe_availability_zones()["AvailabilityZones"][0]["RegionName"], other[0])

    @staticmethod
    def _down(data, proc):
        subprocess.run([autopipe_bin(), "down", "--data-dir", data], capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


class StandbyUpTest(unittest.TestCase):
    """`autopipe up --standby-region`: the seed's stack in two regions and the global service, one partition."""

    def test_up_with_a_standby_region(self):
        root = tempfile.mkdtemp(prefix="autopipe-e2e-standby-")
        self.addCleanup(shutil.rmtree, root, True)
        primary, standby = lease_block(), lease_block()
        data = os.path.join(root, "primary")
        out_path = os.path.join(root, "up.out")
        out = open(out_path, "wb")
        self.addCleanup(out.close)
        argv = [autopipe_bin(), "up", "--data-dir", data, "--listen", "127.0.0.1:0", "--address-block",
                primary.block, "--standby-region", "eu-west-1", "--standby-address-block", standby.block]
        log("starting %s" % " ".join(argv))
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=_clean_env())
        # Cleanups run last-in first-out: stop everything, then release the blocks.
        self.addCleanup(standby.release)
        self.addCleanup(primary.release)
        self.addCleanup(self._stop, proc, [data, data + "-eu-west-1"], data + "-global")
        text = wait_until(lambda: (read_text(out_path) if "Press Ctrl-C" in read_text(out_path) else
                                   (proc.poll() is not None and self.fail("up exited: " + read_text(out_path)))),
                          240, 1, "both regions up")
        self.assertIn("Auto_Pipeline region us-west-2 is up.", text)
        self.assertIn("Standby Auto_Pipeline region eu-west-1 is up.", text)
        self.assertIn("Press Ctrl-C to stop the regions", text)
        partition = data + "-partition"
        regions = {n: json.loads(read_text(os.path.join(partition, "regions", n + ".json")))
                   for n in ("us-west-2", "eu-west-1")}
        self.assertEqual(regions["us-west-2"]["AddressBlock"], primary.block)
        self.assertEqual(regions["eu-west-1"]["AddressBlock"], standby.block)
        self.assertIn("curl http://%s.200." % standby.block, text)
        g_endpoint = read_text(os.path.join(data + "-global", "endpoint"))
        self.assertIn(g_endpoint, text)
        shared = read_key(os.path.join(partition, "credentials"))
        for d in (data, data + "-eu-west-1", data + "-global"):
            self.assertEqual(read_key(os.path.join(d, "credentials")), shared)
        # Ctrl-C stops both regions and the global service.
        proc.send_signal(signal.SIGINT)
        proc.wait(240)
        self.assertEqual(proc.returncode, 0, read_text(out_path)[-2000:])
        for n in ("us-west-2", "eu-west-1"):
            with open(os.path.join(partition, "regions", n + ".json")) as f:
                self.assertEqual(json.load(f)["State"], "stopped")
        self.assertFalse(os.path.exists(os.path.join(data + "-global", "endpoint")))

    @staticmethod
    def _stop(proc, region_dirs, global_dir):
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(240)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for d in region_dirs:
            if os.path.exists(os.path.join(d, "state.db")):
                subprocess.run([autopipe_bin(), "down", "--data-dir", d], capture_output=True, timeout=120,
                               stdin=subprocess.DEVNULL)
        with contextlib.suppress(OSError, ValueError):
            pid = int(read_text(os.path.join(global_dir, "server.pid")).split()[0])
            os.kill(pid, signal.SIGTERM)


if __name__ == "__main__":
    unittest.main()
