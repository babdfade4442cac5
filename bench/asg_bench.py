#!/usr/bin/env python3
"""Auto Scaling benchmark: autopipe vs moto_server, side by side.

  1. CreateAutoScalingGroup (min 2, max 10, desired 5, us-west-2a/b, sample image) -> all 5 instances answer
     HTTP on their private IPs (moto: -> DescribeAutoScalingGroups lists 5 instances; it serves nothing).
  2. kill -9 of one instance's sample service -> a replacement instance answers HTTP
     (moto: TerminateInstanceInAutoScalingGroup -> a replacement record is listed; it runs no processes).
  3. Describe latency with 10 groups x 100 instances (minimal image, user data `exec sleep 3600`): all groups,
     one group and ec2 DescribeInstances, each through a keep-alive boto3 client and through raw pre-signed
     http.client requests (SigV4 signing is done before the clock starts).
  4. Server RSS (VmRSS) idle with no groups, and with the 1,000 instances.

Every wait is bounded in count and time, all traffic goes to 127.0.0.0/8, only processes this script started
(or that the regions it started run) are signalled, by PID, and `autopipe down` always runs.

Usage: python3 bench/asg_bench.py [--quick] [--skip-moto] [--keep-data]
"""

import argparse
import configparser
import datetime
import http.client
import importlib.metadata
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

import boto3
import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REGION = "us-west-2"
ZONES = ["us-west-2a", "us-west-2b"]
SAMPLE_IMAGE = "ami-0a1b2c3d4e5f60718"
MINIMAL_IMAGE = "ami-0f1e2d3c4b5a69788"
# botocore base64-encodes UserData of CreateLaunchConfiguration itself, so the plain script is passed.
SLEEP_USER_DATA = "#!/bin/sh\nexec sleep 3600"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_BIN = os.path.join(REPO, "build", "autopipe")
TARGETS = {
    "create_to_serving_s": 2.0,
    "kill_to_replacement_serving_s": 2.0,
    "describe_all_p99_ms": 5.0,
    "idle_rss_mb": 50.0,
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- small helpers --------------------------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    """Linear interpolation between closest ranks (p in 0..100)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summarize_ms(seconds):
    ms = [x * 1000.0 for x in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3) if ms else float("nan"),
        "mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan"),
    }


def proc_status_kb(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def proc_threads(pid):
    return proc_status_kb(pid, "Threads")


def mem_available_mb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return None


def process_count():
    return sum(1 for d in os.listdir("/proc") if d.isdigit())


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def instance_pids(data_dir):
    """Processes whose working directory is inside DATA_DIR/instances: every instance's init, service and
    user-data processes (the server itself never runs there)."""
    prefix = os.path.join(os.path.realpath(data_dir), "instances") + os.sep
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{d}/cwd")
        except OSError:
            continue
        if cwd.startswith(prefix):
            found.append(int(d))
    return found


def block_in_use(block):
    """True when a running autopipe server was given this --address-block, or some TCP socket is bound to an
    address of 127.N.0.0/16 (e.g. another region's instances)."""
    third = int(block.split(".")[1])
    for d in os.listdir("/proc"):
        if d.isdigit():
            args = cmdline(int(d)).split()
            if "server" in args and "--address-block" in args:
                i = args.index("--address-block")
                if i + 1 < len(args) and args[i + 1] == block:
                    return True
    for path in ("/proc/net/tcp",):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    local = line.split()[1].split(":")[0]
                    octets = bytes.fromhex(local)[::-1]  # little-endian IPv4
                    if octets[0] == 127 and octets[1] == third:
                        return True
        except OSError:
            pass
    return False


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def http_get_json(ip, timeout=0.5):
    """GET http://IP:80/ -> parsed JSON, or None when nothing answers yet."""
    conn = http.client.HTTPConnection(ip, 80, timeout=timeout)
    try:
        conn.request("GET", "/")
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            return None
        return json.loads(body)
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


def wait_until(pred, timeout_s, interval_s=0.05, max_iter=None):
    """Calls pred() until it returns a truthy value; bounded by time and by count. Returns the value or None."""
    deadline = time.monotonic() + timeout_s
    n = max_iter if max_iter is not None else int(timeout_s / max(interval_s, 0.001)) + 10
    for _ in range(n):
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval_s)
    return None


def parse_log_time(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp()


def read_server_log(path):
    """[(epoch seconds, message)] from an autopipe server.log."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = re.match(r"^(\S+)Z (\w+) (.*)$", line.rstrip("\n"))
                if m:
                    try:
                        out.append((parse_log_time(m.group(1)), m.group(3)))
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


def first_log(lines, pattern, after=0.0):
    rx = re.compile(pattern)
    for t, msg in lines:
        if t >= after - 0.002 and rx.search(msg):
            return t
    return None


def last_log(lines, pattern, after=0.0):
    rx = re.compile(pattern)
    found = None
    for t, msg in lines:
        if t >= after - 0.002 and rx.search(msg):
            found = t
    return found


# ---- endpoints ------------------------------------------------------------------------------------------------

class RawClient:
    """Pre-signed Query-protocol requests over one http.client connection. Signing happens before the clock
    starts, so the measured time is the request on the wire plus the server plus reading the body."""

    def __init__(self, url, access_key, secret_key):
        u = urllib.parse.urlsplit(url)
        self.url = url.rstrip("/") + "/"
        self.host, self.port = u.hostname, u.port
        self.creds = Credentials(access_key, secret_key)
        self.conn = None
        self.connects = 0

    def _connection(self):
        if self.conn is None or self.conn.sock is None:
            if self.conn is not None:
                self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.connects += 1
        return self.conn

    def signed(self, service, params):
        body = urllib.parse.urlencode(params)
        req = AWSRequest(method="POST", url=self.url, data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        SigV4Auth(self.creds, service, REGION).add_auth(req)
        return body, dict(req.headers.items())

    def call(self, service, params, quickack=False):
        """-> (seconds, status, body bytes). One retry (re-signed) when a kept-alive connection was closed
        under us; the failed attempt is not timed.

        quickack: after sending, put the socket in TCP quick-ACK mode so the response's first segment is
        ACKed at once. A server that writes headers and body in two send() calls without TCP_NODELAY has
        Nagle hold the body until that ACK comes, and a client's delayed ACK takes ~40 ms; with quickack the
        figure is the server's own time."""
        for attempt in range(2):
            body, headers = self.signed(service, params)
            conn = self._connection()
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/", body=body, headers=headers)
                if quickack and conn.sock is not None:
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                r = conn.getresponse()
                data = r.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.CannotSendRequest,
                    http.client.ResponseNotReady, BrokenPipeError):
                conn.close()
                self.conn = None
                if attempt == 1:
                    raise
                continue
            dt = time.perf_counter() - t0
            if r.will_close:
                conn.close()
            return dt, r.status, data
        raise RuntimeError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()


class Endpoint:
    def __init__(self, kind, url, access_key, secret_key):
        self.kind = kind
        self.url = url
        self.access_key = access_key
        self.secret_key = secret_key
        cfg = Config(region_name=REGION, retries={"mode": "standard", "total_max_attempts": 1},
                     connect_timeout=10, read_timeout=120, max_pool_connections=4)
        session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                        region_name=REGION)
        self.asg = session.client("autoscaling", endpoint_url=url, config=cfg)
        self.ec2 = session.client("ec2", endpoint_url=url, config=cfg)

    def raw(self):
        return RawClient(self.url, self.access_key, self.secret_key)

    def group(self, name):
        gs = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        return gs[0] if gs else None

    def private_ips(self, ids):
        out = {}
        if not ids:
            return out
        r = self.ec2.describe_instances(InstanceIds=sorted(ids))
        for res in r["Reservations"]:
            for inst in res["Instances"]:
                if inst.get("PrivateIpAddress"):
                    out[inst["InstanceId"]] = inst["PrivateIpAddress"]
        return out


