"""The API edge with real clients: 16 KB of UserData through the aws CLI reaches the instance, a body over the
limit is an error botocore parses, and idle and slow connections do not hold up a CLI call."""

import os
import socket
import threading
import unittest
import urllib.parse

import botocore.exceptions

import harness
from harness import Region, MINIMAL_AMI, wait_until

# AWS allows 16 KB of UserData; Auto Scaling's model caps the base64 text at 21,847 characters, so 16,383 bytes
# (21,844 characters) is the most a launch configuration takes (16,384 bytes would be 21,848: a ValidationError).
USER_DATA_BYTES = 16 * 1024 - 1


def boot_script(size):
    """A shell script of exactly `size` bytes that keeps its instance running."""
    head = "#!/bin/sh\n"
    tail = "exec sleep 300\n"
    filler = size - len(head) - len(tail)
    lines, left = [], filler
    while left > 0:
        n = min(left, 100)
        lines.append(("#" + "x" * (n - 2) + "\n") if n >= 2 else "\n")
        left -= n
    script = head + "".join(lines) + tail
    assert len(script) == size
    return script


class ApiEdgeTest(unittest.TestCase):
    region = None

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        cls.asc = cls.region.boto3("autoscaling")

    def test_sixteen_kilobytes_of_user_data_through_the_cli_reach_the_instance(self):
        name = "edge-userdata"
        script = boot_script(USER_DATA_BYTES)
        path = os.path.join(self.region.root, name + ".sh")
        with open(path, "w") as f:
            f.write(script)
        # aws-cli base64-encodes the file: 21,844 characters in the form, about 22 KB of body.
        self.region.cli_v1("autoscaling", "create-launch-configuration", "--launch-configuration-name", name + "-lc",
                           "--image-id", MINIMAL_AMI, "--instance-type", "t3.nano", "--user-data", "file://" + path)
        lc = self.asc.describe_launch_configurations(
            LaunchConfigurationNames=[name + "-lc"])["LaunchConfigurations"][0]
        self.assertEqual(lc["UserData"], harness.b64(script))

        self.region.create_group(name, name + "-lc", 1, ["us-west-2a"])
        self.addCleanup(lambda: self.asc.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True))
        iid = next(iter(self.region.wait_group(name, 1, serving=False)))
        user_data_file = os.path.join(self.region.data_dir, "instances", iid, "user-data")
        got = wait_until(lambda: harness.read_text(user_data_file), 10, 0.2, "the instance's user-data file")
        self.assertEqual(got, script)

    def test_a_body_over_the_limit_is_an_error_the_client_parses(self):
        # 2 MiB of UserData: botocore sends it (it checks no maximum length) and must read the 413 as an AWS error.
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.asc.create_launch_configuration(LaunchConfigurationName="edge-too-big", ImageId=MINIMAL_AMI,
                                                 InstanceType="t3.nano", UserData="A" * (2 << 20))
        err = ctx.exception.response
        self.assertEqual(err["ResponseMetadata"]["HTTPStatusCode"], 413)
        self.assertEqual(err["Error"]["Code"], "RequestEntityTooLarge")
        self.assertEqual(self.asc.describe_launch_configurations(
            LaunchConfigurationNames=["edge-too-big"])["LaunchConfigurations"], [])

    def test_idle_and_slow_connections_do_not_hold_up_the_cli(self):
        u = urllib.parse.urlparse(self.region.endpoint)
        idle, slow = [], []
        stop = threading.Event()
        try:
            for _ in range(1000):
                idle.append(socket.create_connection((u.hostname, u.port), timeout=10))
            for _ in range(50):
                s = socket.create_connection((u.hostname, u.port), timeout=10)
                s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
                slow.append(s)

            def trickle():
                n = 0
                while not stop.wait(0.3):  # a header line every 300 ms on every slow connection
                    n += 1
                    for s in slow:
                        try:
                            s.sendall(b"X-Slow-%d: y\r\n" % n)
                        except OSError:
                            pass

            t = threading.Thread(target=trickle, daemon=True)
            t.start()
            for v in (1, 2):
                try:
                    groups = self.region.cli(v, "autoscaling", "describe-auto-scaling-groups")
                except unittest.SkipTest:
                    continue
                self.assertIn("AutoScalingGroups", groups)
            # All of them are still open: the answer did not come from dropping them.
            for s in idle + slow:
                s.setblocking(False)
                try:
                    self.assertNotEqual(s.recv(1, socket.MSG_PEEK), b"", "a connection was closed")
                except BlockingIOError:
                    pass
        finally:
            stop.set()
            for s in idle + slow:
                s.close()


if __name__ == "__main__":
    unittest.main()
