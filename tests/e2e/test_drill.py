"""`autopipe drill region-outage` end to end: two regions and the global service in one partition, a load balancer
with a sample-app instance in each region, a Route 53 failover record set with a health check on region A's load
balancer, and (when the build has read replicas) a DB instance in A with its cross-region replica in B.

The test watches on its own while the drill runs: when A's server dies, when `dig` starts answering B's address,
when HTTP through that answer succeeds; afterwards it reads the promoted instance's drill table. The drill's report
must agree: its HTTP recovery inside the window the test saw, its RPO equal to acknowledged-minus-present as the
test computes it, every process of A gone and nothing of B or the global service touched.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
import uuid

from harness import (autopipe_bin, data_dir_processes, instance_processes, lease_block, log, read_text,
                     wait_until)
from test_route53 import DIG, Global, change_batch, read_key, rrset

sys.path.append("/usr/lib/python3/dist-packages")
import pymysql  # noqa: E402

SAMPLE_AMI = "ami-0a1b2c3d4e5f60718"
TTL = 2
INTERVAL, THRESHOLD = 10, 1
PASSWORD = "drill-" + uuid.uuid4().hex[:12]


def _clean_env():
    return {k: v for k, v in os.environ.items()
            if not k.startswith("AWS_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class RegionProc:
    """One `autopipe server` of the partition, driven with boto3 and the partition's key pair."""

    def __init__(self, root, partition, name):
        self.name = name
        self.lease = lease_block()
        self.block = self.lease.block
        self.data_dir = os.path.join(root, name)
        self.partition = partition
        self.out = open(os.path.join(root, name + ".stdout"), "ab")
        self.argv = [autopipe_bin(), "server", "--data-dir", self.data_dir, "--listen", "127.0.0.1:0", "--region",
                     name, "--address-block", self.block, "--partition", partition]
        self.start()

    def start(self):
        """Starts (or, after the drill killed it, restarts) the server on the same data dir and block."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.data_dir, "endpoint"))
        log("starting %s" % " ".join(self.argv))
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=_clean_env())
        self.endpoint = wait_until(lambda: read_text(os.path.join(self.data_dir, "endpoint")).strip(), 20, 0.1,
                                   self.name + " endpoint")

    def client(self, service):
        import boto3
        from botocore.config import Config
        ak, sk = read_key(os.path.join(self.partition, "credentials"))
        return boto3.session.Session(aws_access_key_id=ak, aws_secret_access_key=sk, region_name=self.name).client(
            service, endpoint_url=self.endpoint, config=Config(proxies={}, retries={"max_attempts": 2}))

    def close(self):
        subprocess.run([autopipe_bin(), "down", "--data-dir", self.data_dir], capture_output=True, timeout=120,
                       stdin=subprocess.DEVNULL)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.out.close()
        self.lease.release()


def supports_read_replicas(region):
    """True when this build's RDS has CreateDBInstanceReadReplica (the drill's DB half needs it)."""
    rds = region.client("rds")
    try:
        rds.create_db_instance_read_replica(DBInstanceIdentifier="probe-" + uuid.uuid4().hex[:6],
                                            SourceDBInstanceIdentifier="no-such-db-instance")
    except rds.exceptions.DBInstanceNotFoundFault:
        return True
    except Exception as e:  # noqa: BLE001 - an unknown operation, whatever the error class
        log("read replicas not supported here: %r" % e)
        return False
    return True


class Watcher(threading.Thread):
    """The test's own client: every 100 ms, is A's server alive; what does `dig` answer; does HTTP through that
    answer succeed. Times are time.monotonic()."""

    def __init__(self, g, name, server_pid, b_block):
        super().__init__(daemon=True)
        self.g, self.name, self.server_pid, self.b_block = g, name, server_pid, b_block
        self.dead_at = self.dns_b_at = self.http_b_at = None
        self.stop = threading.Event()

    def run(self):
        deadline = time.monotonic() + 300
        while not self.stop.is_set() and time.monotonic() < deadline:
            now = time.monotonic()
            if self.dead_at is None and not pid_alive(self.server_pid):
                self.dead_at = now
            if self.dead_at is not None:
                answer = [a[3] for a in self.g.dig(self.name)[2]]
                if answer and answer[0].startswith(self.b_block + ".") and self.dns_b_at is None:
                    self.dns_b_at = time.monotonic()
                if self.dns_b_at is not None and self.http_b_at is None:
                    with contextlib.suppress(Exception):
                        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                                "http://%s/" % answer[0], timeout=1) as r:
                            if r.status == 200:
                                self.http_b_at = time.monotonic()
                if self.http_b_at is not None:
                    return
            time.sleep(0.1)


def web_tier(region):
    """A load balancer with one sample-app instance InService; its address."""
    elb = region.client("elb")
    azs = [region.name + "a", region.name + "b"]
    lb = elb.create_load_balancer(LoadBalancerName="web", AvailabilityZones=azs, Listeners=[
        {"Protocol": "HTTP", "LoadBalancerPort": 80, "InstanceProtocol": "HTTP", "InstancePort": 80}])["DNSName"]
    # One instance for two AZ nodes: cross-zone, or the node of the AZ without it answers 503.
    elb.modify_load_balancer_attributes(LoadBalancerName="web", LoadBalancerAttributes={
        "CrossZoneLoadBalancing": {"Enabled": True}})
    asc = region.client("autoscaling")
    asc.create_launch_configuration(LaunchConfigurationName="lc", ImageId=SAMPLE_AMI, InstanceType="t3.micro")
    asc.create_auto_scaling_group(AutoScalingGroupName="asg", LaunchConfigurationName="lc", MinSize=1,
                                  MaxSize=1, DesiredCapacity=1, AvailabilityZones=azs, LoadBalancerNames=["web"])
    wait_until(lambda: any(s["State"] == "InService"
                           for s in elb.describe_instance_health(LoadBalancerName="web")["InstanceStates"]),
               60, 0.3, "an InService instance behind %s's load balancer" % region.name)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    wait_until(lambda: all(opener.open("http://%s/" % lb, timeout=2).status == 200 for _ in range(6)), 30, 0.3,
               "%s's load balancer answering from both nodes" % region.name)
    return lb


def failover_record(g, lb_a, lb_b):
    r53 = g.boto3()
    hc = r53.create_health_check(CallerReference=uuid.uuid4().hex, HealthCheckConfig={
        "IPAddress": lb_a, "Port": 80, "Type": "HTTP", "ResourcePath": "/", "RequestInterval": INTERVAL,
        "FailureThreshold": THRESHOLD})["HealthCheck"]["Id"]
    apex = "d%s.example.test." % uuid.uuid4().hex[:8]
    zone = r53.create_hosted_zone(Name=apex, CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
    name = "app." + apex
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=change_batch(
        ("CREATE", rrset(name, "A", [lb_a], ttl=TTL, SetIdentifier="a", Failover="PRIMARY", HealthCheckId=hc)),
        ("CREATE", rrset(name, "A", [lb_b], ttl=TTL, SetIdentifier="b", Failover="SECONDARY"))))
    wait_until(lambda: [a[3] for a in g.dig(name)[2]] == [lb_a], 15, 0.2, "the primary answered")
    return name


def database(a, b, db_id="drilldb", replica_id="drilldb-replica", create_source=True):
    """A DB instance in A (backups on) and its cross-region read replica in B; (replica id, its endpoint)."""
    rds_a, rds_b = a.client("rds"), b.client("rds")
    if create_source:
        rds_a.create_db_instance(DBInstanceIdentifier=db_id, DBInstanceClass="db.t3.micro", Engine="mariadb",
                                 AllocatedStorage=20, MasterUsername="admin", MasterUserPassword=PASSWORD,
                                 BackupRetentionPeriod=1)
    src = wait_until(lambda: (lambda d: d if d["DBInstanceStatus"] == "available" else None)(
        rds_a.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]), 120, 0.5, db_id)
    rds_b.create_db_instance_read_replica(DBInstanceIdentifier=replica_id,
                                          SourceDBInstanceIdentifier=src["DBInstanceArn"],
                                          SourceRegion=a.name)
    rep = wait_until(lambda: (lambda d: d if d["DBInstanceStatus"] == "available" else None)(
        rds_b.describe_db_instances(DBInstanceIdentifier=replica_id)["DBInstances"][0]), 180, 0.5,
        "the replica")
    return rep["Endpoint"]["Address"], rep["Endpoint"]["Port"]


class RegionOutageDrillTest(unittest.TestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="autopipe-e2e-drill-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.partition = os.path.join(self.root, "partition")
        self.a = RegionProc(self.root, self.partition, "us-west-2")
        self.addCleanup(self.a.close)
        self.b = RegionProc(self.root, self.partition, "us-east-1")
        self.addCleanup(self.b.close)
        self.g = Global(self.partition, self.root)
        self.addCleanup(self.g.stop)
        self.g.start()

    def run_drill(self, *extra):
        argv = [autopipe_bin(), "drill", "region-outage", "--partition", self.partition, "--region", self.a.name,
                "--warmup", "3", "--settle", "2", "--duration", "120", "--json"] + list(extra)
        log("running %s" % " ".join(argv))
        return subprocess.run(argv, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                              env=_clean_env())

    def test_refuses_without_confirmation_and_names_what_is_missing(self):
        # No failover record yet: the drill says so, and touches nothing.
        res = self.run_drill("--yes", "--skip-db")
        self.assertEqual(res.returncode, 2, res.stdout + res.stderr)
        self.assertIn("no Route 53 failover record set", res.stderr)
        self.assertTrue(pid_alive(self.a.proc.pid))
        # No DB instance: named too.
        res = self.run_drill("--yes")
        self.assertEqual(res.returncode, 2, res.stdout + res.stderr)
        self.assertIn("has no DB instance", res.stderr)
        # Not a terminal and no --yes: refused before anything is touched.
        lb_a, lb_b = web_tier(self.a), web_tier(self.b)
        failover_record(self.g, lb_a, lb_b)
        res = self.run_drill("--skip-db")
        self.assertEqual(res.returncode, 2, res.stdout + res.stderr)
        self.assertIn("confirm with --yes", res.stderr)
        self.assertTrue(pid_alive(self.a.proc.pid))
        self.assertTrue(instance_processes(self.a.block + "."))
        # A DB instance without backups and without a replica: both named, with the commands that fix them.
        rds = self.a.client("rds")
        rds.create_db_instance(DBInstanceIdentifier="nobackups", DBInstanceClass="db.t3.micro", Engine="mariadb",
                               AllocatedStorage=20, MasterUsername="admin", MasterUserPassword=PASSWORD,
                               BackupRetentionPeriod=0)
        wait_until(lambda: rds.describe_db_instances(DBInstanceIdentifier="nobackups")["DBInstances"][0][
            "DBInstanceStatus"] == "available", 120, 0.5, "nobackups available")
        res = self.run_drill("--yes")
        self.assertEqual(res.returncode, 2, res.stdout + res.stderr)
        self.assertIn("BackupRetentionPeriod 0", res.stderr)
        self.assertIn("has no read replica in region us-east-1", res.stderr)
        self.assertIn("create-db-instance-read-replica", res.stderr)
        self.assertNotIn(PASSWORD, res.stdout + res.stderr)
        self.assertTrue(pid_alive(self.a.proc.pid))

    def test_drill_end_to_end(self):
        with_db = supports_read_replicas(self.a)
        lb_a, lb_b = web_tier(self.a), web_tier(self.b)
        name = failover_record(self.g, lb_a, lb_b)
        replica = database(self.a, self.b) if with_db else None
        b_instances = {p for p, _ in instance_processes(self.b.block + ".")}
        self.assertTrue(b_instances)
        watcher = Watcher(self.g, name, self.a.proc.pid, self.b.block)
        watcher.start()
        started = time.monotonic()
        res = self.run_drill("--yes", *([] if with_db else ["--skip-db"]))
        watcher.stop.set()
        watcher.join(10)
        log("drill stderr:\n" + res.stderr[-3000:] + "\nstdout:\n" + res.stdout[-6000:])
        self.assertEqual(res.returncode, 0, res.stdout[-4000:] + res.stderr[-3000:])
        report = json.loads(res.stdout)
        log("drill report: http %.2fs db %s rpo %s" % (report["http_recovery_seconds"],
                                                      report["db_recovery_seconds"], report["rpo_transactions"]))
        # Every process of A is gone; B and the global service are untouched.
        self.assertEqual(data_dir_processes(self.a.data_dir), [])
        self.assertEqual(instance_processes(self.a.block + "."), [])
        self.assertGreater(report["old_region"]["processes_killed"], 2)
        self.assertEqual(report["old_region"]["processes_left"], 0)
        commands = [p["command"] for p in report["old_region"]["processes"]]
        self.assertTrue(any(" lb --config " + self.a.data_dir + "/" in c for c in commands), commands)
        self.assertTrue(any(" sample-app " in c for c in commands), commands)
        if with_db:
            self.assertTrue(any("mariadbd" in c and self.a.data_dir + "/" in c for c in commands), commands)
        self.assertFalse(any(self.b.data_dir + "/" in c for c in commands), commands)
        self.assertTrue(pid_alive(self.b.proc.pid))
        self.assertTrue(pid_alive(self.g.proc.pid))
        self.assertTrue(b_instances <= {p for p, _ in instance_processes(self.b.block + ".")})
        # HTTP recovery against what the test saw: not before DNS answered B (the test polls every 0.1 s and
        # dig takes its own time), and not later than that plus the TTL the drill's resolver honours.
        self.assertIsNotNone(watcher.dead_at)
        self.assertIsNotNone(watcher.dns_b_at)
        self.assertIsNotNone(watcher.http_b_at)
        seen_dns = watcher.dns_b_at - watcher.dead_at
        seen_http = watcher.http_b_at - watcher.dead_at
        log("test saw: dns %.2fs, http %.2fs after the server died" % (seen_dns, seen_http))
        got = report["http_recovery_seconds"]
        self.assertIsNotNone(got)
        self.assertGreaterEqual(got, seen_dns - 1.0)
        self.assertLessEqual(got, seen_http + TTL + 1.5)
        self.assertLessEqual(got, INTERVAL * THRESHOLD + TTL + 5)
        self.assertTrue(report["http_recovered_address"].startswith(self.b.block + "."), report)
        self.assertLess(report["stopped_at_seconds"], time.monotonic() - started)
        events = [e["event"] for e in report["timeline"]]
        self.assertTrue(any("freezing" in e for e in events), events)
        self.assertTrue(any("SIGKILL" in e for e in events), events)
        self.assertTrue(report["next_steps"])
        if not with_db:
            self.assertIsNone(report["rpo_transactions"])
            return
        # The DB half: promoted, writable, and the RPO is acknowledged-minus-present as the test counts it.
        d = self.b.client("rds").describe_db_instances(DBInstanceIdentifier="drilldb-replica")["DBInstances"][0]
        self.assertNotIn("ReadReplicaSourceDBInstanceIdentifier", d)
        with contextlib.closing(pymysql.connect(host=replica[0], port=replica[1], user="admin", password=PASSWORD,
                                                autocommit=True, connect_timeout=5)) as c, c.cursor() as cur:
            cur.execute("SELECT seq, target FROM autopipe_drill.writes WHERE run_id = %s", (report["run_id"],))
            rows = cur.fetchall()
            cur.execute("INSERT INTO autopipe_drill.writes VALUES ('test', 1, 'new', 0)")  # writable
        present = {r[0] for r in rows}
        acked = set(report["writes"]["acknowledged_old_seqs"])
        self.assertEqual(len(acked), report["writes"]["acknowledged_old_region"])
        self.assertGreater(len(acked), 10)
        self.assertEqual(report["rpo_transactions"], len(acked - present))
        new_rows = [r for r in rows if r[1] == "new"]
        self.assertGreaterEqual(len(new_rows), report["writes"]["acknowledged_new_region"])
        self.assertIsNotNone(report["db_recovery_seconds"])
        self.assertGreater(report["db_recovery_seconds"], 0)
        self.assertTrue(any("drill rejoin" in s for s in report["next_steps"]), report["next_steps"])

        # Rejoin: refused while A is down; with A started again, A's instance becomes a replica of the promoted
        # one (the old one kept as a final snapshot) and receives every row of the promoted instance.
        rejoin = [autopipe_bin(), "drill", "rejoin", "--partition", self.partition, "--region", self.a.name,
                  "--db-instance", "drilldb", "--source-db-instance", "drilldb-replica"]
        res = subprocess.run(rejoin + ["--yes"], capture_output=True, text=True, timeout=60, env=_clean_env())
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn("is not running", res.stderr)
        self.a.start()
        wait_until(lambda: self.a.client("rds").describe_db_instances(DBInstanceIdentifier="drilldb")[
            "DBInstances"][0]["DBInstanceStatus"] == "available", 120, 0.5, "A's old drilldb back")
        res = subprocess.run(rejoin, capture_output=True, text=True, timeout=60, env=_clean_env())
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn("confirm with --yes", res.stderr)
        res = subprocess.run(rejoin + ["--yes"], capture_output=True, text=True, timeout=600, env=_clean_env())
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        rds_a = self.a.client("rds")
        d = rds_a.describe_db_instances(DBInstanceIdentifier="drilldb")["DBInstances"][0]
        self.assertEqual(d["ReadReplicaSourceDBInstanceIdentifier"],
                         self.b.client("rds").describe_db_instances(DBInstanceIdentifier="drilldb-replica")[
                             "DBInstances"][0]["DBInstanceArn"])
        snaps = [x["DBSnapshotIdentifier"] for x in rds_a.describe_db_snapshots()["DBSnapshots"]]
        self.assertTrue(any(x.startswith("drilldb-before-rejoin-") for x in snaps), snaps)

        def rows_on_a():
            with contextlib.closing(pymysql.connect(host=d["Endpoint"]["Address"], port=d["Endpoint"]["Port"],
                                                    user="admin", password=PASSWORD, connect_timeout=5)) as c, \
                    c.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM autopipe_drill.writes")
                return cur.fetchone()[0]
        wait_until(lambda: rows_on_a() == len(rows) + 1, 30, 0.5, "the rejoined replica to have every row")


class UpStackDrillTest(unittest.TestCase):
    """The drill on `autopipe up --standby-region`'s stack, where the standby region's `up` and the global service
    are children of the primary's `up`: they must survive the primary's kill."""

    def test_drill_on_up_standby_stack(self):
        root = tempfile.mkdtemp(prefix="autopipe-e2e-drill-up-")
        self.addCleanup(shutil.rmtree, root, True)
        primary, standby = lease_block(), lease_block()
        data = os.path.join(root, "primary")
        out_path = os.path.join(root, "up.out")
        out = open(out_path, "wb")
        self.addCleanup(out.close)
        argv = [autopipe_bin(), "up", "--data-dir", data, "--listen", "127.0.0.1:0", "--address-block",
                primary.block, "--standby-region", "us-east-1", "--standby-address-block", standby.block]
        log("starting %s" % " ".join(argv))
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=_clean_env())
        self.addCleanup(standby.release)
        self.addCleanup(primary.release)
        self.addCleanup(self._stop, proc, [data, data + "-us-east-1"], data + "-global")
        wait_until(lambda: ("Press Ctrl-C" in read_text(out_path)) or
                   (proc.poll() is not None and self.fail("up exited: " + read_text(out_path))),
                   300, 1, "both regions up")
        partition = data + "-partition"
        g = Global(partition, root)
        g.data_dir = data + "-global"
        g.endpoint = read_text(os.path.join(g.data_dir, "endpoint")).strip()
        host, port = read_text(os.path.join(g.data_dir, "dns-address")).strip().rsplit(":", 1)
        g.dns_host, g.dns_port = host, int(port)
        global_pid = json.loads(read_text(os.path.join(partition, "global.json")))["Pid"]
        entries = {n: json.loads(read_text(os.path.join(partition, "regions", n + ".json")))
                   for n in ("us-west-2", "us-east-1")}
        self.assertEqual(entries["us-west-2"]["Pid"], proc.pid)
        lbs = {}
        for n, e in entries.items():
            r = RegionProc.__new__(RegionProc)
            r.name, r.partition, r.endpoint = n, partition, e["Endpoint"]
            lbs[n] = r.client("elb").describe_load_balancers(LoadBalancerNames=["auto-pipeline-lb"])[
                "LoadBalancerDescriptions"][0]["DNSName"]
        name = failover_record(g, lbs["us-west-2"], lbs["us-east-1"])
        b_instances = {p for p, _ in instance_processes(standby.block + ".")}
        a_region = RegionProc.__new__(RegionProc)
        a_region.name, a_region.partition, a_region.endpoint = "us-west-2", partition, entries["us-west-2"]["Endpoint"]
        # The seed's database: the drill makes its cross-region replica itself (--create-replica) and finds the
        # master password in the primary region's store.
        db_args = ["--create-replica"] if supports_read_replicas(a_region) else ["--skip-db"]
        res = subprocess.run([autopipe_bin(), "drill", "region-outage", "--partition", partition, "--region",
                              "us-west-2", "--warmup", "3", "--settle", "1", "--duration", "120", "--json", "--yes"]
                             + db_args,
                             capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL, env=_clean_env())
        log("drill stderr:\n" + res.stderr[-3000:])
        self.assertEqual(res.returncode, 0, res.stdout[-3000:] + res.stderr[-3000:])
        report = json.loads(res.stdout)
        self.assertTrue(report["http_recovered_address"].startswith(standby.block + "."), report)
        self.assertEqual(proc.wait(10), -signal.SIGKILL)  # the primary's `up` (its server) was killed
        self.assertEqual(data_dir_processes(data), [])
        self.assertEqual(instance_processes(primary.block + "."), [])
        # The standby region (a child of the primary's `up`) and the global service are untouched.
        self.assertTrue(pid_alive(entries["us-east-1"]["Pid"]))
        self.assertTrue(pid_alive(global_pid))
        self.assertTrue(b_instances)
        self.assertTrue(b_instances <= {p for p, _ in instance_processes(standby.block + ".")})
        self.assertEqual([a[3] for a in g.dig(name)[2]], [lbs["us-east-1"]])
        if db_args == ["--create-replica"]:
            self.assertEqual(report["new_region"]["db_instance"], "auto-pipeline-db-us-east-1")
            self.assertIsNotNone(report["db_recovery_seconds"])
            self.assertIsNotNone(report["rpo_transactions"])
            self.assertGreater(report["writes"]["acknowledged_new_region"], 0)

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
                subprocess.run([autopipe_bin(), "down", "--data-dir", d], capture_output=True, timeout=180,
                               stdin=subprocess.DEVNULL)
        with contextlib.suppress(OSError, ValueError):
            pid = int(read_text(os.path.join(global_dir, "server.pid")).split()[0])
            os.kill(pid, signal.SIGTERM)

if __name__ == "__main__":
    unittest.main()