class AutopipeServer:
    def __init__(self, binary, data_dir, port, block):
        self.binary = binary
        self.data_dir = data_dir
        self.port = port
        self.block = block
        self.proc = None
        self.out = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def log_path(self):
        return os.path.join(self.data_dir, "server.log")

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        self.out = open(os.path.join(self.data_dir, "server.stdout"), "ab")
        self.proc = subprocess.Popen(
            [self.binary, "server", "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}",
             "--region", REGION, "--address-block", self.block],
            stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.data_dir)
        endpoint_file = os.path.join(self.data_dir, "endpoint")

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"autopipe server exited with {self.proc.returncode}; see {self.data_dir}")
            return os.path.exists(endpoint_file)

        if not wait_until(ready, 20, 0.02):
            raise RuntimeError("autopipe server did not write its endpoint file within 20 s")
        with open(endpoint_file) as f:
            url = f.read().strip()
        cp = configparser.ConfigParser()
        cp.read(os.path.join(self.data_dir, "credentials"))
        return Endpoint("autopipe", url, cp["default"]["aws_access_key_id"], cp["default"]["aws_secret_access_key"])

    def down(self, timeout_s=180):
        """`autopipe down`, then makes sure nothing this region ran is left (by PID, inside our data dir)."""
        if self.proc is None:
            return None
        t0 = time.monotonic()
        try:
            subprocess.run([self.binary, "down", "--data-dir", self.data_dir], timeout=timeout_s,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            log(f"autopipe down timed out after {timeout_s} s")
        took = time.monotonic() - t0
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log(f"server pid {self.proc.pid} still running after down; SIGKILL")
                self.proc.kill()
                self.proc.wait(timeout=10)
        leftovers = instance_pids(self.data_dir)
        if leftovers:
            log(f"{len(leftovers)} instance processes left after down; SIGKILL by pid")
            for pid in leftovers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.out:
            self.out.close()
        self.proc = None
        return took


class MotoServer:
    def __init__(self, port, log_path):
        self.port = port
        self.log_path = log_path
        self.proc = None
        self.out = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        exe = shutil.which("moto_server")
        if not exe:
            raise RuntimeError("moto_server is not on PATH")
        self.out = open(self.log_path, "ab")
        self.proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(self.port)], stdout=self.out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        if not wait_until(ready, 30, 0.05):
            raise RuntimeError("moto_server did not listen within 30 s")
        return Endpoint("moto", f"http://127.0.0.1:{self.port}", "AKIDMOTOBENCH0000000", "moto-bench-secret")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.out:
            self.out.close()
        self.proc = None


# ---- benchmark 1: create -> 5 serving -----------------------------------------------------------------------

def seed_group_args(name, lc):
    return dict(AutoScalingGroupName=name, LaunchConfigurationName=lc, MinSize=2, MaxSize=10, DesiredCapacity=5,
                AvailabilityZones=ZONES)


def wait_group_gone(ep, name, data_dir, ids, timeout_s=60):
    """ForceDelete has been sent: waits until the group is gone and (autopipe) its instances' processes are."""
    t0 = time.monotonic()
    gone = wait_until(lambda: ep.group(name) is None, timeout_s, 0.05)
    if not gone:
        raise RuntimeError(f"group {name} still listed {timeout_s} s after ForceDelete")
    if data_dir:
        dirs = [os.path.join(os.path.realpath(data_dir), "instances", i) + os.sep for i in ids]

        def no_procs():
            for pid in instance_pids(data_dir):
                try:
                    cwd = os.readlink(f"/proc/{pid}/cwd") + os.sep
                except OSError:
                    continue
                if any(cwd.startswith(d) for d in dirs) and pid_alive(pid):
                    return False
            return True

        if not wait_until(no_procs, timeout_s, 0.05):
            raise RuntimeError(f"processes of group {name} still alive {timeout_s} s after ForceDelete")
    return time.monotonic() - t0


