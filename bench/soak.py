#!/usr/bin/env python3
"""Acceptance soak for issue 8: a region under a stream of random and hostile signed requests.

It starts one region on a leased address block (tests/e2e/harness.py's lease_block()), creates the seed's stack
(what `autopipe up` makes: launch configuration auto-pipeline-launch-config, group auto-pipeline-asg min 2 max 10
desired 5 over us-west-2a/b, Classic LB auto-pipeline-lb HTTP 80->80 attached to the group), then for --duration
seconds sends from a few threads:
  - fuzz:   boto3 calls with fuzzed values (control characters, odd Unicode, very long strings, garbage NextToken,
            out-of-range numbers) against Auto Scaling, EC2 and ELB,
  - raw:    form bodies with invalid UTF-8 and raw high bytes, signed with botocore's SigV4Auth and sent with
            http.client (also a request with two Authorization headers),
  - huge:   CreateOrUpdateTags with 40,000 tags (about 2 MB), now and then,
  - slow:   up to --slow-max connections that trickle one header byte every few seconds, plus --idle-max idle
            connections that send nothing.
Every --health-interval seconds it checks that a normal write works (CreateOrUpdateTags + DeleteTags on the group,
CreateLaunchConfiguration + DeleteLaunchConfiguration), that a Describe answers and that the load balancer's
DNSName answers HTTP. At the end: a write still works; kill -9 of one instance's sample-app (its pid read from GET /
on the instance, checked in /proc/<pid>/cmdline) is followed by a replacement serving; the server's VmRSS at start
and end; requests counted by kind and HTTP status; every 5xx listed (a 5xx is a finding).

Every loop is bounded in count and time, all traffic goes to 127.0.0.0/8, the only process killed on purpose is
the sample-app pid the instance reports, and `autopipe down --data-dir` always runs in a finally.

Usage: python3 bench/soak.py [--duration 600] [--threads 2] [--bin PATH] [--keep-data]
"""

import argparse
import collections
import configparser
import datetime
import http.client
import json
import os
import random
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import boto3
import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import harness  # noqa: E402  (lease_block, process helpers)

REGION = "us-west-2"
ZONES = ["us-west-2a", "us-west-2b"]
SAMPLE_IMAGE = "ami-0a1b2c3d4e5f60718"
LC_NAME = "auto-pipeline-launch-config"
ASG_NAME = "auto-pipeline-asg"
LB_NAME = "auto-pipeline-lb"
DEFAULT_BIN = os.path.join(REPO, "build", "autopipe")
VERSIONS = {"autoscaling": "2011-01-01", "ec2": "2016-11-15", "elasticloadbalancing": "2012-06-01"}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def vmrss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def http_get(host, port=80, path="/", timeout=2.0):
    if not host.startswith("127."):
        raise RuntimeError(f"refusing non-loopback address {host}")
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def get_doc(ip, timeout=1.0):
    try:
        st, body = http_get(ip, timeout=timeout)
        return json.loads(body) if st == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None


# ---- fuzzed values -----------------------------------------------------------------------------------------------

CONTROL = "".join(chr(c) for c in list(range(0, 32)) + [127])
ODD_UNICODE = "\u00e9\u00fc\u4e2d\u6587\U0001F600\u200b\u202e\ufeff\uffff\u0301\u2028\u2029"


def fuzz_string(rng):
    kind = rng.randrange(9)
    if kind == 0:
        return "".join(rng.choice(CONTROL) for _ in range(rng.randint(1, 20)))
    if kind == 1:
        return "".join(rng.choice(ODD_UNICODE) for _ in range(rng.randint(1, 40)))
    if kind == 2:
        return rng.choice(string.ascii_letters) * rng.choice([256, 1601, 4096, 65536, 300000])
    if kind == 3:
        return "".join(chr(rng.randint(1, 0xD7FF)) for _ in range(rng.randint(1, 64)))
    if kind == 4:
        return rng.choice(["", " ", "%", "%%", "%C3%28", "%FF", "&&&", "==", "a&b=c", "../../credentials",
                           "' OR 1=1 --", "<x/>", "${jndi:x}", "\\", "null", "\u0000", "*", "?"])
    if kind == 5:
        return "lc" + "".join(rng.choice(CONTROL + "abc") for _ in range(rng.randint(1, 10)))
    if kind == 6:
        return str(rng.choice([-1, 0, 2**31, 2**31 - 1, 2**63, -2**63, 10**30]))
    if kind == 7:
        return "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 300)))
    return "soak-" + "".join(rng.choice(string.ascii_lowercase) for _ in range(8))


