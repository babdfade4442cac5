"""The seed's Classic Load Balancer (§1.2) in front of the seed's Auto Scaling group (§1.1), driven with the
real aws CLI (v1 and v2) and boto3: requests through the load balancer's DNSName reach every instance in both
AZs; killing an instance under load fails at most the requests in flight on it; killing the server under load
fails none; draining lets in-flight requests finish.
"""

import contextlib
import glob
import http.client
import json
import os
import signal
import socket
import threading
import time
import unittest

import harness
from harness import Region, wait_until

LB_NAME = "auto-pipeline-lb"
ASG_NAME = "auto-pipeline-asg"
LC_NAME = "auto-pipeline-launch-config"

# The seed's commands, argument for argument (auto_pipeline_ha_strategy.ko.md §1.1 and §1.2).
SEED_CREATE_ASG = [
    "autoscaling", "create-auto-scaling-group",
    "--auto-scaling-group-name", "auto-pipeline-asg",
    "--min-size", "2",
    "--max-size", "10",
    "--desired-capacity", "5",
    "--launch-configuration-name", "auto-pipeline-launch-config",
    "--availability-zones", "us-west-2a", "us-west-2b",
]
SEED_CREATE_LB = [
    "elb", "create-load-balancer",
    "--load-balancer-name", "auto-pipeline-lb",
    "--listeners", "Protocol=HTTP,LoadBalancerPort=80,InstanceProtocol=HTTP,InstancePort=80",
    "--availability-zones", "us-west-2a", "us-west-2b",
]


def get(host, path="/", port=80, timeout=5, headers=None):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Load:
    """Client threads sending keep-alive GETs through the load balancer until stopped (bounded in time)."""

    def __init__(self, host, threads=4, max_seconds=60):
        self.host = host
        self.stop_at = time.monotonic() + max_seconds
        self.stopping = False
        self.ok = 0
        self.failures = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        for t in self.threads:
            t.join(15)

    def _run(self):
        conn = None
        while not self.stopping and time.monotonic() < self.stop_at:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, 80, timeout=10)
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read()
                with self.lock:
                    if resp.status == 200:
                        self.ok += 1
                    else:
                        self.failures.append("HTTP %d %r" % (resp.status, body[:100]))
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failures.append(repr(e))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def wait_for(self, count, timeout=10):
        start = self.ok
        wait_until(lambda: self.ok >= start + count, timeout=timeout, interval=0.1,
                   what="%d more successful requests" % count)