def bench_create_autopipe(ep, server, runs):
    lc = "bench-create-lc"
    ep.asg.create_launch_configuration(LaunchConfigurationName=lc, ImageId=SAMPLE_IMAGE, InstanceType="t3.micro")
    results = []
    for i in range(runs):
        name = f"bench-create-{i + 1}"
        wall0 = time.time()
        t0 = time.perf_counter()
        ep.asg.create_auto_scaling_group(**seed_group_args(name, lc))
        t_return = time.perf_counter() - t0
        ids, ips, serving, pids = [], {}, {}, {}
        t_ids = t_inservice = t_serving = None
        deadline = t0 + 30
        for _ in range(20000):
            now = time.perf_counter()
            if now > deadline:
                break
            if t_inservice is None:
                g = ep.group(name)
                members = g["Instances"] if g else []
                if len(members) >= 5 and not ids:
                    ids = [m["InstanceId"] for m in members]
                    t_ids = time.perf_counter() - t0
                if len(members) >= 5 and all(m["LifecycleState"] == "InService" for m in members):
                    t_inservice = time.perf_counter() - t0
            if ids and len(ips) < len(ids):
                ips = ep.private_ips(ids)
            for iid, ip in ips.items():
                if iid in serving:
                    continue
                doc = http_get_json(ip, timeout=0.5)
                if doc and doc.get("instance_id") == iid:
                    serving[iid] = time.perf_counter() - t0
                    pids[iid] = doc.get("pid")
            if ids and len(serving) == len(ids) and t_serving is None:
                t_serving = max(serving.values())
            if t_serving is not None and t_inservice is not None:
                break
            time.sleep(0.005)
        if t_serving is None:
            raise RuntimeError(f"run {i + 1}: not all 5 instances served HTTP within 30 s "
                               f"(ids={len(ids)}, serving={len(serving)})")
        lines = read_server_log(server.log_path)
        first_launch = first_log(lines, rf"group={re.escape(name)} launching", wall0)
        last_start = max((last_log(lines, rf"instance={iid} started", wall0) or 0) for iid in ids)
        run = {
            "run": i + 1,
            "create_call_returned_s": round(t_return, 4),
            "five_ids_listed_s": round(t_ids, 4),
            "all_inservice_s": round(t_inservice, 4) if t_inservice else None,
            "all_serving_http_s": round(t_serving, 4),
            "log_first_launch_s": round(first_launch - wall0, 4) if first_launch else None,
            "log_last_process_started_s": round(last_start - wall0, 4) if last_start else None,
            "sample_pids": sorted(p for p in pids.values() if p),
        }
        ep.asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
        run["force_delete_to_processes_gone_s"] = round(wait_group_gone(ep, name, server.data_dir, ids), 3)
        for p in run["sample_pids"]:
            if pid_alive(p):
                raise RuntimeError(f"sample service pid {p} still alive after the group was deleted")
        log(f"  autopipe create run {i + 1}: 5 serving after {t_serving:.3f} s "
            f"(InService {t_inservice:.3f} s, call returned {t_return:.3f} s)")
        results.append(run)
        time.sleep(0.5)
    ep.asg.delete_launch_configuration(LaunchConfigurationName=lc)
    return {"runs": results, "median_s": round(statistics.median(r["all_serving_http_s"] for r in results), 4),
            "measure": "CreateAutoScalingGroup call start -> all 5 instances answer GET / on PrivateIp:80 "
                       "with their own instance_id"}


def bench_create_moto(ep, runs):
    lc = "bench-create-lc"
    ep.asg.create_launch_configuration(LaunchConfigurationName=lc, ImageId=SAMPLE_IMAGE, InstanceType="t3.micro")
    results = []
    for i in range(runs):
        name = f"bench-create-{i + 1}"
        t0 = time.perf_counter()
        ep.asg.create_auto_scaling_group(**seed_group_args(name, lc))
        t_return = time.perf_counter() - t0
        t_five = None
        for _ in range(2000):
            g = ep.group(name)
            if g and len(g["Instances"]) >= 5:
                t_five = time.perf_counter() - t0
                break
            if time.perf_counter() - t0 > 30:
                break
            time.sleep(0.005)
        if t_five is None:
            raise RuntimeError("moto: group never listed 5 instances")
        ep.asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
        wait_group_gone(ep, name, None, [])
        results.append({"run": i + 1, "create_call_returned_s": round(t_return, 4),
                        "five_listed_s": round(t_five, 4)})
        log(f"  moto create run {i + 1}: 5 instances listed after {t_five:.3f} s (records only)")
    ep.asg.delete_launch_configuration(LaunchConfigurationName=lc)
    return {"runs": results, "median_s": round(statistics.median(r["five_listed_s"] for r in results), 4),
            "measure": "records only: CreateAutoScalingGroup call start -> DescribeAutoScalingGroups lists 5 "
                       "instances (moto serves nothing)"}


# ---- benchmark 2: kill -9 -> replacement serving ------------------------------------------------------------