def fuzz_int(rng):
    return rng.choice([-1, 0, 1, 5, 100, 101, 2**31 - 1, 2**31, 2**40])


# ---- counting ----------------------------------------------------------------------------------------------------

class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_kind = collections.defaultdict(collections.Counter)  # kind -> status -> n
        self.by_op = collections.defaultdict(collections.Counter)    # kind:op -> status -> n
        self.five_xx = []
        self.latency_max = collections.defaultdict(float)

    def add(self, kind, op, status, detail=None, seconds=None):
        with self.lock:
            self.by_kind[kind][str(status)] += 1
            self.by_op[f"{kind}:{op}"][str(status)] += 1
            if seconds is not None and seconds > self.latency_max[kind]:
                self.latency_max[kind] = seconds
            if isinstance(status, int) and status >= 500 and len(self.five_xx) < 500:
                self.five_xx.append({"time": time.strftime("%H:%M:%S"), "kind": kind, "op": op,
                                     "status": status, "detail": (detail or "")[:600]})


def call_boto(counts, kind, op, fn, **kw):
    """Calls a boto3 operation and counts its HTTP status (or what kept it from getting one)."""
    t0 = time.monotonic()
    try:
        resp = fn(**kw)
        counts.add(kind, op, resp["ResponseMetadata"]["HTTPStatusCode"], seconds=time.monotonic() - t0)
        return resp
    except botocore.exceptions.ClientError as e:
        st = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "client_error")
        err = e.response.get("Error", {})
        counts.add(kind, op, st, f"{err.get('Code')}: {err.get('Message')} params={summarize(kw)}",
                   seconds=time.monotonic() - t0)
    except (botocore.exceptions.ParamValidationError, UnicodeError) as e:
        counts.add(kind, op, "not_sent_client_validation", str(e)[:200])
    except (botocore.exceptions.BotoCoreError, OSError) as e:
        counts.add(kind, op, "conn_error:" + type(e).__name__, f"{e} params={summarize(kw)}",
                   seconds=time.monotonic() - t0)
    return None


def summarize(kw):
    s = repr(kw)
    return s if len(s) < 300 else s[:300] + f"...({len(s)} chars)"


# ---- the region --------------------------------------------------------------------------------------------------

class Region:
    def __init__(self, binary, data_dir, block):
        self.binary, self.data_dir, self.block = binary, data_dir, block
        self.proc = None
        self.out = None

    def start(self):
        self.out = open(os.path.join(self.data_dir, "server.stdout"), "ab")
        self.proc = subprocess.Popen(
            [self.binary, "server", "--data-dir", self.data_dir, "--listen", "127.0.0.1:0",
             "--region", REGION, "--address-block", self.block],
            stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.data_dir)
        ep = os.path.join(self.data_dir, "endpoint")
        deadline = time.monotonic() + 20
        for _ in range(2000):
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            if os.path.exists(ep) and open(ep).read().strip():
                break
            if time.monotonic() > deadline:
                raise RuntimeError("server wrote no endpoint within 20 s")
            time.sleep(0.02)
        self.url = open(ep).read().strip()
        u = urllib.parse.urlparse(self.url)
        self.host, self.port = u.hostname, u.port
        if not self.host.startswith("127."):
            raise RuntimeError(f"endpoint {self.url} is not loopback")
        cp = configparser.ConfigParser()
        cp.read(os.path.join(self.data_dir, "credentials"))
        self.key = cp["default"]["aws_access_key_id"]
        self.secret = cp["default"]["aws_secret_access_key"]
        self.creds = Credentials(self.key, self.secret)

    def clients(self, timeout=60):
        s = boto3.session.Session(aws_access_key_id=self.key, aws_secret_access_key=self.secret, region_name=REGION)
        cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=timeout,
                     max_pool_connections=4)
        return {svc: s.client(svc, endpoint_url=self.url, config=cfg) for svc in ("autoscaling", "ec2", "elb")}

    def down(self):
        if self.proc is None:
            return
        try:
            subprocess.run([self.binary, "down", "--data-dir", self.data_dir], timeout=180,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            log("autopipe down timed out")
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log(f"server pid {self.proc.pid} still running after down; SIGKILL")
                self.proc.kill()
                self.proc.wait(timeout=10)
        left = harness.instance_processes(self.block + ".")
        for p in left:
            pid = p if isinstance(p, int) else p[0]
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if left:
            log(f"{len(left)} instance processes were left after down; killed by pid")
        if self.out:
            self.out.close()


def create_seed(c):
    asg, elb = c["autoscaling"], c["elb"]
    asg.create_launch_configuration(LaunchConfigurationName=LC_NAME, ImageId=SAMPLE_IMAGE, InstanceType="t3.micro")
    lb = elb.create_load_balancer(LoadBalancerName=LB_NAME, AvailabilityZones=ZONES,
                                  Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80,
                                              "InstanceProtocol": "HTTP", "InstancePort": 80}])
    asg.create_auto_scaling_group(AutoScalingGroupName=ASG_NAME, LaunchConfigurationName=LC_NAME, MinSize=2,
                                  MaxSize=10, DesiredCapacity=5, AvailabilityZones=ZONES,
                                  LoadBalancerNames=[LB_NAME])
    return lb["DNSName"]


