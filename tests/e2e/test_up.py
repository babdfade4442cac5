"""`autopipe up`, the README's main job: a region with the seed's stack, where everything is, and Ctrl-C."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import unittest

import harness
from harness import http_json, instance_processes, wait_until


class UpTest(unittest.TestCase):
    def setUp(self):
        lease = harness.lease_block()
        self.addCleanup(lease.release)  # cleanups run last-in first-out: after _stop has emptied the block
        self.block, self.block_prefix = lease.n, lease.prefix
        self.root = tempfile.mkdtemp(prefix="autopipe-e2e-up-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.data_dir = os.path.join(self.root, "data")
        self.proc = None
        self.addCleanup(self._stop)

    def _start_up(self):
        # Port 0: the server takes a port the kernel picks and writes where it listens to DATA_DIR/endpoint.
        argv = [harness.autopipe_bin(), "up", "--data-dir", self.data_dir, "--listen", "127.0.0.1:0",
                "--address-block", "127.%d" % self.block]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        lines = []
        ready = threading.Event()

        def reader():
            for line in self.proc.stdout:
                lines.append(line)
                if "Press Ctrl-C" in line:
                    ready.set()
        threading.Thread(target=reader, daemon=True).start()
        self.assertTrue(ready.wait(90), "autopipe up did not report readiness:\n" + "".join(lines))
        return "".join(lines)

    def _stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        # Whatever the test left behind in its own block: only our processes live there.
        for pid, _ in instance_processes(self.block_prefix):
            harness.kill9(pid)
        for pid, _ in harness.lb_node_processes(self.data_dir):
            harness.kill9(pid)

    def _cli_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_SHARED_CREDENTIALS_FILE=os.path.join(self.data_dir, "credentials"),
                   AWS_CONFIG_FILE=os.path.join(self.data_dir, "config"), AWS_PAGER="")
        return env

    def test_up_runs_the_seed_stack_says_where_it_is_and_stops_on_ctrl_c(self):
        out = self._start_up()
        endpoint = harness.read_text(os.path.join(self.data_dir, "endpoint")).strip()
        self.assertRegex(endpoint, r"^http://127\.0\.0\.1:[1-9][0-9]*$")
        self.assertIn(endpoint, out)
        self.assertIn(os.path.join(self.data_dir, "credentials"), out)
        urls = [u for u in re.findall(r"http://(127\.%d\.\d+\.\d+)/" % self.block, out) if ".200." not in u]
        self.assertEqual(len(urls), 5, out)
        zones = []
        for ip in urls:
            body = http_json(ip)
            self.assertEqual(body["private_ip"], ip)
            zones.append(body["availability_zone"])
        self.assertEqual(sorted(zones.count(z) for z in set(zones)), [2, 3])

        # The seed's load balancer is up in front of them: its printed curl line works and reaches instances.
        lb = re.search(r"curl http://(127\.%d\.200\.\d+)/" % self.block, out)
        self.assertIsNotNone(lb, out)
        served = {http_json(lb.group(1))["private_ip"] for _ in range(30)}
        self.assertTrue(served <= set(urls) and len(served) >= 2, served)

        # The seed's Redis cluster (§2, the corrected call): its printed redis-cli line sets and gets keys on both
        # shards through the configuration endpoint.
        cli = re.search(r"redis-cli -c -h (127\.%d\.220\.\d+) -p (\d+)" % self.block, out)
        self.assertIsNotNone(cli, out)
        self.assertIn("available", out)
        for key in ("a", "b", "c"):  # slots 15495, 3300, 7365: both shards
            res = subprocess.run(["redis-cli", "-c", "-h", cli.group(1), "-p", cli.group(2), "set", key, key + "!"],
                                 capture_output=True, text=True, timeout=10)
            self.assertEqual(res.stdout.strip(), "OK", res.stderr)
            res = subprocess.run(["redis-cli", "-c", "-h", cli.group(1), "-p", cli.group(2), "get", key],
                                 capture_output=True, text=True, timeout=10)
            self.assertEqual(res.stdout.strip(), key + "!", res.stderr)

        # The printed instructions work with the real CLI.
        import json
        v1 = harness._find_cli_v1() or harness._find_cli_v2()
        res = subprocess.run(list(v1) + ["--endpoint-url", endpoint, "--output", "json", "autoscaling",
                                         "describe-auto-scaling-groups"],
                             env=self._cli_env(), capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        group = json.loads(res.stdout)["AutoScalingGroups"][0]
        self.assertEqual((group["AutoScalingGroupName"], group["MinSize"], group["MaxSize"],
                          group["DesiredCapacity"]), ("auto-pipeline-asg", 2, 10, 5))
        self.assertEqual(group["LaunchConfigurationName"], "auto-pipeline-launch-config")

        # The seed's SNS topic and CPU alarm (§5), as written: printed, and there for the CLI. The alarm's action is
        # the topic; its instance does not exist, so it has no data.
        topic_arn = "arn:aws:sns:us-west-2:123456789012:AutoPipelineAlerts"
        self.assertIn("TopicArn          " + topic_arn, out)
        self.assertRegex(out, r"CloudWatch alarm HighCPUUsage \(.*\), INSUFFICIENT_DATA:")
        self.assertIn("cloudwatch describe-alarms --alarm-names HighCPUUsage", out)
        self.assertIn("sns subscribe --topic-arn " + topic_arn, out)

        def cli(*args):
            r = subprocess.run(list(v1) + ["--endpoint-url", endpoint, "--output", "json"] + list(args),
                               env=self._cli_env(), capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            return json.loads(r.stdout)
        self.assertIn(topic_arn, [t["TopicArn"] for t in cli("sns", "list-topics")["Topics"]])
        alarm = cli("cloudwatch", "describe-alarms", "--alarm-names", "HighCPUUsage")["MetricAlarms"][0]
        self.assertEqual((alarm["MetricName"], alarm["Namespace"], alarm["Statistic"], alarm["Period"],
                          alarm["Threshold"], alarm["ComparisonOperator"], alarm["EvaluationPeriods"],
                          alarm["Dimensions"], alarm["AlarmActions"], alarm["StateValue"]),
                         ("CPUUtilization", "AWS/EC2", "Average", 300, 80.0, "GreaterThanThreshold", 2,
                          [{"Name": "InstanceId", "Value": "i-1234567890"}], [topic_arn], "INSUFFICIENT_DATA"))

        # The seed's Multi-AZ database, with 7-day retention, at the printed endpoint, as the printed mariadb
        # command reaches it (the seed's password on stdin, not in argv).
        db = re.search(r"mariadb -h (127\.%d\.210\.\d+) -P 3306 -u admin -p" % self.block, out)
        self.assertIsNotNone(db, out)
        self.assertIn("backups kept 7 days), available", out)
        sql = subprocess.run(["mariadb", "-h", db.group(1), "-P", "3306", "-u", "admin", "-p", "-N", "-e",
                              "SELECT @@read_only, CURRENT_USER()"], input="password\n", capture_output=True,
                             text=True, timeout=30)
        if sql.returncode != 0 and "password" in sql.stderr.lower():
            # mariadb reads -p's password from the terminal only: pass it through an option file instead.
            cnf = os.path.join(self.data_dir, "..", "client.cnf")
            with open(cnf, "w") as f:
                f.write("[client]\npassword=password\n")
            os.chmod(cnf, 0o600)
            sql = subprocess.run(["mariadb", "--defaults-extra-file=" + cnf, "-h", db.group(1), "-P", "3306",
                                  "-u", "admin", "-N", "-e", "SELECT @@read_only, CURRENT_USER()"],
                                 capture_output=True, text=True, timeout=30)
        self.assertEqual(sql.returncode, 0, sql.stderr)
        self.assertTrue(sql.stdout.startswith("0\tadmin@"), sql.stdout)

        # Ctrl-C stops the region and every process it runs.
        self.proc.send_signal(signal.SIGINT)
        self.assertEqual(self.proc.wait(30), 0)
        self.assertEqual(instance_processes(self.block_prefix), [])
        self.assertEqual(harness.lb_node_processes(self.data_dir), [])
        self.assertEqual(harness.data_dir_processes(self.data_dir), [])

        # A second `up` on the same data dir brings the same stack back.
        out = self._start_up()
        self.assertEqual(len([u for u in re.findall(r"http://(127\.%d\.\d+\.\d+)/" % self.block, out)
                              if ".200." not in u]), 5, out)
        self.assertNotIn("AlreadyExists", out)


if __name__ == "__main__":
    unittest.main()