def wait_group_steady(ep, name, want, timeout_s=60):
    """Waits until the group has exactly `want` members, all InService and Healthy, and every one serves HTTP.
    Returns (members, ips)."""
    deadline = time.monotonic() + timeout_s
    for _ in range(5000):
        g = ep.group(name)
        ms = g["Instances"] if g else []
        if len(ms) == want and all(m["LifecycleState"] == "InService" and m["HealthStatus"] == "Healthy"
                                   for m in ms):
            ips = ep.private_ips([m["InstanceId"] for m in ms])
            if len(ips) == want and all((http_get_json(ip) or {}).get("instance_id") == iid
                                        for iid, ip in ips.items()):
                return ms, ips
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    raise RuntimeError(f"group {name} did not settle at {want} InService serving instances in {timeout_s} s")


def bench_kill_autopipe(ep, server, runs):
    lc, name = "bench-kill-lc", "bench-kill"
    ep.asg.create_launch_configuration(LaunchConfigurationName=lc, ImageId=SAMPLE_IMAGE, InstanceType="t3.micro")
    ep.asg.create_auto_scaling_group(**seed_group_args(name, lc))
    results = []
    members = []
    try:
        members, ips = wait_group_steady(ep, name, 5)
        time.sleep(4.5)  # a death within 3 s of launch would back the group off
        for i in range(runs):
            before = {m["InstanceId"] for m in members}
            victim = sorted(before)[i % len(before)]
            ip = ips[victim]
            doc = http_get_json(ip, timeout=2)
            if not doc or doc.get("instance_id") != victim:
                raise RuntimeError(f"victim {victim} at {ip} does not answer")
            pid = int(doc["pid"])
            cl = cmdline(pid)
            if "sample-app" not in cl or f"{ip}:80" not in cl:
                raise RuntimeError(f"pid {pid} is not the sample service of {victim}: {cl!r}")
            wall0 = time.time()
            t0 = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            new_id = new_ip = None
            t_victim_out = t_new_listed = t_new_inservice = t_serving = None
            for _ in range(20000):
                if time.perf_counter() - t0 > 30:
                    break
                if t_new_inservice is None:
                    g = ep.group(name)
                    ms = {m["InstanceId"]: m for m in (g["Instances"] if g else [])}
                    v = ms.get(victim)
                    if t_victim_out is None and (v is None or v["HealthStatus"] != "Healthy"
                                                 or v["LifecycleState"] != "InService"):
                        t_victim_out = time.perf_counter() - t0
                    fresh = [m for iid, m in ms.items() if iid not in before]
                    if fresh and new_id is None:
                        new_id = fresh[0]["InstanceId"]
                        t_new_listed = time.perf_counter() - t0
                    if new_id and new_id in ms and ms[new_id]["LifecycleState"] == "InService":
                        t_new_inservice = time.perf_counter() - t0
                if new_id and new_ip is None:
                    new_ip = ep.private_ips([new_id]).get(new_id)
                if new_ip:
                    d = http_get_json(new_ip, timeout=0.5)
                    if d and d.get("instance_id") == new_id:
                        t_serving = time.perf_counter() - t0
                        break
                time.sleep(0.005)
            if t_serving is None:
                raise RuntimeError(f"kill run {i + 1}: no replacement served HTTP within 30 s")
            lines = read_server_log(server.log_path)
            exited = first_log(lines, rf"instance={victim} process exited", wall0)
            launched = first_log(lines, rf"group={name} launching instance={new_id}", wall0)
            started = first_log(lines, rf"instance={new_id} started", wall0)
            run = {
                "run": i + 1,
                "victim": victim,
                "killed_pid": pid,
                "replacement": new_id,
                "victim_out_of_service_s": round(t_victim_out, 4) if t_victim_out else None,
                "replacement_listed_s": round(t_new_listed, 4) if t_new_listed else None,
                "replacement_inservice_s": round(t_new_inservice, 4) if t_new_inservice else None,
                "replacement_serving_http_s": round(t_serving, 4),
                "log_victim_exit_noticed_s": round(exited - wall0, 4) if exited else None,
                "log_replacement_launched_s": round(launched - wall0, 4) if launched else None,
                "log_replacement_started_s": round(started - wall0, 4) if started else None,
            }
            results.append(run)
            log(f"  autopipe kill run {i + 1}: replacement {new_id} serving after {t_serving:.3f} s")
            members, ips = wait_group_steady(ep, name, 5)
            g = ep.group(name)
            if victim in {m["InstanceId"] for m in g["Instances"]}:
                wait_until(lambda: victim not in {m["InstanceId"] for m in ep.group(name)["Instances"]}, 30, 0.05)
            time.sleep(4.5)  # the next victim may be this replacement: let it age past the crash window
    finally:
        try:
            ep.asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
            wait_group_gone(ep, name, server.data_dir, [m["InstanceId"] for m in members])
            ep.asg.delete_launch_configuration(LaunchConfigurationName=lc)
        except Exception as e:  # the region is taken down anyway
            log(f"  cleanup of {name}: {e}")
    return {"runs": results,
            "median_s": round(statistics.median(r["replacement_serving_http_s"] for r in results), 4),
            "measure": "kill -9 of one instance's sample-app pid -> a new group member answers GET / on its "
                       "PrivateIp:80 with its own instance_id"}