def group_members(c):
    g = c["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[ASG_NAME])["AutoScalingGroups"]
    return g[0]["Instances"] if g else []


def private_ips(c, ids):
    if not ids:
        return {}
    out = {}
    for r in c["ec2"].describe_instances(InstanceIds=list(ids))["Reservations"]:
        for i in r["Instances"]:
            if i.get("PrivateIpAddress"):
                out[i["InstanceId"]] = i["PrivateIpAddress"]
    return out


def serving_members(c):
    ms = [m for m in group_members(c) if m["LifecycleState"] == "InService"]
    ips = private_ips(c, [m["InstanceId"] for m in ms])
    ok = {}
    for iid, ip in ips.items():
        d = get_doc(ip)
        if d and d.get("instance_id") == iid:
            ok[iid] = (ip, d)
    return ok


# ---- traffic -----------------------------------------------------------------------------------------------------

class Traffic:
    def __init__(self, region, counts, stop, seed):
        self.r, self.counts, self.stop = region, counts, stop
        self.seed = seed

    # boto3 with fuzzed values
    def fuzz_loop(self, idx, max_requests):
        rng = random.Random(self.seed * 100 + idx)
        c = self.r.clients(timeout=60)
        asg, ec2, elb = c["autoscaling"], c["ec2"], c["elb"]
        n = 0
        while not self.stop.is_set() and n < max_requests:
            n += 1
            s = fuzz_string(rng)
            op = rng.randrange(14)
            if op == 0:
                rid, key = rng.choice([ASG_NAME, s]), rng.choice(["soak-fuzz", s])
                if call_boto(self.counts, "fuzz", "CreateOrUpdateTags", asg.create_or_update_tags, Tags=[{
                        "ResourceId": rid, "ResourceType": "auto-scaling-group", "Key": key,
                        "Value": fuzz_string(rng), "PropagateAtLaunch": False}]) is not None:
                    # Take the tag off again, so the group stays under AWS's 50-tag quota and the health
                    # check's own tag write is not refused with LimitExceeded.
                    call_boto(self.counts, "fuzz", "DeleteTags", asg.delete_tags, Tags=[{
                        "ResourceId": rid, "ResourceType": "auto-scaling-group", "Key": key}])
            elif op == 1:
                call_boto(self.counts, "fuzz", "DescribeAutoScalingGroups", asg.describe_auto_scaling_groups,
                          AutoScalingGroupNames=[s], MaxRecords=fuzz_int(rng))
            elif op == 2:
                call_boto(self.counts, "fuzz", "DescribeAutoScalingGroups.NextToken",
                          asg.describe_auto_scaling_groups, NextToken=s)
            elif op == 3:
                call_boto(self.counts, "fuzz", "DescribeLaunchConfigurations", asg.describe_launch_configurations,
                          LaunchConfigurationNames=[s, fuzz_string(rng)], MaxRecords=fuzz_int(rng))
            elif op == 4:
                call_boto(self.counts, "fuzz", "DescribeLaunchConfigurations.NextToken",
                          asg.describe_launch_configurations, NextToken=s)
            elif op == 5:
                name = "soak-lc-" + s if rng.random() < 0.5 else s
                kw = {"LaunchConfigurationName": name,
                      "ImageId": rng.choice([SAMPLE_IMAGE, fuzz_string(rng)]),
                      "InstanceType": rng.choice(["t3.micro", fuzz_string(rng)])}
                if rng.random() < 0.3:
                    kw["UserData"] = fuzz_string(rng)
                if call_boto(self.counts, "fuzz", "CreateLaunchConfiguration",
                             asg.create_launch_configuration, **kw) is not None:
                    call_boto(self.counts, "fuzz", "DeleteLaunchConfiguration",
                              asg.delete_launch_configuration, LaunchConfigurationName=name)
            elif op == 6:
                # Group names that never exist in this region: the seed group is left alone.
                call_boto(self.counts, "fuzz", "UpdateAutoScalingGroup", asg.update_auto_scaling_group,
                          AutoScalingGroupName="soak-nogroup-" + s, MinSize=fuzz_int(rng),
                          MaxSize=fuzz_int(rng), DesiredCapacity=fuzz_int(rng))
            elif op == 7:
                call_boto(self.counts, "fuzz", "SetDesiredCapacity", asg.set_desired_capacity,
                          AutoScalingGroupName="soak-nogroup-" + s, DesiredCapacity=fuzz_int(rng))
            elif op == 8:
                call_boto(self.counts, "fuzz", "DescribeInstances", ec2.describe_instances,
                          InstanceIds=[s], MaxResults=fuzz_int(rng))
            elif op == 9:
                call_boto(self.counts, "fuzz", "DescribeInstances.Filter", ec2.describe_instances,
                          Filters=[{"Name": rng.choice(["instance-state-name", "tag:x", s]),
                                    "Values": [fuzz_string(rng) for _ in range(rng.randint(1, 5))]}])
            elif op == 10:
                call_boto(self.counts, "fuzz", "DescribeInstances.NextToken", ec2.describe_instances, NextToken=s)
            elif op == 11:
                call_boto(self.counts, "fuzz", "DescribeLoadBalancers", elb.describe_load_balancers,
                          LoadBalancerNames=[s], Marker=fuzz_string(rng))
            elif op == 12:
                call_boto(self.counts, "fuzz", "DescribeInstanceHealth", elb.describe_instance_health,
                          LoadBalancerName=rng.choice([LB_NAME, s]), Instances=[{"InstanceId": fuzz_string(rng)}])
            else:
                call_boto(self.counts, "fuzz", "DeleteTags", asg.delete_tags, Tags=[{
                    "ResourceId": rng.choice([ASG_NAME, s]), "ResourceType": "auto-scaling-group",
                    "Key": rng.choice(["soak-fuzz", s])}])

    def signed_raw(self, service, body, extra_headers=None, timeout=60):
        """POSTs a form body (bytes, sent as is) signed with the region's real key; returns the status."""
        req = AWSRequest(method="POST", url=self.r.url + "/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        SigV4Auth(self.r.creds, service, REGION).add_auth(req)
        conn = http.client.HTTPConnection(self.r.host, self.r.port, timeout=timeout)
        try:
            conn.putrequest("POST", "/", skip_accept_encoding=True)
            for k, v in req.headers.items():
                conn.putheader(k, v)
            for k, v in (extra_headers or []):
                conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, resp.read()[:600]
        finally:
            conn.close()

    def raw_once(self, rng):
        bad = rng.choice([b"%C3%28", b"%FF", b"lc%FFbad", b"%ED%A0%80", b"%C0%AF", b"%F8%88%80%80%80",
                          b"\xff\xfe", b"\xc3\x28", b"%00", b"%01", b"%7F", b"%1B[31m", b"\x80" * 50,
                          bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))])
        which = rng.randrange(8)
        v = VERSIONS
        extra = None
        if which == 0:
            svc, op = "autoscaling", "CreateOrUpdateTags"
            body = (b"Action=CreateOrUpdateTags&Version=" + v[svc].encode() +
                    b"&Tags.member.1.ResourceId=" + ASG_NAME.encode() +
                    b"&Tags.member.1.ResourceType=auto-scaling-group&Tags.member.1.Key=soak-raw"
                    b"&Tags.member.1.PropagateAtLaunch=false&Tags.member.1.Value=" + bad)
        elif which == 1:
            svc, op = "autoscaling", "CreateLaunchConfiguration"
            body = (b"Action=CreateLaunchConfiguration&Version=" + v[svc].encode() +
                    b"&LaunchConfigurationName=soak" + bad + b"&ImageId=" + SAMPLE_IMAGE.encode() +
                    b"&InstanceType=t3.micro")
        elif which == 2:
            svc, op = "autoscaling", "DescribeAutoScalingGroups"
            body = (b"Action=DescribeAutoScalingGroups&Version=" + v[svc].encode() +
                    b"&AutoScalingGroupNames.member.1=" + bad + b"&NextToken=" + bad)
        elif which == 3:
            svc, op = "ec2", "DescribeInstances"
            body = (b"Action=DescribeInstances&Version=" + v[svc].encode() + b"&InstanceId.1=i-" + bad +
                    b"&Filter.1.Name=" + bad + b"&Filter.1.Value.1=" + bad)
        elif which == 4:
            svc, op = "elasticloadbalancing", "DescribeLoadBalancers"
            body = (b"Action=DescribeLoadBalancers&Version=" + v[svc].encode() +
                    b"&LoadBalancerNames.member.1=" + bad + b"&Marker=" + bad)
        elif which == 5:
            svc, op = "autoscaling", "GarbageAction"
            body = b"Action=" + bad + b"&Version=" + bad + b"&" + bad + b"=" + bad + b"&&=&%"
        elif which == 6:
            # A second Authorization header, not signed by the first.
            svc, op = "autoscaling", "DescribeAutoScalingGroups.2auth"
            body = b"Action=DescribeAutoScalingGroups&Version=" + v[svc].encode()
            extra = [("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAFAKE/20260101/us-west-2/autoscaling/"
                      "aws4_request, SignedHeaders=host, Signature=" + "0" * 64)]
        else:
            svc, op = "autoscaling", "DescribeAutoScalingGroups.MaxRecords"
            body = (b"Action=DescribeAutoScalingGroups&Version=" + v[svc].encode() + b"&MaxRecords=" +
                    rng.choice([b"0", b"-1", b"2147483648", b"1e3", b"0x10", b"", bad]))
        t0 = time.monotonic()
        try:
            st, text = self.signed_raw(svc, body, extra)
            self.counts.add("raw", op, st, f"body={body[:200]!r} resp={text!r}", seconds=time.monotonic() - t0)
            if st == 200 and op == "CreateLaunchConfiguration":
                # Random bytes that happened to be a valid name: delete it again, as sent.
                name = body.split(b"LaunchConfigurationName=", 1)[1].split(b"&ImageId=", 1)[0]
                self.signed_raw(svc, b"Action=DeleteLaunchConfiguration&Version=" + v[svc].encode() +
                                b"&LaunchConfigurationName=" + name)
        except (OSError, http.client.HTTPException) as e:
            self.counts.add("raw", op, "conn_error:" + type(e).__name__, f"body={body[:200]!r} {e}",
                            seconds=time.monotonic() - t0)

    def raw_loop(self, idx, max_requests):
        rng = random.Random(self.seed * 100 + 50 + idx)
        for _ in range(max_requests):
            if self.stop.is_set():
                break
            self.raw_once(rng)

    def huge_once(self, rng, n_tags=40000):
        parts = [b"Action=CreateOrUpdateTags&Version=2011-01-01"]
        for i in range(1, n_tags + 1):
            parts.append(b"&Tags.member.%d.ResourceId=%s&Tags.member.%d.ResourceType=auto-scaling-group"
                         b"&Tags.member.%d.Key=k%d&Tags.member.%d.Value=v&Tags.member.%d.PropagateAtLaunch=false"
                         % (i, ASG_NAME.encode(), i, i, i, i, i))
        body = b"".join(parts)
        op = f"CreateOrUpdateTags.{n_tags}tags({len(body) // 1024}KB)"
        t0 = time.monotonic()
        try:
            st, text = self.signed_raw("autoscaling", body, timeout=120)
            self.counts.add("huge", op, st, f"resp={text[:300]!r}", seconds=time.monotonic() - t0)
        except (OSError, http.client.HTTPException) as e:
            self.counts.add("huge", op, "conn_error:" + type(e).__name__, str(e), seconds=time.monotonic() - t0)
        # Huge lists through boto3 as well: DescribeAutoScalingGroups with many names.
        c = self.r.clients(timeout=120)
        names = [f"soak-missing-{i}" for i in range(rng.choice([1000, 5000, 20000]))]
        call_boto(self.counts, "huge", f"DescribeAutoScalingGroups.{len(names)}names",
                  c["autoscaling"].describe_auto_scaling_groups, AutoScalingGroupNames=names)

    def huge_loop(self, interval, max_requests):
        rng = random.Random(self.seed * 100 + 99)
        for _ in range(max_requests):
            if self.stop.wait(interval):
                break
            self.huge_once(rng)

    # slow and idle connections
    def slow_loop(self, slow_max, idle_max, trickle_s, stats):
        """Holds up to slow_max trickling and idle_max silent connections until stop; bounded everywhere."""
        header = (f"POST / HTTP/1.1\r\nHost: {self.r.host}:{self.r.port}\r\nX-Soak: "
                  + "a" * 4000 + "\r\n").encode()
        slow = []   # [sock, offset]
        idle = []
        deadline = time.monotonic() + 24 * 3600
        for _ in range(1_000_000):
            if self.stop.is_set() or time.monotonic() > deadline:
                break
            # top up (at most 100 per pass, so the opens are spread out over a few passes)
            for _ in range(100):
                if len(slow) >= slow_max:
                    break
                s = self._open()
                if s is None:
                    break
                slow.append([s, 0])
                stats["slow_opened"] += 1
            for _ in range(100):
                if len(idle) >= idle_max:
                    break
                s = self._open()
                if s is None:
                    break
                idle.append(s)
                stats["idle_opened"] += 1
            keep = []
            for s, off in slow:
                try:
                    s.send(header[off:off + 1])
                    keep.append([s, (off + 1) % len(header)])
                except OSError:
                    stats["slow_closed_by_server"] += 1
                    s.close()
            slow = keep
            keep_idle = []
            for s in idle:
                try:
                    s.setblocking(False)
                    data = s.recv(1024)
                    if data == b"":
                        stats["idle_closed_by_server"] += 1
                        s.close()
                        continue
                    stats["idle_got_bytes"] += 1
                    keep_idle.append(s)
                except BlockingIOError:
                    keep_idle.append(s)
                except OSError:
                    stats["idle_closed_by_server"] += 1
                    s.close()
            idle = keep_idle
            stats["slow_open_now"] = len(slow)
            stats["idle_open_now"] = len(idle)
            stats["slow_open_max"] = max(stats["slow_open_max"], len(slow))
            stats["idle_open_max"] = max(stats["idle_open_max"], len(idle))
            self.stop.wait(trickle_s)
        for s, _ in slow:
            s.close()
        for s in idle:
            s.close()

    def _open(self):
        try:
            return socket.create_connection((self.r.host, self.r.port), timeout=5)
        except OSError:
            return None