class SeedLoadBalancerTest(unittest.TestCase):
    def node_active_requests(self, lb_name):
        """Requests in flight to back ends over all nodes of the load balancer, from the nodes' status.json."""
        total = 0
        for path in glob.glob(os.path.join(self.region.data_dir, "load-balancers", lb_name, "*", "status.json")):
            with contextlib.suppress(OSError, ValueError):
                with open(path) as f:
                    total += sum(b["active_requests"] for b in json.load(f)["backends"])
        return total

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        cls.elb = cls.region.boto3("elb")
        cls.region.create_lc(LC_NAME)
        cls.region.cli_v1(*SEED_CREATE_ASG)
        out = cls.region.cli_v1(*SEED_CREATE_LB)
        cls.dns = out["DNSName"]
        cls.region.cli_v2("autoscaling", "attach-load-balancers", "--auto-scaling-group-name", ASG_NAME,
                          "--load-balancer-names", LB_NAME)
        cls.instances = cls.region.wait_group(ASG_NAME, 5)
        cls.wait_all_in_service()

    @classmethod
    def wait_all_in_service(cls, count=5):
        last = {}

        def all_in_service():
            states = cls.elb.describe_instance_health(LoadBalancerName=LB_NAME)["InstanceStates"]
            last["states"] = [(s["InstanceId"], s["State"], s["Description"]) for s in states]
            ok = [s for s in states if s["State"] == "InService"]
            return states if len(ok) == count and len(states) == count else None
        try:
            return wait_until(all_in_service, timeout=30, what="%d instances InService in the load balancer" % count)
        except AssertionError as e:
            raise AssertionError("%s\nlast states: %r\n%s" % (e, last.get("states"), cls.region.diagnostics(30)))

    def served_by(self, n=60):
        seen = {}
        for _ in range(n):
            status, body = get(self.dns)
            self.assertEqual(status, 200, body)
            iid = json.loads(body)["instance_id"]
            seen[iid] = seen.get(iid, 0) + 1
        return seen

    def test_dns_name_resolves_locally_and_describe_matches(self):
        addr = socket.gethostbyname(self.dns)
        self.assertTrue(addr.startswith("127."), addr)
        lb = self.region.cli_v2("elb", "describe-load-balancers", "--load-balancer-names", LB_NAME)
        desc = lb["LoadBalancerDescriptions"][0]
        self.assertEqual(desc["DNSName"], self.dns)
        self.assertEqual(sorted(desc["AvailabilityZones"]), ["us-west-2a", "us-west-2b"])
        self.assertEqual(desc["ListenerDescriptions"][0]["Listener"],
                         {"Protocol": "HTTP", "LoadBalancerPort": 80, "InstanceProtocol": "HTTP", "InstancePort": 80})
        self.assertEqual(sorted(i["InstanceId"] for i in desc["Instances"]),
                         sorted(i["InstanceId"] for i in self.region.group_instances(ASG_NAME)))
        groups = self.region.cli_v1("autoscaling", "describe-load-balancers", "--auto-scaling-group-name", ASG_NAME)
        self.assertEqual([g["LoadBalancerName"] for g in groups["LoadBalancers"]], [LB_NAME])

    def test_requests_reach_every_instance_in_both_azs(self):
        members = {i["InstanceId"]: i["AvailabilityZone"] for i in self.region.group_instances(ASG_NAME)}
        seen = wait_until(lambda: (lambda s: s if set(s) == set(members) else None)(self.served_by(60)),
                          timeout=20, what="every instance serving through the load balancer")
        self.assertEqual({members[i] for i in seen}, {"us-west-2a", "us-west-2b"})

    def test_forwarded_headers_and_malformed_request(self):
        status, body = get(self.dns, "/headers", headers={"X-Forwarded-For": "198.51.100.9"})
        self.assertEqual(status, 200)
        h = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
        self.assertTrue(h["x-forwarded-for"].startswith("198.51.100.9, 127."), h)
        self.assertEqual(h["x-forwarded-proto"], "http")
        self.assertEqual(h["x-forwarded-port"], "80")
        s = socket.create_connection((self.dns, 80), timeout=5)
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
            reply = s.recv(4096)
        finally:
            s.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 400 "), reply[:100])
        self.assertEqual(get(self.dns)[0], 200)

    def test_kill9_of_an_instance_under_load_fails_at_most_its_in_flight_requests(self):
        before = {i["InstanceId"] for i in self.region.group_instances(ASG_NAME)}
        victim = sorted(before)[0]
        init_pid = harness.instance_init_pid(victim, self.region.block_prefix)
        with Load(self.dns, threads=4) as load:
            load.wait_for(200)
            harness.log("kill -9 instance %s (process group %d) under load" % (victim, init_pid))
            os.killpg(init_pid, signal.SIGKILL)
            load.wait_for(500, timeout=20)
        self.assertLessEqual(len(load.failures), 4, load.failures)  # 4 clients: at most 4 requests in flight
        # The group replaces it, registers the replacement, and the replacement gets traffic.
        def replaced():
            now = {i["InstanceId"] for i in self.region.group_instances(ASG_NAME)
                   if i["LifecycleState"] == "InService" and i["HealthStatus"] == "Healthy"}
            return now if victim not in now and len(now) == 5 else None
        now = wait_until(replaced, timeout=harness.REPLACE_TIMEOUT, what="replacement of %s" % victim)
        new = (now - before).pop()
        self.wait_all_in_service()
        wait_until(lambda: new in self.served_by(40), timeout=20, what="the replacement serving through the LB")

    def test_kill9_of_the_server_under_load_fails_no_request(self):
        nodes_before = sorted(p for p, _ in harness.lb_node_processes(self.region.data_dir))
        self.assertEqual(len(nodes_before), 2, "one node per AZ")
        with Load(self.dns, threads=4) as load:
            load.wait_for(200)
            self.region.kill9()
            load.wait_for(300)
            self.region.restart()
            load.wait_for(300)
        self.assertEqual(load.failures, [])
        # The restarted server adopted the running nodes instead of replacing them.
        self.assertEqual(sorted(p for p, _ in harness.lb_node_processes(self.region.data_dir)), nodes_before)
        self.wait_all_in_service()

    def test_deregistration_with_draining_lets_in_flight_requests_finish(self):
        name = "drain-lb"
        out = self.elb.create_load_balancer(
            LoadBalancerName=name, AvailabilityZones=["us-west-2a", "us-west-2b"],
            Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstanceProtocol": "HTTP", "InstancePort": 80}])
        self.addCleanup(self.elb.delete_load_balancer, LoadBalancerName=name)
        dns = out["DNSName"]
        self.elb.modify_load_balancer_attributes(
            LoadBalancerName=name,
            LoadBalancerAttributes={"ConnectionDraining": {"Enabled": True, "Timeout": 30},
                                    "CrossZoneLoadBalancing": {"Enabled": True}})
        iid = sorted(i["InstanceId"] for i in self.region.group_instances(ASG_NAME))[0]
        self.elb.register_instances_with_load_balancer(LoadBalancerName=name, Instances=[{"InstanceId": iid}])
        wait_until(lambda: self.elb.describe_instance_health(LoadBalancerName=name)["InstanceStates"][0]["State"]
                   == "InService", timeout=20, what="%s InService in %s" % (iid, name))
        wait_until(lambda: get(dns)[0] == 200, timeout=10, what="%s serving" % name)
        result = {}

        def slow():
            status, body = get(dns, "/sleep?ms=5000", timeout=20)
            result["status"], result["body"] = status, body
        t = threading.Thread(target=slow)
        t.start()
        # Deregister only once the slow request is in flight on the instance: its node's status (written every
        # second) counts it.
        wait_until(lambda: self.node_active_requests(name) >= 1, timeout=4, interval=0.05,
                   what="the slow request in flight through %s" % name)
        self.elb.deregister_instances_from_load_balancer(LoadBalancerName=name, Instances=[{"InstanceId": iid}])
        state = self.elb.describe_instance_health(LoadBalancerName=name, Instances=[{"InstanceId": iid}])
        st = state["InstanceStates"][0]
        self.assertEqual((st["State"], st["Description"]), ("InService", "Instance deregistration currently in progress."))
        # No new requests go to a draining instance (and there is no other): 503.
        wait_until(lambda: get(dns)[0] == 503, timeout=10, what="new requests refused while draining")
        t.join(20)
        self.assertEqual(result.get("status"), 200, result)
        self.assertEqual(json.loads(result["body"])["instance_id"], iid)

        def deregistered():
            st = self.elb.describe_instance_health(LoadBalancerName=name, Instances=[{"InstanceId": iid}])
            return st["InstanceStates"][0]["State"] == "OutOfService"
        wait_until(deregistered, timeout=10, what="draining finished")

    def test_elb_health_check_type_replaces_an_instance_the_load_balancer_finds_unhealthy(self):
        lb, group = "hc-lb", "hc-asg"
        self.elb.create_load_balancer(
            LoadBalancerName=lb, AvailabilityZones=["us-west-2a", "us-west-2b"],
            Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstanceProtocol": "HTTP", "InstancePort": 80}])
        self.addCleanup(self.elb.delete_load_balancer, LoadBalancerName=lb)
        self.elb.configure_health_check(LoadBalancerName=lb, HealthCheck={
            "Target": "HTTP:80/health", "Interval": 5, "Timeout": 2, "UnhealthyThreshold": 2, "HealthyThreshold": 2})
        asc = self.region.boto3("autoscaling")
        asc.create_auto_scaling_group(
            AutoScalingGroupName=group, LaunchConfigurationName=LC_NAME, MinSize=2, MaxSize=2, DesiredCapacity=2,
            AvailabilityZones=["us-west-2a", "us-west-2b"], LoadBalancerNames=[lb], HealthCheckType="ELB",
            HealthCheckGracePeriod=0)
        self.addCleanup(asc.delete_auto_scaling_group, AutoScalingGroupName=group, ForceDelete=True)
        members = self.region.wait_group(group, 2)

        def in_service(count):
            states = self.elb.describe_instance_health(LoadBalancerName=lb)["InstanceStates"]
            return [s for s in states if s["State"] == "InService"] if len(states) == count else None
        wait_until(lambda: len(in_service(2) or []) == 2, timeout=30, what="both members InService in %s" % lb)

        victim = sorted(members)[0]
        conn = http.client.HTTPConnection(members[victim]["ip"], 80, timeout=5)
        try:
            conn.request("POST", "/health/fail")
            self.assertEqual(conn.getresponse().status, 200)  # its /health answers 500 from now on
        finally:
            conn.close()

        def reported_unhealthy():
            st = self.elb.describe_instance_health(LoadBalancerName=lb, Instances=[{"InstanceId": victim}])
            s = st["InstanceStates"][0]
            return s if (s["State"], s["ReasonCode"]) == ("OutOfService", "Instance") else None
        # Either we catch the load balancer's verdict before the group acts on it, or the group already has.
        try:
            s = wait_until(reported_unhealthy, timeout=20, interval=0.2, what="%s OutOfService" % victim)
            self.assertEqual(s["Description"], "Instance has failed at least the UnhealthyThreshold number of "
                                               "health checks consecutively.")
        except AssertionError:
            pass
        now = wait_until(lambda: (lambda g: g if victim not in g and len(g) == 2 else None)(
            {i["InstanceId"] for i in self.region.group_instances(group)
             if i["LifecycleState"] == "InService" and i["HealthStatus"] == "Healthy"}),
            timeout=harness.REPLACE_TIMEOUT, what="the group replacing %s" % victim)
        causes = [a["Cause"] for a in self.region.activities(group) if victim in a["Description"]
                  and a["Description"].startswith("Terminating")]
        self.assertTrue(any("ELB system health check failure" in c for c in causes), causes)
        self.assertEqual(self.region.ec2_instance(victim)["State"]["Name"] in ("shutting-down", "terminated"), True)
        wait_until(lambda: len(in_service(2) or []) == 2, timeout=30, what="the replacement InService in %s" % lb)
        self.assertEqual({s["InstanceId"] for s in in_service(2)}, now)


if __name__ == "__main__":
    unittest.main()