def bench_kill_moto(ep, runs):
    lc, name = "bench-kill-lc", "bench-kill"
    ep.asg.create_launch_configuration(LaunchConfigurationName=lc, ImageId=SAMPLE_IMAGE, InstanceType="t3.micro")
    ep.asg.create_auto_scaling_group(**seed_group_args(name, lc))
    results = []
    for i in range(runs):
        before = {m["InstanceId"] for m in ep.group(name)["Instances"]}
        victim = sorted(before)[0]
        t0 = time.perf_counter()
        ep.asg.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=False)
        t_listed = None
        for _ in range(2000):
            ms = {m["InstanceId"] for m in ep.group(name)["Instances"]}
            if len(ms - before) >= 1:
                t_listed = time.perf_counter() - t0
                break
            if time.perf_counter() - t0 > 30:
                break
            time.sleep(0.005)
        if t_listed is None:
            raise RuntimeError("moto: no replacement record appeared")
        results.append({"run": i + 1, "replacement_listed_s": round(t_listed, 4)})
    log(f"  moto replacement record listed after {statistics.median(r['replacement_listed_s'] for r in results):.3f} s"
        " (median; records only)")
    ep.asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    wait_group_gone(ep, name, None, [])
    ep.asg.delete_launch_configuration(LaunchConfigurationName=lc)
    return {"runs": results, "median_s": round(statistics.median(r["replacement_listed_s"] for r in results), 4),
            "measure": "records only: moto runs no processes, so there is nothing to kill; "
                       "TerminateInstanceInAutoScalingGroup(ShouldDecrementDesiredCapacity=False) -> "
                       "DescribeAutoScalingGroups lists a replacement"}


# ---- benchmark 3: describe latency at 1,000 instances ---------------------------------------------------------

def scale_group_names(groups):
    return [f"bench-scale-{i:02d}" for i in range(groups)]


def create_scale(ep, groups, per_group, timeout_s):
    lc = "bench-scale-lc"
    ep.asg.create_launch_configuration(LaunchConfigurationName=lc, ImageId=MINIMAL_IMAGE, InstanceType="t3.nano",
                                       UserData=SLEEP_USER_DATA)
    t0 = time.perf_counter()
    names = scale_group_names(groups)
    for name in names:
        ep.asg.create_auto_scaling_group(AutoScalingGroupName=name, LaunchConfigurationName=lc, MinSize=0,
                                         MaxSize=per_group, DesiredCapacity=per_group, AvailabilityZones=ZONES)
    t_calls = time.perf_counter() - t0
    want = groups * per_group
    last_report = 0.0
    t_done = None
    best, t_best = -1, time.perf_counter()
    for _ in range(100000):
        gs = ep.asg.describe_auto_scaling_groups(AutoScalingGroupNames=names)["AutoScalingGroups"]
        insvc = sum(1 for g in gs for m in g["Instances"] if m["LifecycleState"] == "InService")
        elapsed = time.perf_counter() - t0
        if insvc >= want:
            t_done = elapsed
            break
        if elapsed - last_report > 10:
            log(f"    {insvc}/{want} InService after {elapsed:.0f} s")
            last_report = elapsed
        if insvc > best:
            best, t_best = insvc, time.perf_counter()
        if elapsed > timeout_s or time.perf_counter() - t_best > 60:
            raise RuntimeError(f"only {insvc}/{want} instances InService after {elapsed:.0f} s")
        time.sleep(0.25)
    return {"create_calls_s": round(t_calls, 3), "all_inservice_s": round(t_done, 3), "instances": want}


def count_in_xml(data, tag):
    return data.count(f"<{tag}>".encode())


