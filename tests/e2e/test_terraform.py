"""Terraform applies the whole seed stack (examples/terraform/main.tf) with the real hashicorp/aws provider from
the machine's filesystem mirror: apply, a plan with no changes, destroy, and nothing left behind (no process of
the stack, no live resource). Skipped where Terraform or the provider mirror is not installed.
"""

import glob
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import REPO, Region, data_dir_processes, log, wait_until

MIRRORS = [os.environ.get("AUTOPIPE_TF_MIRROR", ""), "/opt/tf-plugins", "/usr/share/terraform/plugins",
           os.path.expanduser("~/.terraform.d/plugins")]
PROVIDER = "registry.terraform.io/hashicorp/aws/5.100.0"
TF_TIMEOUT = 900  # seconds for one terraform command (apply waits for the DB and the cache)


def find_mirror():
    for m in MIRRORS:
        if m and os.path.isdir(os.path.join(m, PROVIDER)):
            return m
    return None


class TerraformTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.terraform = shutil.which("terraform")
        cls.mirror = find_mirror()
        if not cls.terraform or not cls.mirror:
            raise unittest.SkipTest("terraform (%s) or the hashicorp/aws 5.100.0 mirror (%s) is not installed"
                                    % (cls.terraform, cls.mirror))
        cls.region = Region.for_class(cls)
        cls.work = tempfile.mkdtemp(prefix="autopipe-tf-")
        shutil.copy(os.path.join(REPO, "examples", "terraform", "main.tf"), cls.work)
        cls.cli_config = os.path.join(cls.work, "terraform.rc")
        with open(cls.cli_config, "w") as f:
            f.write('provider_installation {\n  filesystem_mirror {\n    path = "%s"\n'
                    '    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n'
                    '  direct {\n    exclude = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n' % cls.mirror)

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "work"):
            shutil.rmtree(cls.work, ignore_errors=True)

    def tf(self, *args, ok_codes=(0,)):
        env = dict(os.environ, TF_CLI_CONFIG_FILE=self.cli_config, TF_IN_AUTOMATION="1",
                   CHECKPOINT_DISABLE="1", TF_DATA_DIR=os.path.join(self.work, ".terraform"))
        env.pop("AWS_PROFILE", None)
        argv = [self.terraform, *args, "-input=false", "-no-color"]
        if args[0] != "init":
            argv += ["-var", "endpoint=" + self.region.endpoint,
                     "-var", "credentials_file=" + self.region.credentials_file]
        log("terraform %s" % " ".join(args))
        res = subprocess.run(argv, cwd=self.work, env=env, capture_output=True, text=True, timeout=TF_TIMEOUT,
                             stdin=subprocess.DEVNULL)
        self.assertIn(res.returncode, ok_codes, "terraform %s failed (%d):\n%s\n%s" % (
            " ".join(args), res.returncode, res.stdout[-6000:], res.stderr[-3000:]))
        return res

    def live(self):
        """What of the stack still exists, through the API."""
        r = self.region
        return {
            "groups": [g["AutoScalingGroupName"] for g in
                       r.boto3("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]],
            "load_balancers": [lb["LoadBalancerName"] for lb in
                               r.boto3("elb").describe_load_balancers()["LoadBalancerDescriptions"]],
            "db_instances": [d["DBInstanceIdentifier"] for d in
                             r.boto3("rds").describe_db_instances()["DBInstances"]],
            "caches": [g["ReplicationGroupId"] for g in
                       r.boto3("elasticache").describe_replication_groups()["ReplicationGroups"]],
            "topics": r.boto3("sns").list_topics()["Topics"],
            "alarms": [a["AlarmName"] for a in r.boto3("cloudwatch").describe_alarms()["MetricAlarms"]],
            "db_subnet_groups": [g["DBSubnetGroupName"] for g in
                                 r.boto3("rds").describe_db_subnet_groups()["DBSubnetGroups"]],
            "cache_subnet_groups": [g["CacheSubnetGroupName"] for g in
                                    r.boto3("elasticache").describe_cache_subnet_groups()["CacheSubnetGroups"]],
        }

    def test_apply_plan_destroy_the_seed_stack(self):
        self.tf("init")
        self.tf("apply", "-auto-approve")
        live = self.live()
        self.assertEqual(live["groups"], ["auto-pipeline-asg"])
        self.assertEqual(live["load_balancers"], ["auto-pipeline-lb"])
        self.assertEqual(live["db_instances"], ["auto-pipeline-db"])
        self.assertEqual(live["caches"], ["auto-pipeline-redis"])
        self.assertEqual(len(live["topics"]), 1)
        self.assertEqual(live["alarms"], ["HighCPUUsage"])
        self.assertEqual(live["db_subnet_groups"], ["default", "auto-pipeline-db-subnets"])
        self.assertEqual(live["cache_subnet_groups"], ["default", "auto-pipeline-cache-subnets"])
        db = self.region.boto3("rds").describe_db_instances()["DBInstances"][0]
        self.assertEqual((db["MultiAZ"], db["BackupRetentionPeriod"]), (True, 7))
        self.assertEqual(db["DBSubnetGroup"]["DBSubnetGroupName"], "auto-pipeline-db-subnets")
        clusters = self.region.boto3("elasticache").describe_cache_clusters()["CacheClusters"]
        self.assertEqual({c["CacheSubnetGroupName"] for c in clusters}, {"auto-pipeline-cache-subnets"})
        group = self.region.boto3("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"][0]
        self.assertEqual((group["MinSize"], group["MaxSize"], group["DesiredCapacity"]), (2, 10, 5))
        # What Terraform read back matches what it wrote: no drift.
        plan = self.tf("plan", "-detailed-exitcode", ok_codes=(0, 2))
        self.assertEqual(plan.returncode, 0, "terraform plan shows changes after apply:\n" + plan.stdout[-6000:])
        self.tf("destroy", "-auto-approve")
        self.assertEqual(self.live(), {"groups": [], "load_balancers": [], "db_instances": [], "caches": [],
                                       "topics": [], "alarms": [], "db_subnet_groups": ["default"],
                                       "cache_subnet_groups": ["default"]})
        # Nothing of the stack runs any more: DB servers, cache nodes, endpoints, instances.
        wait_until(lambda: data_dir_processes(self.region.data_dir) == [], 60, 0.5,
                   "every process of the stack to stop after terraform destroy")
        self.assertEqual(glob.glob(os.path.join(self.region.data_dir, "rds", "auto-pipeline-db", "*")), [])


if __name__ == "__main__":
    unittest.main()
