"""The data plane outlives the control plane: kill -9 of the server leaves instances running, a restart on
the same data dir re-adopts them (same ids, same processes) and replaces those that died meanwhile.
`autopipe down` stops everything, also when the server is already dead.
"""

import os
import signal
import time
import unittest

import harness
from harness import Region, wait_until, hold_for, serves, pid_alive

ASG = "auto-pipeline-asg"
LC = "auto-pipeline-launch-config"


class ServerRestartTest(unittest.TestCase):

    def seed_group(self, region):
        region.cli_v1("autoscaling", "create-launch-configuration", "--launch-configuration-name", LC,
                      "--image-id", harness.SAMPLE_AMI, "--instance-type", "t3.micro")
        region.cli_v1("autoscaling", "create-auto-scaling-group", "--auto-scaling-group-name", ASG,
                      "--min-size", "2", "--max-size", "10", "--desired-capacity", "5",
                      "--launch-configuration-name", LC, "--availability-zones", "us-west-2a", "us-west-2b")
        insts = region.wait_group(ASG, 5)
        return {iid: (v["ip"], v["doc"]["pid"]) for iid, v in insts.items()}

    def assert_serving_same(self, before):
        for iid, (ip, pid) in before.items():
            doc = serves(ip)
            self.assertIsNotNone(doc, "%s (%s) stopped serving" % (iid, ip))
            self.assertEqual(doc["instance_id"], iid)
            self.assertEqual(doc["pid"], pid, "%s was restarted" % iid)

    def test_kill9_server_keeps_instances_and_restart_adopts_them(self):
        region = Region.for_test(self)
        before = self.seed_group(region)
        inits = {iid: harness.instance_init_pid(iid, region.block_prefix) for iid in before}

        region.kill9()
        self.assertFalse(pid_alive(region.server_pid()))
        # The data plane keeps serving without the server.
        hold_for(lambda: all((serves(ip) or {}).get("pid") == pid for ip, pid in before.values()), 3, 0.5,
                 "all 5 instances keep serving with the server dead")
        for init in inits.values():
            self.assertTrue(pid_alive(init))

        region.restart()
        g = region.asg(ASG)
        self.assertEqual({i["InstanceId"] for i in g["Instances"]}, set(before))
        self.assertEqual(g["DesiredCapacity"], 5)
        now = region.wait_group(ASG, 5)
        self.assertEqual(set(now), set(before))
        self.assert_serving_same(before)
        # And it stays that way (no delayed replacement of adopted instances).
        hold_for(lambda: {i["InstanceId"] for i in region.group_instances(ASG)} == set(before), 5, 0.5,
                 "same 5 instances after restart")
        self.assert_serving_same(before)
        for iid, init in inits.items():
            self.assertEqual(harness.instance_init_pid(iid, region.block_prefix), init)
        ec2 = {i["InstanceId"]: i for i in region.ec2_instances(filters=[
            {"Name": "instance-id", "Values": list(before)}])}
        for iid, (ip, _) in before.items():
            self.assertEqual(ec2[iid]["State"]["Name"], "running")
            self.assertEqual(ec2[iid]["PrivateIpAddress"], ip)

        # No new launches were recorded for the adoption.
        launches = [a for a in region.activities(ASG) if a["Description"].startswith("Launching")]
        self.assertEqual(len(launches), 5, launches)

    def test_instance_dies_while_server_down_is_replaced(self):
        region = Region.for_test(self)
        before = self.seed_group(region)
        region.kill9()

        victim = sorted(before)[0]
        init = harness.instance_init_pid(victim, region.block_prefix)
        harness.log("kill -9 process group %d of %s while the server is down" % (init, victim))
        os.killpg(init, signal.SIGKILL)
        wait_until(lambda: not pid_alive(init) and not pid_alive(before[victim][1]), 10, 0.2,
                   "instance %s processes gone" % victim)

        region.restart()

        def replaced():
            ids = {i["InstanceId"] for i in region.group_instances(ASG)}
            return victim not in ids
        wait_until(replaced, harness.REPLACE_TIMEOUT, 0.5, "%s replaced after restart" % victim)
        now = region.wait_group(ASG, 5, harness.REPLACE_TIMEOUT)
        kept = set(before) - {victim}
        self.assertTrue(kept <= set(now), "the 4 survivors must be kept: %r vs %r" % (kept, set(now)))
        new = set(now) - kept
        self.assertEqual(len(new), 1)
        self.assert_serving_same({iid: before[iid] for iid in kept})
        new_id = new.pop()
        self.assertEqual(serves(now[new_id]["ip"])["instance_id"], new_id)
        inst = region.ec2_instance(victim)
        if inst is not None:
            self.assertEqual(inst["State"]["Name"], "terminated")
        terms = [a for a in region.activities(ASG) if a["Description"].startswith("Terminating")
                 and victim in a["Description"]]
        self.assertEqual(len(terms), 1, terms)

    def test_down_stops_everything_even_after_server_kill(self):
        region = Region.for_test(self)
        before = self.seed_group(region)
        pids = [pid for _, pid in before.values()]
        pids += [harness.instance_init_pid(iid, region.block_prefix) for iid in before]
        region.kill9()
        self.assertTrue(all(pid_alive(p) for p in pids))
        t0 = time.monotonic()
        res = region.down()
        self.assertEqual(res.returncode, 0, res.stderr)
        # down returns when all are gone.
        alive = [p for p in pids if pid_alive(p)]
        self.assertEqual(alive, [], "processes alive after autopipe down returned")
        self.assertEqual(harness.instance_processes(region.block_prefix), [])
        self.assertLess(time.monotonic() - t0, 60)

    def test_down_stops_running_server(self):
        region = Region.for_test(self)
        region.create_lc("lc1")
        region.create_group("g1", "lc1", 2)
        insts = region.wait_group("g1", 2)
        pids = [v["doc"]["pid"] for v in insts.values()]
        res = region.down()
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIsNotNone(region.proc.poll(), "server still running after autopipe down")
        self.assertEqual([p for p in pids if pid_alive(p)], [])
        self.assertEqual(harness.instance_processes(region.block_prefix), [])
        # State survives a clean shutdown too: restart brings the group back to 2 serving instances.
        region.restart()
        g = region.asg("g1")
        self.assertIsNotNone(g)
        self.assertEqual(g["DesiredCapacity"], 2)
        region.wait_group("g1", 2, harness.REPLACE_TIMEOUT)


if __name__ == "__main__":
    unittest.main()
