"""Health checks, replacement, desired capacity, termination policy and process suspension.

One region for the whole module; every test uses its own group (and launch configuration) so tests do not
see each other's instances.
"""

import os
import signal
import time
import unittest

import harness
from harness import Region, SAMPLE_AMI, wait_until, hold_for, serves, pid_alive

AZS = ["us-west-2a", "us-west-2b"]


class ReplacementTest(unittest.TestCase):
    region = None

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        cls.asc = cls.region.boto3("autoscaling")

    # -- helpers ---------------------------------------------------------------------------------

    def make_group(self, name, size, min_size=None, max_size=None, lc=None):
        if lc is None:
            lc = name + "-lc"
            self.region.create_lc(lc)
        self.region.create_group(name, lc, size, AZS, min_size=min_size, max_size=max_size)
        self.addCleanup(self._force_delete, name)
        return self.region.wait_group(name, size)

    def _force_delete(self, name):
        try:
            self.asc.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
        except Exception as e:  # noqa: BLE001 - best effort; region cleanup follows
            harness.log("force delete %s: %r" % (name, e))

    def wait_replaced(self, name, old_id, size, timeout=harness.REPLACE_TIMEOUT):
        """Waits until `old_id` is gone from the group and the group is back to `size` serving instances."""

        def done():
            insts = self.region.group_instances(name)
            if any(i["InstanceId"] == old_id for i in insts):
                return None
            return True

        wait_until(done, timeout, 0.5, "%s to leave group %s" % (old_id, name))
        return self.region.wait_group(name, size, timeout)

    def assert_instance_gone(self, iid, pids=(), timeout=harness.CONVERGE_TIMEOUT):
        """The EC2 instance is terminated (or no longer listed) and its processes are gone."""

        def gone():
            inst = self.region.ec2_instance(iid)
            if inst is not None and inst["State"]["Name"] != "terminated":
                return None
            if any(pid_alive(p) for p in pids):
                return None
            if harness.instance_processes(self.region.block_prefix, iid):
                return None
            return True

        wait_until(gone, timeout, 0.5, "instance %s terminated with its processes" % iid)

    def activity_for(self, name, iid, prefix):
        return [a for a in self.region.activities(name) if a["Description"].startswith(prefix)
                and iid in a["Description"]]

    def check_health_replacement(self, name, old_id, old_pids, before_ids, size):
        now = self.wait_replaced(name, old_id, size)
        new_ids = set(now) - set(before_ids)
        self.assertEqual(len(new_ids), 1, "expected exactly one new instance, got %r" % new_ids)
        new_id = new_ids.pop()
        self.assertNotEqual(new_id, old_id)
        self.assertEqual(set(now) - {new_id}, set(before_ids) - {old_id}, "other instances must be kept")
        doc = serves(now[new_id]["ip"])
        self.assertEqual(doc["instance_id"], new_id)
        self.assertEqual(doc["availability_zone"], now[new_id]["az"])
        self.assert_instance_gone(old_id, old_pids)

        # Activities: a terminate for the old one caused by the health check, and a successful launch.
        terms = wait_until(lambda: [a for a in self.activity_for(name, old_id, "Terminating EC2 instance")
                                    if a["StatusCode"] == "Successful"],
                           harness.CONVERGE_TIMEOUT, 0.5, "successful terminate activity for %s" % old_id)
        self.assertEqual(len(terms), 1, terms)
        self.assertIn("health check", terms[0]["Cause"].lower(), terms[0])
        launches = wait_until(lambda: [a for a in self.activity_for(name, new_id, "Launching a new EC2 instance")
                                       if a["StatusCode"] == "Successful"],
                              harness.CONVERGE_TIMEOUT, 0.5, "successful launch activity for %s" % new_id)
        self.assertEqual(len(launches), 1, launches)
        return new_id, now

    # -- tests -----------------------------------------------------------------------------------

    def test_kill_sample_service_replaced(self):
        name = "repl-kill-service"
        insts = self.make_group(name, 5, min_size=2, max_size=10)
        self.assertEqual(sorted(harness.az_counts(insts.values()).values()), [2, 3])
        victim = sorted(insts)[0]
        pid = insts[victim]["doc"]["pid"]
        self.assertTrue(pid_alive(pid))
        init = harness.instance_init_pid(victim, self.region.block_prefix)
        harness.log("kill -9 sample service pid %d of %s" % (pid, victim))
        os.kill(pid, signal.SIGKILL)

        # The group notices: the instance is marked Unhealthy (or is already being terminated).
        def noticed():
            for i in self.region.group_instances(name):
                if i["InstanceId"] == victim:
                    return i["HealthStatus"] == "Unhealthy" or i["LifecycleState"].startswith("Terminat")
            return True  # already gone from the group
        wait_until(noticed, harness.REPLACE_TIMEOUT, 0.3, "%s marked unhealthy" % victim)

        new_id, now = self.check_health_replacement(name, victim, [pid, init], insts.keys(), 5)
        self.assertEqual(sorted(harness.az_counts(now.values()).values()), [2, 3])
        self.assertEqual(self.region.asg(name)["DesiredCapacity"], 5)

    def test_kill_instance_init_replaced(self):
        name = "repl-kill-init"
        insts = self.make_group(name, 2)
        victim = sorted(insts)[0]
        init = harness.instance_init_pid(victim, self.region.block_prefix)
        st = harness.proc_stat(init)
        self.assertEqual(st[2], init, "the instance init should lead its own process group")
        pid = insts[victim]["doc"]["pid"]
        self.assertNotEqual(pid, init)
        harness.log("kill -9 init pid %d of %s" % (init, victim))
        os.kill(init, signal.SIGKILL)
        self.check_health_replacement(name, victim, [init, pid], insts.keys(), 2)

    def test_set_desired_capacity_up_and_down(self):
        name = "repl-desired"
        insts = self.make_group(name, 3, min_size=1, max_size=6)
        counts = harness.az_counts(insts.values())
        self.assertEqual(sorted(counts.values()), [1, 2])
        big_az = max(counts, key=counts.get)
        pids = {iid: v["doc"]["pid"] for iid, v in insts.items()}

        # 3 -> 2: the instance must come from the AZ that has two.
        self.region.cli_v1("autoscaling", "set-desired-capacity", "--auto-scaling-group-name", name,
                           "--desired-capacity", "2")
        self.assertEqual(self.region.asg(name)["DesiredCapacity"], 2)
        now = self.region.wait_group(name, 2)
        self.assertTrue(set(now) <= set(insts), "scale-in must not launch: %r" % now)
        gone = (set(insts) - set(now)).pop()
        self.assertEqual(insts[gone]["az"], big_az, "termination must keep AZs balanced")
        self.assertEqual(sorted(harness.az_counts(now.values()).values()), [1, 1])
        self.assert_instance_gone(gone, [pids[gone]])
        terms = wait_until(lambda: self.activity_for(name, gone, "Terminating EC2 instance"),
                           harness.CONVERGE_TIMEOUT, 0.5, "terminate activity for %s" % gone)
        self.assertNotIn("health check", terms[0]["Cause"].lower())
        for iid in now:  # survivors untouched
            self.assertEqual(serves(now[iid]["ip"])["pid"], pids[iid])

        # 2 -> 5: launches go to the AZ with the fewest, ending 3/2.
        self.region.cli_v2("autoscaling", "set-desired-capacity", "--auto-scaling-group-name", name,
                           "--desired-capacity", "5")
        now5 = self.region.wait_group(name, 5)
        self.assertTrue(set(now) <= set(now5))
        self.assertEqual(sorted(harness.az_counts(now5.values()).values()), [2, 3])

        # 5 -> 1.
        self.asc.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=1)
        now1 = self.region.wait_group(name, 1)
        self.assertTrue(set(now1) <= set(now5))
        for iid in set(now5) - set(now1):
            self.assert_instance_gone(iid)

    def test_update_min_max_moves_desired(self):
        name = "repl-update-bounds"
        insts = self.make_group(name, 2, min_size=1, max_size=4)
        # Raising MinSize above the current size with no DesiredCapacity lifts Desired to the new Min.
        self.region.cli_v1("autoscaling", "update-auto-scaling-group", "--auto-scaling-group-name", name,
                           "--min-size", "3")
        g = self.region.asg(name)
        self.assertEqual((g["MinSize"], g["MaxSize"], g["DesiredCapacity"]), (3, 4, 3))
        now = self.region.wait_group(name, 3)
        self.assertTrue(set(insts) <= set(now))
        # Lowering MaxSize below the current size lowers Desired the same way.
        self.region.cli_v1("autoscaling", "update-auto-scaling-group", "--auto-scaling-group-name", name,
                           "--min-size", "1", "--max-size", "2")
        g = self.region.asg(name)
        self.assertEqual((g["MinSize"], g["MaxSize"], g["DesiredCapacity"]), (1, 2, 2))
        now2 = self.region.wait_group(name, 2)
        self.assertTrue(set(now2) <= set(now))
        self.assertEqual(sorted(harness.az_counts(now2.values()).values()), [1, 1])

    def test_termination_prefers_old_launch_configuration(self):
        name = "repl-oldest-lc"
        insts = self.make_group(name, 2, min_size=1, max_size=4)
        old_lc = name + "-lc"
        self.assertEqual(harness.az_counts(insts.values()), {"us-west-2a": 1, "us-west-2b": 1})
        self.region.create_lc(name + "-lc2")
        self.asc.update_auto_scaling_group(AutoScalingGroupName=name, LaunchConfigurationName=name + "-lc2")
        self.asc.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=4)
        now4 = self.region.wait_group(name, 4)
        new = set(now4) - set(insts)
        self.assertEqual(len(new), 2)
        for iid in new:
            self.assertEqual(now4[iid]["lc"], name + "-lc2")
        for iid in insts:
            self.assertEqual(now4[iid]["lc"], old_lc)
        self.assertEqual(harness.az_counts(now4.values()), {"us-west-2a": 2, "us-west-2b": 2})

        self.asc.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=2)
        now2 = self.region.wait_group(name, 2)
        self.assertEqual(set(now2), new, "instances of the oldest launch configuration go first")

    def test_terminate_instance_in_group_with_and_without_decrement(self):
        name = "repl-terminate"
        insts = self.make_group(name, 3, min_size=1, max_size=5)
        ids = sorted(insts)

        # Without decrement: desired stays 3, a replacement is launched.
        victim = ids[0]
        out = self.region.cli_v1("autoscaling", "terminate-instance-in-auto-scaling-group",
                                 "--instance-id", victim, "--no-should-decrement-desired-capacity")
        act = out["Activity"]
        self.assertIn(victim, act["Description"])
        self.assertTrue(act["Description"].startswith("Terminating EC2 instance"), act)
        self.assertEqual(self.region.asg(name)["DesiredCapacity"], 3)
        now = self.wait_replaced(name, victim, 3)
        self.assertEqual(len(set(now) - set(ids)), 1)
        self.assert_instance_gone(victim, [insts[victim]["doc"]["pid"]])

        # With decrement: desired 3 -> 2, nothing launched.
        victim2 = sorted(set(now) & set(ids))[0]
        out = self.region.cli_v2("autoscaling", "terminate-instance-in-auto-scaling-group",
                                 "--instance-id", victim2, "--should-decrement-desired-capacity")
        self.assertIn(victim2, out["Activity"]["Description"])
        self.assertEqual(self.region.asg(name)["DesiredCapacity"], 2)
        now2 = self.region.wait_group(name, 2)
        self.assertEqual(set(now2), set(now) - {victim2})
        self.assert_instance_gone(victim2, [now[victim2]["doc"]["pid"]])
        hold_for(lambda: len(self.region.group_instances(name)) == 2, 3, 0.5, "group stays at 2")

    def test_set_instance_health_unhealthy_replaced(self):
        name = "repl-set-health"
        insts = self.make_group(name, 2)
        victim = sorted(insts)[0]
        pid = insts[victim]["doc"]["pid"]
        self.region.cli_v1("autoscaling", "set-instance-health", "--instance-id", victim,
                           "--health-status", "Unhealthy")
        # The process was fine: only the API said unhealthy.
        now = self.wait_replaced(name, victim, 2)
        new = set(now) - set(insts)
        self.assertEqual(len(new), 1)
        self.assert_instance_gone(victim, [pid])

    def test_suspend_replace_unhealthy(self):
        name = "repl-suspend"
        insts = self.make_group(name, 2)
        self.region.cli_v1("autoscaling", "suspend-processes", "--auto-scaling-group-name", name,
                           "--scaling-processes", "ReplaceUnhealthy")
        g = self.region.asg(name)
        self.assertIn("ReplaceUnhealthy", [p["ProcessName"] for p in g.get("SuspendedProcesses", [])])

        victim = sorted(insts)[0]
        os.kill(insts[victim]["doc"]["pid"], signal.SIGKILL)

        def unhealthy():
            for i in self.region.group_instances(name):
                if i["InstanceId"] == victim:
                    return i["HealthStatus"] == "Unhealthy"
            raise AssertionError("%s left the group while ReplaceUnhealthy is suspended" % victim)
        wait_until(unhealthy, harness.REPLACE_TIMEOUT, 0.5, "%s marked Unhealthy" % victim)

        # While suspended: not replaced, no new instance.
        def unchanged():
            ids = {i["InstanceId"] for i in self.region.group_instances(name)}
            return ids == set(insts)
        hold_for(unchanged, 10, 0.5, "group unchanged while ReplaceUnhealthy is suspended")

        self.region.cli_v1("autoscaling", "resume-processes", "--auto-scaling-group-name", name,
                           "--scaling-processes", "ReplaceUnhealthy")
        g = self.region.asg(name)
        self.assertNotIn("ReplaceUnhealthy", [p["ProcessName"] for p in g.get("SuspendedProcesses", [])])
        now = self.wait_replaced(name, victim, 2)
        self.assertEqual(len(set(now) - set(insts)), 1)


if __name__ == "__main__":
    unittest.main()