def latency_series(ep, label, boto_call, raw_params, raw_service, calls, time_cap_s, warmup=20):
    """Times `calls` sequential boto3 calls and `calls` raw pre-signed calls (each capped at time_cap_s)."""
    out = {}
    for _ in range(warmup):
        boto_call()
    load0 = os.getloadavg()[0]
    lat = []
    t_start = time.monotonic()
    for _ in range(calls):
        t0 = time.perf_counter()
        boto_call()
        lat.append(time.perf_counter() - t0)
        if time.monotonic() - t_start > time_cap_s:
            break
    out["boto3"] = summarize_ms(lat)
    out["boto3"]["capped"] = len(lat) < calls
    out["boto3"]["loadavg_1m"] = [round(load0, 2), round(os.getloadavg()[0], 2)]

    for variant, quick in (("raw", False), ("raw_quickack", True)):
        raw = ep.raw()
        try:
            for _ in range(warmup):
                dt, status, data = raw.call(raw_service, raw_params, quick)
                if status != 200:
                    raise RuntimeError(f"{label}: HTTP {status}: {data[:300]!r}")
            size = len(data)
            raw.connects = 0
            load0 = os.getloadavg()[0]
            lat = []
            errors = 0
            t_start = time.monotonic()
            for _ in range(calls):
                dt, status, data = raw.call(raw_service, raw_params, quick)
                if status != 200:
                    errors += 1
                    continue
                lat.append(dt)
                if time.monotonic() - t_start > time_cap_s:
                    break
            out[variant] = summarize_ms(lat)
            out[variant].update({"capped": len(lat) + errors < calls, "errors": errors, "response_bytes": size,
                                 "new_connections": raw.connects,
                                 # 1-minute load average of the machine before and after the series
                                 "loadavg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)]})
        finally:
            raw.close()
    log(f"    {ep.kind:8s} {label:30s} ({out['raw']['n']} calls, {size} B) p50/p99 ms: "
        f"boto3 {out['boto3']['p50_ms']:.2f}/{out['boto3']['p99_ms']:.2f}  raw {out['raw']['p50_ms']:.2f}/"
        f"{out['raw']['p99_ms']:.2f}  raw+quickack {out['raw_quickack']['p50_ms']:.2f}/"
        f"{out['raw_quickack']['p99_ms']:.2f}  load {out['raw_quickack']['loadavg_1m']}")
    return out


def bench_describe(ep, groups, per_group, calls, time_cap_s):
    names = scale_group_names(groups)
    one = names[len(names) // 2]
    res = {}
    # Sanity: every series sees what it should.
    raw = ep.raw()
    try:
        _, st, data = raw.call("autoscaling", {"Action": "DescribeAutoScalingGroups", "Version": "2011-01-01"})
        res["all_groups_instances_listed"] = count_in_xml(data, "InstanceId")
        _, st, data = raw.call("ec2", {"Action": "DescribeInstances", "Version": "2016-11-15"})
        res["describe_instances_listed"] = count_in_xml(data, "instanceId")
    finally:
        raw.close()
    if res["all_groups_instances_listed"] != groups * per_group:
        raise RuntimeError(f"{ep.kind}: DescribeAutoScalingGroups lists {res['all_groups_instances_listed']} "
                           f"instances, expected {groups * per_group}")
    res["describe_asg_all"] = latency_series(
        ep, "DescribeASG (all groups)", lambda: ep.asg.describe_auto_scaling_groups(),
        {"Action": "DescribeAutoScalingGroups", "Version": "2011-01-01"}, "autoscaling", calls, time_cap_s)
    res["describe_asg_one"] = latency_series(
        ep, f"DescribeASG ({one})", lambda: ep.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[one]),
        {"Action": "DescribeAutoScalingGroups", "Version": "2011-01-01", "AutoScalingGroupNames.member.1": one},
        "autoscaling", calls, time_cap_s)
    res["describe_instances"] = latency_series(
        ep, "ec2 DescribeInstances (all)", lambda: ep.ec2.describe_instances(),
        {"Action": "DescribeInstances", "Version": "2016-11-15"}, "ec2", max(calls // 2, 1), time_cap_s)
    return res


def sample_cpu(pid, seconds):
    c0, t0 = proc_cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = proc_cpu_seconds(pid), time.monotonic()
    if c0 is None or c1 is None:
        return None
    return round(100.0 * (c1 - c0) / (t1 - t0), 1)


def settle_rss(pid, seconds=2.0):
    time.sleep(seconds)
    return proc_status_kb(pid)


# ---- report -----------------------------------------------------------------------------------------------------

def fmt_s(v):
    return "-" if v is None else f"{v:.3f} s"


def fmt_ms(v):
    return "-" if v is None else f"{v:.2f} ms"


def fmt_mb(kb):
    return "-" if kb is None else f"{kb / 1024:.1f} MB"


def verdict(value, target):
    if value is None:
        return ""
    return "met" if value <= target else "MISSED"


def build_rows(r):
    ap, mo = r.get("autopipe", {}), r.get("moto", {})
    rows = []

    def get(d, *path):
        for p in path:
            if not isinstance(d, dict) or p not in d:
                return None
            d = d[p]
        return d

    runs = r["config"]["runs"]
    v = get(ap, "create", "median_s")
    rows.append((f"1. create -> 5 serving HTTP (median of {runs})", fmt_s(v),
                 fmt_s(get(mo, "create", "median_s")) + " records only" if get(mo, "create") else "-",
                 "<= 2 s", verdict(v, TARGETS["create_to_serving_s"])))
    v = get(ap, "kill", "median_s")
    rows.append((f"2. kill -9 -> replacement serving (median of {runs})", fmt_s(v),
                 (fmt_s(get(mo, "kill", "median_s")) + " records only*") if get(mo, "kill") else "n/a",
                 "<= 2 s", verdict(v, TARGETS["kill_to_replacement_serving_s"])))
    n = r["config"]["groups"] * r["config"]["per_group"]
    def quad(d):
        if not d:
            return "-"
        return f"{d['p50_ms']:.2f} / {d['p90_ms']:.2f} / {d['p99_ms']:.2f} / {d['max_ms']:.2f}"

    rows.append((f"3. Describe latency, {n} instances (ms)", "p50 / p90 / p99 / max", "p50 / p90 / p99 / max", "", ""))
    for key, label in (("describe_asg_all", "DescribeAutoScalingGroups, all 10"),
                       ("describe_asg_one", "DescribeAutoScalingGroups, one group"),
                       ("describe_instances", "ec2 DescribeInstances, all")):
        for client, cname in (("raw", "raw"), ("raw_quickack", "raw+quickack"), ("boto3", "boto3")):
            a = get(ap, "describe", key, client)
            m = get(mo, "describe", key, client)
            target, verd = "", ""
            if key == "describe_asg_all" and client != "boto3":
                target = "p99 <= 5 ms"
                if n >= 1000:  # the target is set for 1,000 instances
                    verd = verdict(a["p99_ms"], TARGETS["describe_all_p99_ms"]) if a else ""
                else:
                    target += " @1000"
            rows.append((f"   {label}: {cname}", quad(a), quad(m), target, verd))
    rss_idle = get(ap, "rss", "idle_kb")
    rows.append(("4. RSS idle, no groups", fmt_mb(rss_idle), fmt_mb(get(mo, "rss", "idle_kb")), "<= 50 MB",
                 verdict(rss_idle / 1024 if rss_idle else None, TARGETS["idle_rss_mb"])))
    rows.append((f"   RSS with {n} instances' records", fmt_mb(get(ap, "rss", "scale_kb")),
                 fmt_mb(get(mo, "rss", "scale_kb")), "", ""))
    rows.append((f"   time to {n} InService (10 CreateASG calls)", fmt_s(get(ap, "scale", "all_inservice_s")),
                 fmt_s(get(mo, "scale", "all_inservice_s")), "", ""))
    cpu = get(ap, "scale", "idle_cpu_percent")
    rows.append((f"   server CPU, idle with {n} instances", "-" if cpu is None else f"{cpu:.1f} %",
                 "-" if get(mo, "scale", "idle_cpu_percent") is None else f"{get(mo, 'scale', 'idle_cpu_percent'):.1f} %",
                 "", ""))
    return rows


def print_table(rows):
    header = ("benchmark", "autopipe", "moto_server", "target", "")
    widths = [max(len(str(x[i])) for x in rows + [header]) for i in range(5)]
    line = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    print()
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))
    print()
    print("moto_server serves nothing: its figures in 1 are records only (DescribeAutoScalingGroups lists 5\n"
          "instances); * in 2 it has no process to kill, so TerminateInstanceInAutoScalingGroup stands in.\n"
          "raw = pre-signed http.client requests on one keep-alive connection (signing outside the timed region);\n"
          "raw+quickack = the same with TCP_QUICKACK set after each send: a server that writes headers and body\n"
          "in two send() calls without TCP_NODELAY loses ~40 ms per reply to Nagle x delayed ACK, which this\n"
          "removes, so it is the server's own time; moto_server closes the connection after every response.\n"
          "boto3 = one keep-alive client, including botocore's serialisation and XML parsing.")


# ---- main -------------------------------------------------------------------------------------------------------

def check_capacity(instances):
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    need = 2 * instances + 200
    running = process_count()
    avail = mem_available_mb()
    info = {"ulimit_u": "unlimited" if soft == resource.RLIM_INFINITY else soft, "processes_now": running,
            "processes_needed": need, "mem_available_mb": avail}
    if soft != resource.RLIM_INFINITY and running + need > soft:
        raise RuntimeError(f"ulimit -u {soft} is too low for {need} more processes ({running} running)")
    if avail is not None and avail < 2048:
        raise RuntimeError(f"only {avail} MB available; want >= 2 GB for {instances} instances")
    return info


def snapshot_binary(src, tmp):
    """Copies the binary so a concurrent rebuild of build/autopipe cannot pull it away mid-run (instances run
    the server's own executable). Retries while the linker is writing it."""
    dst = os.path.join(tmp, "autopipe")
    for attempt in range(30):
        try:
            before = os.stat(src)
            if time.time() - before.st_mtime < 2:
                raise OSError("binary is being written")
            shutil.copy2(src, dst)
            if os.stat(src).st_mtime == before.st_mtime:
                os.chmod(dst, 0o755)
                return dst, time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(before.st_mtime))
        except OSError as e:
            log(f"  waiting for {src}: {e}")
        time.sleep(2)
    raise RuntimeError(f"could not copy {src}")


def run_autopipe(args, res, tmp):
    binary, mtime = snapshot_binary(args.bin, tmp)
    a = {"binary": args.bin, "binary_mtime": mtime}
    res["autopipe"] = a
    # Server A: idle RSS, benchmarks 1 and 2.
    srv = AutopipeServer(binary, os.path.join(tmp, "autopipe-a"), free_port(), args.block_a)
    try:
        log(f"autopipe server A on port {srv.port}, address block {srv.block}")
        ep = srv.start()
        ep.asg.describe_auto_scaling_groups()  # touch the API once, as moto is
        a["rss"] = {"idle_kb": settle_rss(srv.pid, 2.0), "idle_threads": proc_threads(srv.pid)}
        a["idle_cpu_percent_no_groups"] = sample_cpu(srv.pid, 3.0)
        log(f"  idle RSS {fmt_mb(a['rss']['idle_kb'])}, CPU {a['idle_cpu_percent_no_groups']} %")
        if not args.skip_create:
            log("benchmark 1 (autopipe): create -> 5 serving")
            a["create"] = bench_create_autopipe(ep, srv, args.runs)
        if not args.skip_kill:
            log("benchmark 2 (autopipe): kill -9 -> replacement serving")
            a["kill"] = bench_kill_autopipe(ep, srv, args.runs)
        a["rss"]["after_bench_1_2_kb"] = proc_status_kb(srv.pid)
    finally:
        took = srv.down()
        log(f"  autopipe down (server A) took {took:.2f} s" if took is not None else "  server A not started")

    if args.skip_scale:
        return
    n = args.groups * args.per_group
    a["capacity"] = check_capacity(n)
    srv = AutopipeServer(binary, os.path.join(tmp, "autopipe-b"), free_port(), args.block_b)
    try:
        log(f"autopipe server B on port {srv.port}, address block {srv.block}: {args.groups} x {args.per_group}")
        ep = srv.start()
        ep.asg.describe_auto_scaling_groups()
        a["rss"]["idle_fresh_b_kb"] = settle_rss(srv.pid, 2.0)
        mem0 = mem_available_mb()
        cpu0 = proc_cpu_seconds(srv.pid)
        log(f"benchmark 3 (autopipe): creating {n} instances")
        a["scale"] = create_scale(ep, args.groups, args.per_group, args.scale_timeout)
        a["scale"]["server_cpu_s_during_create"] = round(proc_cpu_seconds(srv.pid) - cpu0, 2)
        log(f"  {n} InService after {a['scale']['all_inservice_s']:.1f} s")
        time.sleep(3)
        procs = instance_pids(srv.data_dir)
        a["scale"]["instance_processes"] = len(procs)
        a["scale"]["mem_used_by_instances_mb"] = mem0 - mem_available_mb()
        a["scale"]["idle_cpu_percent"] = sample_cpu(srv.pid, 5.0)
        a["scale"]["server_threads"] = proc_threads(srv.pid)
        a["rss"]["scale_kb"] = proc_status_kb(srv.pid)
        log(f"  {len(procs)} instance processes; server RSS {fmt_mb(a['rss']['scale_kb'])}, "
            f"idle CPU {a['scale']['idle_cpu_percent']} %")
        log("  describe latency (autopipe)")
        a["describe"] = bench_describe(ep, args.groups, args.per_group, args.calls, args.time_cap)
        a["rss"]["scale_after_describe_kb"] = proc_status_kb(srv.pid)
    finally:
        took = srv.down()
        a["down_with_scale_s"] = round(took, 2) if took is not None else None
        log(f"  autopipe down (server B) took {took:.2f} s" if took is not None else "  server B not started")


def run_moto(args, res, tmp):
    m = {"version": importlib.metadata.version("moto")}
    res["moto"] = m
    srv = MotoServer(free_port(), os.path.join(tmp, "moto-a.log"))
    try:
        log(f"moto_server A on port {srv.port}")
        ep = srv.start()
        m["rss"] = {"fresh_kb": settle_rss(srv.pid, 1.0)}
        ep.asg.describe_auto_scaling_groups()  # moto loads a service's backend on its first request
        ep.ec2.describe_instances()
        m["rss"]["idle_kb"] = settle_rss(srv.pid, 2.0)
        log(f"  idle RSS {fmt_mb(m['rss']['idle_kb'])} (fresh {fmt_mb(m['rss']['fresh_kb'])})")
        if not args.skip_create:
            log("benchmark 1 (moto): create -> 5 listed")
            m["create"] = bench_create_moto(ep, args.runs)
        if not args.skip_kill:
            log("benchmark 2 (moto): terminate -> replacement listed")
            m["kill"] = bench_kill_moto(ep, args.runs)
    finally:
        srv.stop()
    if args.skip_scale:
        return
    srv = MotoServer(free_port(), os.path.join(tmp, "moto-b.log"))
    try:
        log(f"moto_server B on port {srv.port}: {args.groups} x {args.per_group}")
        ep = srv.start()
        ep.asg.describe_auto_scaling_groups()
        ep.ec2.describe_instances()
        cpu0 = proc_cpu_seconds(srv.pid)
        m["scale"] = create_scale(ep, args.groups, args.per_group, args.scale_timeout)
        m["scale"]["server_cpu_s_during_create"] = round(proc_cpu_seconds(srv.pid) - cpu0, 2)
        time.sleep(1)
        m["scale"]["idle_cpu_percent"] = sample_cpu(srv.pid, 5.0)
        m["rss"]["scale_kb"] = proc_status_kb(srv.pid)
        log(f"  RSS with {args.groups * args.per_group} instances {fmt_mb(m['rss']['scale_kb'])}")
        log("  describe latency (moto)")
        m["describe"] = bench_describe(ep, args.groups, args.per_group, args.calls, args.time_cap)
        m["rss"]["scale_after_describe_kb"] = proc_status_kb(srv.pid)
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small smoke run: 2 runs, 10x10 instances, 200 calls")
    ap.add_argument("--bin", default=os.environ.get("AUTOPIPE_BIN", DEFAULT_BIN))
    ap.add_argument("--runs", type=int, default=None, help="runs of benchmarks 1 and 2 (default 5)")
    ap.add_argument("--groups", type=int, default=None, help="groups for benchmark 3 (default 10)")
    ap.add_argument("--per-group", type=int, default=None, help="instances per group (default 100)")
    ap.add_argument("--calls", type=int, default=None, help="calls per latency series (default 2000)")
    ap.add_argument("--time-cap", type=float, default=150.0, help="seconds at most per latency series")
    ap.add_argument("--scale-timeout", type=float, default=600.0)
    ap.add_argument("--block-a", default="127.251", help="address block of server A (benchmarks 1, 2)")
    ap.add_argument("--block-b", default="127.252", help="address block of server B (benchmark 3)")
    ap.add_argument("--skip-moto", action="store_true")
    ap.add_argument("--skip-autopipe", action="store_true")
    ap.add_argument("--skip-create", action="store_true")
    ap.add_argument("--skip-kill", action="store_true")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--keep-data", action="store_true", help="keep the data dirs (server.log) for inspection")
    ap.add_argument("--results-dir", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    q = args.quick
    args.runs = args.runs or (2 if q else 5)
    args.groups = args.groups or 10
    args.per_group = args.per_group or (10 if q else 100)
    args.calls = args.calls or (200 if q else 2000)
    for block in (args.block_a, args.block_b):
        if not re.fullmatch(r"127\.\d{1,3}", block) or not 1 <= int(block.split(".")[1]) <= 255:
            sys.exit(f"address blocks must be 127.N (loopback only), not {block}")
        if block_in_use(block):
            sys.exit(f"address block {block} is in use by another region; pick another with --block-a/--block-b")
    if not os.access(args.bin, os.X_OK) and not args.skip_autopipe:
        sys.exit(f"no autopipe binary at {args.bin}; build it with cmake --build build --target autopipe")

    # SIGTERM/SIGHUP unwind through the finally blocks like Ctrl-C does.
    def stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)

    stamp = time.strftime("%Y%m%dT%H%M%S")
    res = {
        "benchmark": "asg_bench",
        "timestamp": stamp,
        "config": {"quick": q, "runs": args.runs, "groups": args.groups, "per_group": args.per_group,
                   "calls": args.calls, "time_cap_s": args.time_cap, "region": REGION},
        "host": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                 "boto3": boto3.__version__, "botocore": botocore.__version__,
                 "mem_available_mb": mem_available_mb()},
        "targets": TARGETS,
    }
    tmp = tempfile.mkdtemp(prefix="asg_bench-")
    log(f"data dirs under {tmp}")
    failed = None
    try:
        if not args.skip_autopipe:
            run_autopipe(args, res, tmp)
        if not args.skip_moto:
            run_moto(args, res, tmp)
    except BaseException as e:  # report what was measured, then fail
        failed = e
        res["error"] = f"{type(e).__name__}: {e}"
        log(f"ERROR: {res['error']}")
    finally:
        if args.keep_data or failed:
            log(f"data kept in {tmp}")
            res["data_dir"] = tmp
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print_table(build_rows(res))
    os.makedirs(args.results_dir, exist_ok=True)
    path = os.path.join(args.results_dir, f"asg_bench-{stamp}{'-quick' if q else ''}.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=1, sort_keys=False)
        f.write("\n")
    print(f"\nresults: {os.path.relpath(path, REPO)}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