# ---- checks ------------------------------------------------------------------------------------------------------

def timed(fn):
    t0 = time.monotonic()
    try:
        fn()
        return {"ok": True, "s": round(time.monotonic() - t0, 3)}
    except Exception as e:  # noqa: BLE001 - a failed check is recorded, not raised
        return {"ok": False, "s": round(time.monotonic() - t0, 3), "error": f"{type(e).__name__}: {e}"[:400]}


def health_check(c, dns, n):
    asg = c["autoscaling"]
    tag = f"soak-health-{n}"
    lc = f"soak-health-lc-{n}"
    out = {"n": n, "time": time.strftime("%H:%M:%S")}
    out["tags_write"] = timed(lambda: (
        asg.create_or_update_tags(Tags=[{"ResourceId": ASG_NAME, "ResourceType": "auto-scaling-group", "Key": tag,
                                         "Value": "v", "PropagateAtLaunch": False}]),
        asg.delete_tags(Tags=[{"ResourceId": ASG_NAME, "ResourceType": "auto-scaling-group", "Key": tag}])))
    out["lc_write"] = timed(lambda: (
        asg.create_launch_configuration(LaunchConfigurationName=lc, ImageId=SAMPLE_IMAGE, InstanceType="t3.micro"),
        asg.delete_launch_configuration(LaunchConfigurationName=lc)))

    def describe():
        g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[ASG_NAME])["AutoScalingGroups"]
        if not g:
            raise RuntimeError("group not listed")
        out["in_service"] = sum(1 for m in g[0]["Instances"] if m["LifecycleState"] == "InService")
    out["describe"] = timed(describe)

    def lb():
        addr = socket.gethostbyname(dns)
        st, _ = http_get(addr, 80, "/", timeout=5)
        if st != 200:
            raise RuntimeError(f"load balancer answered {st}")
    out["lb_http"] = timed(lb)
    out["ok"] = all(out[k]["ok"] for k in ("tags_write", "lc_write", "describe", "lb_http"))
    return out


