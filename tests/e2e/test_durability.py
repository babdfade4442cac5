"""Durable state: kill -9 of the server at any moment loses nothing an API call acknowledged.

A writer creates launch configurations (and tags a group) as fast as it can, with client retries off, and
records what the server acknowledged. The server is killed with SIGKILL in the middle of that stream, several
times; after each restart every acknowledged write must be there, and nothing may be half-applied.
"""

import random
import threading
import time
import unittest

import botocore.exceptions

from harness import MINIMAL_AMI, Region, log, wait_until

ROUNDS = 3


class DurabilityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)

    def _client(self):
        # A fresh client with retries off, so an acknowledgement means exactly one request succeeded.
        import boto3
        from botocore.config import Config
        ak, sk = self.region.credentials()
        return boto3.session.Session(aws_access_key_id=ak, aws_secret_access_key=sk, region_name="us-west-2").client(
            "autoscaling", endpoint_url=self.region.endpoint,
            config=Config(proxies={}, connect_timeout=5, read_timeout=30,
                          retries={"max_attempts": 1, "mode": "standard"}))

    def test_acknowledged_writes_survive_kill9(self):
        acknowledged = []
        rng = random.Random(1234)
        for round_no in range(ROUNDS):
            client = self._client()
            stop = threading.Event()
            errors = []

            def writer():
                n = 0
                deadline = time.monotonic() + 10
                while not stop.is_set() and time.monotonic() < deadline and n < 5000:
                    name = "durable-%d-%d" % (round_no, n)
                    n += 1
                    try:
                        client.create_launch_configuration(LaunchConfigurationName=name, ImageId=MINIMAL_AMI,
                                                           InstanceType="t3.micro")
                        acknowledged.append(name)
                    except (botocore.exceptions.EndpointConnectionError,
                            botocore.exceptions.ConnectionClosedError,
                            botocore.exceptions.ReadTimeoutError):
                        return  # the server is gone: whatever was not acknowledged may or may not exist
                    except Exception as e:  # noqa: BLE001 - anything else is a finding
                        errors.append(repr(e))
                        return

            t = threading.Thread(target=writer)
            t.start()
            # Kill at a point that varies from round to round, while writes are going on: after a random number of
            # further acknowledgements (the writer keeps writing meanwhile, so one is likely in flight).
            target = len(acknowledged) + rng.randint(10, 50)
            wait_until(lambda: len(acknowledged) >= target or errors or not t.is_alive(), timeout=10, interval=0.01,
                       what="%d acknowledged writes" % target)
            self.region.kill9()
            stop.set()
            t.join(30)
            self.assertFalse(t.is_alive())
            self.assertEqual(errors, [])
            log("round %d: %d writes acknowledged so far" % (round_no, len(acknowledged)))
            self.region.restart()

            stored = set()
            paginator = self._client().get_paginator("describe_launch_configurations")
            for page in paginator.paginate():
                for lc in page["LaunchConfigurations"]:
                    stored.add(lc["LaunchConfigurationName"])
                    # Never half-applied: every stored configuration is complete.
                    self.assertEqual((lc["ImageId"], lc["InstanceType"]), (MINIMAL_AMI, "t3.micro"))
            missing = [n for n in acknowledged if n not in stored]
            self.assertEqual(missing, [], "acknowledged but lost after kill -9")
        self.assertGreater(len(acknowledged), 20, "the writer made too little progress to test anything")


if __name__ == "__main__":
    unittest.main()
