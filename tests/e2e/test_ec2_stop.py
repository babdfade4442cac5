"""EC2 StopInstances / StartInstances / RebootInstances with real instance processes, driven by both aws CLIs and
boto3; the CloudWatch alarm action arn:aws:automate:<region>:ec2:stop on a burning instance; and no process of an
instance surviving its stop or termination, not even children that left its process group (coreutils' `timeout`
calls setpgid) or its session (`setsid`).
"""

import json
import os
import unittest

import harness
from harness import Region, wait_until

ASG = "stop-asg"
LC = "stop-lc"
# Two children that leave the instance's process group and session, still running after the boot script ends.
ESCAPERS = "#!/bin/sh\ntimeout 300 sleep 300 &\nsetsid sleep 300 &\n"
# Burns a core (escaping the process group too), bounded.
BURN = "#!/bin/sh\ntimeout 300 sh -c 'while :; do :; done' &\n"


def state_of(ec2, instance_id):
    r = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return r


def escapers_of(instance_id):
    """The instance's processes that are outside its init's process group or session."""
    init = harness.instance_init_pid(instance_id)
    out = []
    for pid, _ in harness.instance_processes(instance_id=instance_id):
        try:
            if os.getpgid(pid) != init or os.getsid(pid) != init:
                out.append(pid)
        except ProcessLookupError:
            pass
    return out