def kill_and_replace(c, timeout_s=60):
    members = serving_members(c)
    if not members:
        return {"ok": False, "error": "no instance serving"}
    victim = sorted(members)[0]
    ip, doc = members[victim]
    pid = int(doc["pid"])
    cl = harness.proc_cmdline(pid) or []
    if not any("sample-app" in a for a in cl):
        return {"ok": False, "error": f"pid {pid} of {victim} is not sample-app: {cl!r}"}
    before = set(m["InstanceId"] for m in group_members(c))
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    log(f"killed sample-app pid {pid} of {victim} ({ip})")
    new_id = new_ip = None
    for _ in range(100000):
        el = time.monotonic() - t0
        if el > timeout_s:
            return {"ok": False, "victim": victim, "killed_pid": pid, "error": f"no replacement within {timeout_s} s"}
        try:
            if new_id is None:
                fresh = [m["InstanceId"] for m in group_members(c) if m["InstanceId"] not in before]
                if fresh:
                    new_id = fresh[0]
            if new_id and new_ip is None:
                new_ip = private_ips(c, [new_id]).get(new_id)
            if new_ip:
                d = get_doc(new_ip, timeout=0.5)
                if d and d.get("instance_id") == new_id:
                    return {"ok": True, "victim": victim, "killed_pid": pid, "replacement": new_id,
                            "replacement_serving_s": round(time.monotonic() - t0, 3)}
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            pass
        time.sleep(0.02)
    return {"ok": False, "error": "loop bound reached"}


