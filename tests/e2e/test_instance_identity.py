"""An instance must not reach the control plane (issue 8, item 3). With the server running as root, each instance
runs under a uid of its own: its UserData tries what a hostile boot script would (read the region's credentials
and state.db, signal the server, co-bind the load balancer's address with SO_REUSEPORT) and records what
happened in a file in its own folder; every attempt must be refused by the kernel while the instance's own web
service still serves on its PrivateIp:80. The instance is then re-adopted across a server kill -9 and stopped
by `autopipe down` (the harness's cleanup checks nothing is left).
"""

import json
import os
import socket
import unittest

import harness
from harness import Region, wait_until

GROUP = "probe-asg"
LB = "probe-lb"

# Run by /usr/bin/python3 as the instance. {data_dir}, {server_pid}, {vip} are filled in by the test; the results
# go to probe.json in the instance's working directory (its own folder) and to its console log.
PROBE = r'''#!/usr/bin/python3
import errno, json, os, socket

def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def read(path):
    with open(path, "rb") as f:
        f.read(1)

def co_bind():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        s.bind(("{vip}", 80))
        s.listen(16)
    finally:
        s.close()

results = {{
    "uid": os.getuid(),
    "gid": os.getgid(),
    "groups": os.getgroups(),
    "credentials": attempt(lambda: read("{data_dir}/credentials")),
    "state_db": attempt(lambda: read("{data_dir}/state.db")),
    "relative_credentials": attempt(lambda: read("../../credentials")),
    "list_data_dir": attempt(lambda: os.listdir("{data_dir}")),
    "server_log": attempt(lambda: read("{data_dir}/server.log")),
    "server_environ": attempt(lambda: read("/proc/{server_pid}/environ")),
    "kill_server": attempt(lambda: os.kill({server_pid}, 0)),
    "reuseport_vip": attempt(co_bind),
    "write_own_folder": attempt(lambda: open("mine.txt", "w").write("x")),
}}
with open("probe.json.tmp", "w") as f:
    json.dump(results, f)
os.rename("probe.json.tmp", "probe.json")
print("probe:", json.dumps(results), flush=True)
'''


def proc_ids(pid, field):
    """The real uid (field "Uid") or gid ("Gid") of a process, from /proc/<pid>/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def ip_uid(ip):
    a, b, c, d = (int(x) for x in ip.split("."))
    return 2_000_000_000 + (b << 16) + (c << 8) + d


@unittest.skipUnless(os.geteuid() == 0, "instances get identities of their own only when the server runs as root")
@unittest.skipUnless(os.access("/usr/bin/python3", os.X_OK), "the probe runs /usr/bin/python3")
class InstanceIdentityTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)

    def test_user_data_cannot_reach_the_control_plane(self):
        r = self.region
        elb = r.boto3("elb")
        vip = elb.create_load_balancer(
            LoadBalancerName=LB, AvailabilityZones=["us-west-2a"],
            Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstanceProtocol": "HTTP",
                        "InstancePort": 80}])["DNSName"]

        # The node must hold VIP:80 before the probe runs, or co-binding would prove nothing.
        def listening():
            with socket.create_connection((vip, 80), timeout=1):
                return True
        wait_until(listening, harness.CONVERGE_TIMEOUT, 0.2, "load balancer node on %s:80" % vip)

        script = PROBE.format(data_dir=r.data_dir, server_pid=r.server_pid(), vip=vip)
        path = os.path.join(r.root, "probe.py")
        with open(path, "w") as f:
            f.write(script)
        r.cli_v1("autoscaling", "create-launch-configuration", "--launch-configuration-name", GROUP + "-lc",
                 "--image-id", harness.SAMPLE_AMI, "--instance-type", "t3.micro", "--user-data", "file://" + path)
        r.create_group(GROUP, GROUP + "-lc", 1, ["us-west-2a"])
        r.boto3("autoscaling").attach_load_balancers(AutoScalingGroupName=GROUP, LoadBalancerNames=[LB])

        # Its own service answers on PrivateIp:80 (a port below 1024, bound under its own uid).
        insts = r.wait_group(GROUP, 1, serving=True)
        iid, info = next(iter(insts.items()))
        folder = os.path.join(r.data_dir, "instances", iid)
        out = wait_until(lambda: harness.read_text(os.path.join(folder, "probe.json")), 20, 0.2,
                         "the probe's results in %s; console: %s"
                         % (folder, harness.read_text(os.path.join(folder, "console.log"))))
        got = json.loads(out)

        want_uid = ip_uid(info["ip"])
        self.assertEqual(got["uid"], want_uid)
        self.assertEqual(got["gid"], want_uid)
        self.assertEqual(got["groups"], [])
        self.assertEqual(got["credentials"], "EACCES", got)
        self.assertEqual(got["state_db"], "EACCES", got)
        self.assertEqual(got["relative_credentials"], "EACCES", got)
        self.assertEqual(got["list_data_dir"], "EACCES", got)
        self.assertEqual(got["server_log"], "EACCES", got)
        self.assertEqual(got["server_environ"], "EACCES", got)
        self.assertEqual(got["kill_server"], "EPERM", got)
        self.assertEqual(got["reuseport_vip"], "EADDRINUSE", got)
        self.assertEqual(got["write_own_folder"], "ok", got)
        self.assertIn("probe: ", harness.read_text(os.path.join(folder, "console.log")))

        # The folder is the instance's; the data dir around it stays the server's, 0700.
        st = os.stat(folder)
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (want_uid, 0o700))
        st = os.stat(r.data_dir)
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (os.geteuid(), 0o700))

        # Every process of the instance runs under its uid; the load balancer's node under the server's.
        init = harness.instance_init_pid(iid, r.block_prefix)
        for pid, _ in harness.instance_processes(r.block_prefix, iid):
            self.assertEqual(proc_ids(pid, "Uid"), want_uid, harness.proc_cmdline(pid))
        nodes = harness.lb_node_processes(r.data_dir)
        self.assertTrue(nodes)
        for pid, _ in nodes:
            self.assertEqual(proc_ids(pid, "Uid"), os.geteuid())
        # The load balancer still reaches the instance, and only the instance answers through it.
        def through_lb():
            status, body = harness.http_get(vip, timeout=5)
            return json.loads(body)["instance_id"] if status == 200 else None
        self.assertEqual(wait_until(through_lb, harness.CONVERGE_TIMEOUT, 0.2, "the instance behind %s" % vip), iid)

        # A restarted server re-adopts the instance under its uid (same init process), and `down` (the
        # harness's cleanup) stops it.
        r.kill9()
        r.restart()
        again = r.wait_group(GROUP, 1, serving=True)
        self.assertEqual(list(again), [iid])
        self.assertEqual(harness.instance_init_pid(iid, r.block_prefix), init)
        self.assertEqual(proc_ids(init, "Uid"), want_uid)
        res = r.down()
        self.assertEqual(res.returncode, 0, res.stderr)
        wait_until(lambda: not harness.instance_processes(r.block_prefix, iid), 10, 0.2,
                   "the instance's processes to be gone after autopipe down")


if __name__ == "__main__":
    unittest.main()