class Ec2StopTest(unittest.TestCase):
    def setUp(self):
        self.region = Region.for_test(self)
        self.ec2 = self.region.boto3("ec2")
        self.asc = self.region.boto3("autoscaling")
        self.cw = self.region.boto3("cloudwatch")

    def group_with(self, user_data, keep_stopped):
        """A group of one instance running `user_data`; with keep_stopped, health checks are suspended so a stopped
        instance is not replaced. Returns the instance id."""
        path = os.path.join(self.region.root, "user-data.sh")
        with open(path, "w") as f:
            f.write(user_data)
        self.region.cli_v1("autoscaling", "create-launch-configuration", "--launch-configuration-name", LC,
                           "--image-id", harness.SAMPLE_AMI, "--instance-type", "t3.micro",
                           "--user-data", "file://" + path)
        self.asc.create_auto_scaling_group(AutoScalingGroupName=ASG, LaunchConfigurationName=LC, MinSize=1,
                                           MaxSize=2, DesiredCapacity=1, AvailabilityZones=["us-west-2a"])
        (instance_id,) = self.region.wait_group(ASG, 1)
        if keep_stopped:
            self.asc.suspend_processes(AutoScalingGroupName=ASG, ScalingProcesses=["HealthCheck", "ReplaceUnhealthy"])
        return instance_id

    def wait_state(self, instance_id, name, timeout=30):
        wait_until(lambda: state_of(self.ec2, instance_id)["State"]["Name"] == name, timeout, 0.2,
                   "%s to be %s" % (instance_id, name))
        return state_of(self.ec2, instance_id)

    def test_stop_start_reboot_with_both_clis_and_boto3(self):
        iid = self.group_with(ESCAPERS, keep_stopped=True)
        wait_until(lambda: len(escapers_of(iid)) >= 2, 20, 0.2, "the boot script's escaping children")
        before = state_of(self.ec2, iid)
        ip = before["PrivateIpAddress"]

        # -- stop (aws CLI v1): stopping, then stopped with none of its processes left, escapers included.
        out = self.region.cli_v1("ec2", "stop-instances", "--instance-ids", iid)
        change = out["StoppingInstances"][0]
        self.assertEqual((change["InstanceId"], change["PreviousState"], change["CurrentState"]),
                         (iid, {"Code": 16, "Name": "running"}, {"Code": 64, "Name": "stopping"}))
        inst = self.wait_state(iid, "stopped")
        self.assertEqual(harness.instance_processes(instance_id=iid), [])
        self.assertEqual(inst["StateReason"]["Code"], "Client.UserInitiatedShutdown")
        self.assertRegex(inst["StateTransitionReason"], r"^User initiated \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\)$")
        self.assertEqual(inst["PrivateIpAddress"], ip)
        # Stopping again is answered as it is; rebooting a stopped instance is refused.
        out = self.region.cli_v2("ec2", "stop-instances", "--instance-ids", iid)
        self.assertEqual(out["StoppingInstances"][0]["CurrentState"]["Name"], "stopped")
        code, msg = self.region.cli_error_code("ec2", "reboot-instances", "--instance-ids", iid)
        self.assertEqual(code, "IncorrectInstanceState")
        self.assertIn(iid, msg)

        # -- start (aws CLI v2): pending, then running and serving on the same address; UserData ran once only.
        out = self.region.cli_v2("ec2", "start-instances", "--instance-ids", iid)
        change = out["StartingInstances"][0]
        self.assertEqual((change["PreviousState"]["Name"], change["CurrentState"]["Name"]), ("stopped", "pending"))
        self.wait_state(iid, "running")
        wait_until(lambda: (harness.serves(ip) or {}).get("instance_id") == iid, 30, 0.2, "the service again")
        self.assertEqual(escapers_of(iid), [], "cloud-init runs UserData at the first boot only")

        # -- reboot (boto3): the tree is booted again, the instance stays running.
        init = harness.instance_init_pid(iid)
        self.ec2.reboot_instances(InstanceIds=[iid])
        wait_until(lambda: harness.pid_alive(init) is False, 20, 0.1, "the old init to go")

        def rebooted():
            try:
                return harness.instance_init_pid(iid) != init
            except AssertionError:
                return False
        wait_until(rebooted, 30, 0.2, "a new init")
        self.assertEqual(state_of(self.ec2, iid)["State"]["Name"], "running")
        wait_until(lambda: (harness.serves(ip) or {}).get("instance_id") == iid, 30, 0.2, "the service after reboot")

        # -- a forced stop (boto3), then errors EC2 gives.
        r = self.ec2.stop_instances(InstanceIds=[iid], Force=True)
        self.assertEqual(r["StoppingInstances"][0]["CurrentState"]["Name"], "stopping")
        self.wait_state(iid, "stopped")
        self.assertEqual(harness.instance_processes(instance_id=iid), [])
        code, _ = self.region.cli_error_code("ec2", "stop-instances", "--instance-ids", "i-0123456789abcdef0")
        self.assertEqual(code, "InvalidInstanceID.NotFound")
        self.ec2.terminate_instances(InstanceIds=[iid])
        self.wait_state(iid, "terminated")
        code, msg = self.region.cli_error_code("ec2", "start-instances", "--instance-ids", iid, version=2)
        self.assertEqual((code, msg), ("IncorrectInstanceState",
                                       "The instance '%s' is not in a state from which it can be started." % iid))

    def test_terminate_leaves_no_process_that_left_the_group_or_session(self):
        iid = self.group_with(ESCAPERS, keep_stopped=True)
        wait_until(lambda: len(escapers_of(iid)) >= 2, 20, 0.2, "the boot script's escaping children")
        self.region.cli_v1("ec2", "terminate-instances", "--instance-ids", iid)
        self.wait_state(iid, "terminated")
        self.assertEqual(harness.instance_processes(instance_id=iid), [])

    def test_alarm_stop_action_stops_a_burning_instance_and_the_group_replaces_it(self):
        iid = self.group_with(BURN, keep_stopped=True)
        stop_arn = "arn:aws:automate:us-west-2:ec2:stop"
        self.region.cli_v2("cloudwatch", "put-metric-alarm", "--alarm-name", "BurningInstance",
                           "--metric-name", "CPUUtilization", "--namespace", "AWS/EC2", "--statistic", "Average",
                           "--period", "10", "--threshold", "5", "--comparison-operator", "GreaterThanThreshold",
                           "--dimensions", "Name=InstanceId,Value=" + iid, "--evaluation-periods", "1",
                           "--alarm-actions", stop_arn)
        # A busy machine gives the burner less than a core: 5% of the instance's 2 vCPUs is a tenth of a core
        # (the idle service uses next to nothing). Once stopped the instance sends no data, so the alarm leaves
        # ALARM again: its history tells.
        inst = self.wait_state(iid, "stopped", timeout=120)
        updates = self.cw.describe_alarm_history(AlarmName="BurningInstance", HistoryItemType="StateUpdate")
        summaries = [h["HistorySummary"] for h in updates["AlarmHistoryItems"]]
        self.assertTrue(any(x.endswith(" to ALARM") for x in summaries), summaries)
        self.assertEqual(harness.instance_processes(instance_id=iid), [], "the burner (in its own group) is gone too")
        self.assertEqual(inst["StateReason"]["Code"], "Client.UserInitiatedShutdown")
        history = self.cw.describe_alarm_history(AlarmName="BurningInstance", HistoryItemType="Action")
        actions = [json.loads(h["HistoryData"]) for h in history["AlarmHistoryItems"]]
        self.assertIn(("Succeeded", stop_arn), [(a["actionState"], a["notificationResource"]) for a in actions])

        # Health checks back on: the stopped member is unhealthy and replaced, in AWS's words.
        self.asc.resume_processes(AutoScalingGroupName=ASG)
        wait_until(lambda: iid not in {i["InstanceId"] for i in self.region.group_instances(ASG)}, 60, 0.5,
                   "the stopped member to leave the group")
        self.assertNotIn(iid, self.region.wait_group(ASG, 1))
        self.wait_state(iid, "terminated")
        causes = [a["Cause"] for a in self.region.activities(ASG)]
        self.assertTrue(any("an instance was taken out of service in response to an EC2 health check indicating it "
                            "has been terminated or stopped." in c for c in causes), causes)


if __name__ == "__main__":
    unittest.main()
