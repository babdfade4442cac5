"""SNS end to end: the seed's `aws sns create-topic --name AutoPipelineAlerts` with aws-cli v1 and v2 and boto3, an
HTTP subscriber that confirms through SubscribeURL and verifies every notification's signature (SignatureVersion 1
and 2) against the certificate at SigningCertURL, an email subscriber through an SMTP relay the test runs on
loopback, and a notification that still arrives when the server is killed with SIGKILL between Publish and its
delivery.
"""

import base64
import email
import http.server
import json
import socketserver
import threading
import time
import unittest
import urllib.parse
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from harness import Region, hold_for, wait_until

TOPIC_NAME = "AutoPipelineAlerts"
# The seed's command, word for word.
SEED_CREATE_TOPIC = ["sns", "create-topic", "--name", "AutoPipelineAlerts"]
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url, timeout=10):
    with NO_PROXY.open(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def canonical(msg):
    if msg["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join("%s\n%s\n" % (k, msg[k]) for k in keys if k in msg)


def verify_signature(msg):
    """Fetches SigningCertURL and checks the message's signature; raises on a bad one."""
    status, pem = fetch(msg["SigningCertURL"])
    assert status == 200, status
    cert = x509.load_pem_x509_certificate(pem.encode())
    digest = hashes.SHA256() if msg["SignatureVersion"] == "2" else hashes.SHA1()
    cert.public_key().verify(base64.b64decode(msg["Signature"]), canonical(msg).encode(), padding.PKCS1v15(), digest)


class Subscriber:
    """An HTTP endpoint on loopback that records what SNS posts. While `failing` is set it answers Notifications
    with 500 (SNS then retries)."""

    def __init__(self):
        self.received = []  # (headers dict, parsed body)
        self.raw = []       # bodies of raw deliveries
        self.failed_attempts = 0
        self.failing = False
        self.fail_next = 0          # answer this many more Notifications with 500
        self.attempt_times = []     # monotonic time of every Notification POST
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                with owner.lock:
                    notification = headers.get("x-amz-sns-message-type") == "Notification"
                    if notification:
                        owner.attempt_times.append(time.monotonic())
                    if notification and (owner.failing or owner.fail_next > 0):
                        owner.fail_next = max(0, owner.fail_next - 1)
                        owner.failed_attempts += 1
                        self.send_response(500)
                    elif headers.get("x-amz-sns-rawdelivery") == "true":
                        owner.raw.append(body)
                        self.send_response(200)
                    else:
                        owner.received.append((headers, json.loads(body)))
                        self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/sns" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def messages(self, type_):
        with self.lock:
            return [(h, m) for h, m in self.received if m.get("Type") == type_]

    def messages_raw(self):
        with self.lock:
            return list(self.raw)

    def wait_for(self, type_, pred=lambda m: True, timeout=30):
        return wait_until(lambda: next(((h, m) for h, m in self.messages(type_) if pred(m)), None), timeout, 0.1,
                          "a %s at %s" % (type_, self.url))


class SmtpSink:
    """A tiny SMTP server on loopback that keeps every message it accepts (enough SMTP for libcurl)."""

    def __init__(self):
        self.mails = []  # (rcpt list, email.message.Message)
        self.lock = threading.Lock()
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line):
                self.wfile.write((line + "\r\n").encode())

            def handle(self):
                self.reply("220 sink ESMTP")
                rcpts = []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line.decode("utf-8", "replace").strip()
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 sink")
                    elif verb == "MAIL":
                        rcpts = []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        rcpts.append(cmd.split(":", 1)[1].strip().strip("<>"))
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 go ahead")
                        data = []
                        while True:
                            l = self.rfile.readline()
                            if not l or l in (b".\r\n", b".\n"):
                                break
                            data.append(l[1:] if l.startswith(b"..") else l)
                        with owner.lock:
                            owner.mails.append((rcpts, email.message_from_bytes(b"".join(data))))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 OK")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, pred, timeout=30):
        def find():
            with self.lock:
                return next((m for r, m in self.mails if pred(r, m)), None)
        return wait_until(find, timeout, 0.1, "an email at the SMTP sink")


class SnsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.smtp = SmtpSink()
        cls.addClassCleanup(cls.smtp.close)
        cls.region = Region("%s.%s" % (cls.__module__, cls.__name__))
        cls.addClassCleanup(cls.region.close)
        cls.region.server_args = ["--smtp-relay", "127.0.0.1:%d" % cls.smtp.port]
        cls.region.start()
        cls.sns = cls.region.boto3("sns")

    def subscriber(self):
        s = Subscriber()
        self.addCleanup(s.close)
        return s

    def subscribe_http(self, topic_arn, sub, **kw):
        """Subscribes `sub` and confirms it the way an endpoint does: by visiting the SubscribeURL it was sent."""
        pending = self.sns.subscribe(TopicArn=topic_arn, Protocol="http", Endpoint=sub.url, **kw)
        self.assertEqual(pending["SubscriptionArn"], "pending confirmation")
        headers, conf = sub.wait_for("SubscriptionConfirmation")
        self.assertEqual(headers["x-amz-sns-message-type"], "SubscriptionConfirmation")
        self.assertEqual(conf["TopicArn"], topic_arn)
        verify_signature(conf)
        status, body = fetch(conf["SubscribeURL"])
        self.assertEqual(status, 200)
        self.assertIn("<ConfirmSubscriptionResult><SubscriptionArn>%s:" % topic_arn, body)
        return body.split("<SubscriptionArn>")[1].split("</SubscriptionArn>")[0]

    def test_seed_create_topic_with_both_clis_and_boto3(self):
        out1 = self.region.cli_v1(*SEED_CREATE_TOPIC)
        self.assertEqual(out1, {"TopicArn": "arn:aws:sns:us-west-2:123456789012:AutoPipelineAlerts"})
        self.assertEqual(self.region.cli_v2(*SEED_CREATE_TOPIC), out1, "CreateTopic is idempotent")
        self.assertEqual(self.sns.create_topic(Name=TOPIC_NAME)["TopicArn"], out1["TopicArn"])
        arns = [t["TopicArn"] for t in self.region.cli_v2("sns", "list-topics")["Topics"]]
        self.assertIn(out1["TopicArn"], arns)
        attrs = self.sns.get_topic_attributes(TopicArn=out1["TopicArn"])["Attributes"]
        self.assertEqual(attrs["TopicArn"], out1["TopicArn"])
        self.assertEqual(attrs["Owner"], "123456789012")
        code, msg = self.region.cli_error_code("sns", "create-topic", "--name", "no spaces allowed")
        self.assertEqual((code, msg), ("InvalidParameter", "Invalid parameter: Topic Name"))
        code, _ = self.region.cli_error_code("sns", "publish", "--topic-arn", out1["TopicArn"] + "-gone",
                                             "--message", "x", version=2)
        self.assertEqual(code, "NotFound")

    def test_http_subscriber_confirms_and_verifies_signed_notifications(self):
        arn = self.sns.create_topic(Name="http-topic")["TopicArn"]
        sub = self.subscriber()
        sub_arn = self.subscribe_http(arn, sub)
        listed = self.sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        self.assertEqual([s["SubscriptionArn"] for s in listed], [sub_arn])
        for version in ("1", "2"):
            self.sns.set_topic_attributes(TopicArn=arn, AttributeName="SignatureVersion", AttributeValue=version)
            out = self.region.cli_v1("sns", "publish", "--topic-arn", arn, "--subject", "Hello " + version,
                                     "--message", "payload " + version, "--message-attributes",
                                     '{"severity": {"DataType": "String", "StringValue": "high"}}')
            headers, msg = sub.wait_for("Notification", lambda m: m["MessageId"] == out["MessageId"])
            self.assertEqual(headers["x-amz-sns-message-id"], out["MessageId"])
            self.assertEqual(headers["x-amz-sns-topic-arn"], arn)
            self.assertEqual(headers["x-amz-sns-subscription-arn"], sub_arn)
            self.assertEqual(headers["user-agent"], "Amazon Simple Notification Service Agent")
            self.assertTrue(headers["content-type"].startswith("text/plain"))
            self.assertEqual(msg["Subject"], "Hello " + version)
            self.assertEqual(msg["Message"], "payload " + version)
            self.assertEqual(msg["SignatureVersion"], version)
            self.assertEqual(msg["MessageAttributes"], {"severity": {"Type": "String", "Value": "high"}})
            verify_signature(msg)
            tampered = dict(msg, Message="forged")
            with self.assertRaises(Exception):
                verify_signature(tampered)
        # MessageStructure=json: the http key wins for http endpoints.
        out = self.sns.publish(TopicArn=arn, MessageStructure="json",
                               Message=json.dumps({"default": "d", "http": "for http"}))
        _, msg = sub.wait_for("Notification", lambda m: m["MessageId"] == out["MessageId"])
        self.assertEqual(msg["Message"], "for http")
        # UnsubscribeURL works unsigned, and the endpoint hears that it was unsubscribed.
        status, _ = fetch(msg["UnsubscribeURL"])
        self.assertEqual(status, 200)
        self.assertEqual(self.sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"], [])
        sub.wait_for("UnsubscribeConfirmation")

    def test_email_subscriber_through_the_smtp_relay(self):
        arn = self.sns.create_topic(Name="mail-topic")["TopicArn"]
        self.region.cli_v2("sns", "subscribe", "--topic-arn", arn, "--protocol", "email",
                           "--notification-endpoint", "ops@example.com")
        conf = self.smtp.wait_for(lambda r, m: r == ["ops@example.com"] and "Confirmation" in m["Subject"])
        body = conf.get_payload()
        link = next(l.strip() for l in body.splitlines() if "Action=ConfirmSubscription" in l)
        status, _ = fetch(link)
        self.assertEqual(status, 200)
        subs = self.sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        self.assertEqual(len(subs), 1)
        self.assertNotEqual(subs[0]["SubscriptionArn"], "PendingConfirmation")
        self.sns.publish(TopicArn=arn, Subject="Disk space", Message="The disk is full")
        mail = self.smtp.wait_for(lambda r, m: m["Subject"] == "Disk space")
        self.assertIn("The disk is full", mail.get_payload())
        self.assertIn("no-reply@sns.amazonaws.com", mail["From"])

    def test_failing_subscriber_gets_retries_per_its_delivery_policy(self):
        arn = self.sns.create_topic(Name="retry-topic")["TopicArn"]
        sub = self.subscriber()
        policy = {"healthyRetryPolicy": {"minDelayTarget": 1, "maxDelayTarget": 1, "numRetries": 2}}
        self.subscribe_http(arn, sub, Attributes={"DeliveryPolicy": json.dumps(policy)})
        # Fails twice, then answers: the third attempt (the second retry) delivers, with the same MessageId.
        sub.fail_next = 2
        mid = self.sns.publish(TopicArn=arn, Message="third time lucky")["MessageId"]
        _, msg = sub.wait_for("Notification", lambda m: m["MessageId"] == mid)
        verify_signature(msg)
        with sub.lock:
            times = list(sub.attempt_times)
        self.assertEqual(len(times), 3)
        self.assertTrue(all(b - a >= 0.9 for a, b in zip(times, times[1:])), times)
        # Always failing: 1 attempt + 2 retries, then SNS gives up.
        sub.failing = True
        self.sns.publish(TopicArn=arn, Message="never")
        wait_until(lambda: sub.failed_attempts == 2 + 3, 30, 0.1, "three failed attempts")
        hold_for(lambda: sub.failed_attempts == 5, 3, 0.2, "no fourth attempt")

    def test_publish_batch_raw_delivery_and_filter_policy(self):
        arn = self.sns.create_topic(Name="batch-topic")["TopicArn"]
        raw, filtered = self.subscriber(), self.subscriber()
        raw_arn = self.subscribe_http(arn, raw)
        self.sns.set_subscription_attributes(SubscriptionArn=raw_arn, AttributeName="RawMessageDelivery",
                                             AttributeValue="true")
        self.subscribe_http(arn, filtered, Attributes={"FilterPolicy": json.dumps({"kind": ["wanted"]})})
        out = self.sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
            {"Id": "one", "Message": "plain"},
            {"Id": "two", "Message": "tagged", "MessageAttributes": {
                "kind": {"DataType": "String", "StringValue": "wanted"}}},
            {"Id": "bad", "Message": ""}])
        self.assertEqual(sorted(e["Id"] for e in out["Successful"]), ["one", "two"])
        self.assertEqual([(e["Id"], e["Code"], e["SenderFault"]) for e in out["Failed"]],
                         [("bad", "InvalidParameter", True)])
        wait_until(lambda: len(raw.messages_raw()) == 2, 30, 0.1, "two raw deliveries")
        self.assertEqual(sorted(raw.messages_raw()), ["plain", "tagged"])
        _, msg = filtered.wait_for("Notification")
        self.assertEqual(msg["Message"], "tagged")
        hold_for(lambda: len(filtered.messages("Notification")) == 1, 1, 0.2, "the filter keeps 'plain' out")

    def test_validation_errors(self):
        arn = self.sns.create_topic(Name="validation-topic")["TopicArn"]
        cases = [
            (dict(TopicArn=arn, Message=""), "InvalidParameter"),
            (dict(TopicArn=arn, Message="x", Subject="s" * 100), "InvalidParameter"),
            (dict(TopicArn=arn, Message="{}", MessageStructure="json"), "InvalidParameter"),
        ]
        for kw, code in cases:
            with self.assertRaises(self.sns.exceptions.ClientError) as cm:
                self.sns.publish(**kw)
            self.assertEqual(cm.exception.response["Error"]["Code"], code)
        with self.assertRaises(self.sns.exceptions.ClientError) as cm:
            self.sns.subscribe(TopicArn=arn, Protocol="http", Endpoint="ftp://nowhere")
        self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidParameter")


