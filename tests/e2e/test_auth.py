"""SigV4 authentication at the wire: every rejected request gets AWS's error code and creates nothing."""

import datetime
import os
import unittest
import urllib.parse

import harness
from harness import Region, SAMPLE_AMI, parse_error_xml


def lc_body(name):
    return urllib.parse.urlencode([
        ("Action", "CreateLaunchConfiguration"), ("Version", harness.AS_VERSION),
        ("LaunchConfigurationName", name), ("ImageId", SAMPLE_AMI), ("InstanceType", "t3.micro")])


class AuthTest(unittest.TestCase):
    region = None
    rejected = []

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        cls.rejected = []

    def body(self, name):
        self.rejected.append(name)
        return lc_body(name)

    def assert_error(self, resp, status, code, message_part=None):
        st, headers, text = resp
        self.assertEqual(st, status, "HTTP status (body: %s)" % text[:300])
        typ, got_code, msg = parse_error_xml(text)
        self.assertEqual(got_code, code, text[:300])
        self.assertEqual(typ, "Sender", text[:300])
        self.assertTrue(msg, "empty <Message>")
        if message_part:
            self.assertIn(message_part, msg)
        return msg

    # -- the cases -------------------------------------------------------------------------------

    def test_00_region_files(self):
        """The server writes its credentials (0600), config and endpoint on first start."""
        import configparser
        import stat
        st = os.stat(self.region.credentials_file)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        cp = configparser.RawConfigParser()
        cp.read(self.region.credentials_file)
        self.assertRegex(cp["default"]["aws_access_key_id"], r"^[A-Z0-9]{16,128}$")
        self.assertGreaterEqual(len(cp["default"]["aws_secret_access_key"]), 20)
        cfg = configparser.RawConfigParser()
        cfg.read(self.region.config_file)
        self.assertEqual(cfg["default"]["region"].strip(), "us-west-2")
        self.assertEqual(harness.read_text(os.path.join(self.region.data_dir, "endpoint")).strip(),
                         "http://127.0.0.1:%d" % self.region.endpoint_port)
        self.assertTrue(os.path.exists(os.path.join(self.region.data_dir, "server.log")))

    def test_01_no_authorization(self):
        resp = self.region.raw_request(self.body("auth-none"), {"X-Amz-Date": "20260101T000000Z"})
        self.assert_error(resp, 403, "MissingAuthenticationToken")

    def test_02_garbage_authorization(self):
        resp = self.region.raw_request(self.body("auth-garbage"), {"Authorization": "garbage"})
        self.assert_error(resp, 400, "IncompleteSignature")
        # The right algorithm but an incomplete header.
        resp = self.region.raw_request(self.body("auth-partial"), {
            "Authorization": "AWS4-HMAC-SHA256 Credential=%s/20260101/us-west-2/autoscaling/aws4_request"
                             % self.region.credentials()[0],
            "X-Amz-Date": "20260101T000000Z"})
        self.assert_error(resp, 400, "IncompleteSignature")

    def test_03_unknown_access_key(self):
        resp = self.region.signed_request(self.body("auth-unknown-key"), access_key="AKIAIOSFODNN7EXAMPLE",
                                          secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        self.assert_error(resp, 403, "InvalidClientTokenId")

    def test_04_wrong_secret(self):
        resp = self.region.signed_request(self.body("auth-wrong-secret"), secret_key="not-the-secret")
        self.assert_error(resp, 403, "SignatureDoesNotMatch")

    def test_05_expired_date(self):
        old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
        resp = self.region.signed_request(self.body("auth-expired"), when=old)
        self.assert_error(resp, 403, "SignatureDoesNotMatch", "Signature expired")

    def test_06_future_date(self):
        future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=20)
        resp = self.region.signed_request(self.body("auth-future"), when=future)
        self.assert_error(resp, 403, "SignatureDoesNotMatch", "Signature not yet current")

    def test_07_tampered_body(self):
        signed = lc_body("auth-tamper-a")
        sent = lc_body("auth-tamper-b")
        self.assertEqual(len(signed), len(sent))
        self.rejected.extend(["auth-tamper-a", "auth-tamper-b"])
        resp = self.region.signed_request(sent, sign_body=signed)
        self.assert_error(resp, 403, "SignatureDoesNotMatch")

    def test_08_tampered_signed_header(self):
        # Signed with one X-Amz-Date, sent with another (within the allowed skew).
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        ak, sk = self.region.credentials()
        body = self.body("auth-tamper-date")
        req = AWSRequest(method="POST", url=self.region.endpoint + "/", data=body.encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        SigV4Auth(Credentials(ak, sk), "autoscaling", harness.REGION_NAME).add_auth(req)
        headers = dict(req.headers.items())
        d = datetime.datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ") - datetime.timedelta(seconds=1)
        headers["X-Amz-Date"] = d.strftime("%Y%m%dT%H%M%SZ")
        if headers["X-Amz-Date"][:8] != req.headers["X-Amz-Date"][:8]:
            self.skipTest("date rolled over at midnight")
        resp = self.region.raw_request(body, headers)
        self.assert_error(resp, 403, "SignatureDoesNotMatch")

    def test_09_cli_with_bad_credentials(self):
        ak, _ = self.region.credentials()
        d = os.path.join(self.region.root, "badcreds")
        os.makedirs(d, exist_ok=True)
        unknown = os.path.join(d, "unknown")
        with open(unknown, "w") as f:
            f.write("[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
                    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n")
        wrong = os.path.join(d, "wrong")
        with open(wrong, "w") as f:
            f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = not-the-secret\n" % ak)
        for version in (1, 2):
            name = "auth-cli-v%d" % version
            self.rejected.append(name)
            args = ("autoscaling", "create-launch-configuration", "--launch-configuration-name", name,
                    "--image-id", SAMPLE_AMI, "--instance-type", "t3.micro")
            code, _ = self.region.cli_error_code(*args, version=version, credentials_file=unknown)
            self.assertEqual(code, "InvalidClientTokenId")
            code, _ = self.region.cli_error_code(*args, version=version, credentials_file=wrong)
            self.assertEqual(code, "SignatureDoesNotMatch")

    def test_10_unsigned_ec2(self):
        body = "Action=DescribeInstances&Version=2016-11-15"
        st, _, text = self.region.raw_request(body)
        self.assertEqual(st, 403, text[:300])
        self.assertIn("MissingAuthenticationToken", text)

    def test_99_nothing_created_but_valid_requests_work(self):
        # Positive control: the same request correctly signed is accepted.
        st, _, text = self.region.signed_request(lc_body("auth-ok"))
        self.assertEqual(st, 200, text[:500])
        self.assertIn("CreateLaunchConfigurationResponse", text)
        lcs = self.region.cli_v1("autoscaling", "describe-launch-configurations")["LaunchConfigurations"]
        names = {lc["LaunchConfigurationName"] for lc in lcs}
        self.assertEqual(names, {"auth-ok"}, "rejected requests must create nothing")
        for n in self.rejected:
            self.assertNotIn(n, names)
        groups = self.region.cli_v1("autoscaling", "describe-auto-scaling-groups")["AutoScalingGroups"]
        self.assertEqual(groups, [])
        # Ran after at least the wire cases above.
        self.assertGreaterEqual(len(self.rejected), 8)


if __name__ == "__main__":
    unittest.main()