# ---- main --------------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--threads", type=int, default=2, help="fuzz threads (and as many raw threads)")
    ap.add_argument("--slow-max", type=int, default=300)
    ap.add_argument("--idle-max", type=int, default=200)
    ap.add_argument("--trickle", type=float, default=3.0, help="seconds between header bytes of slow clients")
    ap.add_argument("--huge-interval", type=float, default=30.0)
    ap.add_argument("--health-interval", type=float, default=60.0)
    ap.add_argument("--max-requests", type=int, default=200000, help="cap per thread")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--bin", default=None)
    ap.add_argument("--keep-data", action="store_true")
    args = ap.parse_args()

    src = args.bin or DEFAULT_BIN
    tmp = tempfile.mkdtemp(prefix="autopipe-soak-")
    binary = os.path.join(tmp, "autopipe")
    shutil.copy2(src, binary)
    data_dir = os.path.join(tmp, "data")
    os.makedirs(data_dir)
    lease = harness.lease_block()
    started = datetime.datetime.now(datetime.timezone.utc)
    result = {"started": started.isoformat(timespec="seconds"), "binary": src,
              "binary_mtime": datetime.datetime.fromtimestamp(os.stat(src).st_mtime).isoformat(timespec="seconds"),
              "git_head": subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True,
                                         text=True).stdout.strip(),
              "seed": args.seed, "args": vars(args), "block": lease.block, "uptime_start": uptime(),
              "nproc": os.cpu_count()}
    log(f"uptime at start: {result['uptime_start']}")
    region = Region(binary, data_dir, lease.block)
    counts = Counts()
    stop = threading.Event()
    threads = []
    slow_stats = collections.Counter()
    try:
        region.start()
        log(f"region at {region.url}, block {lease.block}, server pid {region.proc.pid}")
        c = region.clients()
        dns = create_seed(c)
        t0 = time.monotonic()
        members = {}
        for _ in range(600):
            members = serving_members(c)
            if len(members) >= 5 or time.monotonic() - t0 > 60:
                break
            time.sleep(0.2)
        result["seed_serving_s"] = round(time.monotonic() - t0, 2)
        result["seed_serving_instances"] = len(members)
        log(f"seed stack: {len(members)} instances serving after {result['seed_serving_s']} s; LB {dns}")
        if len(members) < 5:
            raise RuntimeError("seed group did not reach 5 serving instances")
        result["rss_kb_start"] = vmrss_kb(region.proc.pid)
        result["health_initial"] = health_check(c, dns, 0)

        tr = Traffic(region, counts, stop, args.seed)
        for i in range(args.threads):
            threads.append(threading.Thread(target=tr.fuzz_loop, args=(i, args.max_requests), daemon=True))
            threads.append(threading.Thread(target=tr.raw_loop, args=(i, args.max_requests), daemon=True))
        threads.append(threading.Thread(target=tr.huge_loop, args=(args.huge_interval, 1000), daemon=True))
        threads.append(threading.Thread(target=tr.slow_loop,
                                        args=(args.slow_max, args.idle_max, args.trickle, slow_stats), daemon=True))
        for t in threads:
            t.start()
        t_start = time.monotonic()
        health = []
        rss_series = []
        n = 0
        for _ in range(100000):
            left = args.duration - (time.monotonic() - t_start)
            if left <= 0:
                break
            time.sleep(min(args.health_interval, left))
            if time.monotonic() - t_start >= args.duration - 1:
                break
            n += 1
            h = health_check(c, dns, n)
            rss = vmrss_kb(region.proc.pid)
            h["rss_kb"] = rss
            health.append(h)
            with counts.lock:
                total = sum(sum(v.values()) for v in counts.by_kind.values())
                n5 = len(counts.five_xx)
            log(f"health {n}: ok={h['ok']} tags={h['tags_write']} lc={h['lc_write']} describe={h['describe']} "
                f"lb={h['lb_http']} rss={rss} kB requests={total} 5xx={n5} slow={slow_stats['slow_open_now']} "
                f"idle={slow_stats['idle_open_now']}")
        stop.set()
        for t in threads:
            t.join(timeout=150)
        result["traffic_seconds"] = round(time.monotonic() - t_start, 1)
        result["threads_still_running"] = sum(1 for t in threads if t.is_alive())
        result["health"] = health
        result["health_final"] = health_check(c, dns, n + 1)
        log(f"final write check: {result['health_final']}")
        # a death within 3 s of launch backs the group off; the seed instances are far older than that here
        result["kill"] = kill_and_replace(c)
        log(f"kill -9 and replacement: {result['kill']}")
        result["health_after_kill"] = health_check(c, dns, n + 2)
        result["rss_kb_end"] = vmrss_kb(region.proc.pid)
        result["server_alive_at_end"] = region.proc.poll() is None
    except Exception as e:  # noqa: BLE001 - recorded in the results
        result["error"] = f"{type(e).__name__}: {e}"
        log(f"ERROR: {result['error']}")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        region.down()
        lease.release()
        result["uptime_end"] = uptime()
        log(f"uptime at end: {result['uptime_end']}")
        with counts.lock:
            result["requests_by_kind"] = {k: dict(v) for k, v in counts.by_kind.items()}
            result["requests_by_op"] = {k: dict(v) for k, v in sorted(counts.by_op.items())}
            result["requests_total"] = sum(sum(v.values()) for v in counts.by_kind.values())
            result["five_xx_count"] = sum(n for v in counts.by_kind.values() for s, n in v.items()
                                          if s.isdigit() and int(s) >= 500)
            result["five_xx"] = counts.five_xx
            result["max_latency_s"] = {k: round(v, 3) for k, v in counts.latency_max.items()}
        result["slow_idle"] = dict(slow_stats)
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        path = os.path.join(HERE, "results", f"soak-{started.strftime('%Y%m%dT%H%M%S')}.json")
        with open(path, "w") as f:
            json.dump(result, f, indent=1, sort_keys=True, default=str)
        if not args.keep_data:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"data kept in {tmp}")
        print_summary(result, path)
    ok = (not result.get("error") and result["five_xx_count"] == 0 and result.get("kill", {}).get("ok")
          and result.get("health_final", {}).get("ok") and all(h["ok"] for h in result.get("health", [])))
    return 0 if ok else 1


def print_summary(r, path):
    print("\n==== soak summary ====")
    print(f"traffic {r.get('traffic_seconds')} s, {r.get('requests_total')} requests, 5xx: {r.get('five_xx_count')}")
    for k, v in sorted(r.get("requests_by_kind", {}).items()):
        print(f"  {k:6s} {dict(sorted(v.items()))}")
    print(f"  slow/idle: {r.get('slow_idle')}")
    hs = r.get("health", [])
    print(f"health checks ok: {sum(1 for h in hs if h['ok'])}/{len(hs)}; final write check ok: "
          f"{r.get('health_final', {}).get('ok')}; after kill: {r.get('health_after_kill', {}).get('ok')}")
    print(f"kill -9 -> replacement serving: {r.get('kill')}")
    print(f"server VmRSS start {r.get('rss_kb_start')} kB, end {r.get('rss_kb_end')} kB")
    print(f"uptime start: {r.get('uptime_start')}\nuptime end:   {r.get('uptime_end')}")
    if r.get("error"):
        print(f"ERROR: {r['error']}")
    for f in r.get("five_xx", [])[:20]:
        print(f"  5xx: {f}")
    print(f"results: {path}")


if __name__ == "__main__":
    sys.exit(main())