class SnsKillTest(unittest.TestCase):
    def test_kill9_between_publish_and_delivery_still_delivers(self):
        region = Region.for_test(self)
        sns = region.boto3("sns")
        arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
        sub = Subscriber()
        self.addCleanup(sub.close)
        policy = {"healthyRetryPolicy": {"minDelayTarget": 1, "maxDelayTarget": 1, "numRetries": 30}}
        pending = sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=sub.url,
                                Attributes={"DeliveryPolicy": json.dumps(policy)})
        self.assertEqual(pending["SubscriptionArn"], "pending confirmation")
        _, conf = sub.wait_for("SubscriptionConfirmation")
        self.assertEqual(fetch(conf["SubscribeURL"])[0], 200)

        sub.failing = True  # the endpoint is down: nothing can be delivered before the kill
        message_id = sns.publish(TopicArn=arn, Subject="survives", Message="kill -9 proof")["MessageId"]
        region.kill9()
        region.restart()
        # Only now may deliveries succeed: a request the killed server had already sent can still be read by the
        # subscriber after the kill, and it must not count as the restarted server's delivery.
        sub.failing = False
        _, msg = sub.wait_for("Notification", lambda m: m["MessageId"] == message_id, timeout=60)
        self.assertEqual(msg["Message"], "kill -9 proof")
        verify_signature(msg)  # the certificate survived the restart with the key
        self.assertEqual(len([m for _, m in sub.messages("Notification") if m["MessageId"] == message_id]), 1)


if __name__ == "__main__":
    unittest.main()
