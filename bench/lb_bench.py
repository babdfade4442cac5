#!/usr/bin/env python3
"""Load balancer benchmark: the autopipe lb node side by side with HAProxy 2.6 and nginx as a reverse proxy.

Two nginx back ends (one process each) serve the same ~200-byte JSON reply at / on 127.253.0.1:8081 and
127.253.0.2:8081. In front of them, each on its own address, port 8080:

  ours     `autopipe lb --config FILE` (threads 2) on 127.253.0.10
  haproxy  HAProxy (nbthread 2, mode http, leastconn, http-reuse always, httpchk every 1 s) on 127.253.0.11
  nginx    nginx (2 workers, least_conn, upstream keepalive 64, HTTP/1.1 to the back ends) on 127.253.0.12
  direct   no proxy: straight to back end 127.253.0.1:8081 (the baseline for added latency)

For each target, in interleaved rounds (the order rotates each round):
  throughput  wrk -t2 -c64 -dDURATION --latency   -> requests/s, p50, p90, p99
  light load  wrk -t1 -c1  -dLIGHT    --latency   -> p50, p99; added latency = target p50 - direct p50
and after each throughput run the RSS of the proxy's processes and the CPU seconds they used per 100k requests.
Medians over rounds are reported. Before a target is timed, a GET through it must return the back ends' body;
our node must also report both back ends healthy in its status.json (bounded 15 s).

Everything runs on loopback in a temp dir; every process started is stopped by PID in a `finally` (Ctrl-C and
SIGTERM included). Results: a markdown section appended to bench/results/lb-<YYYY-MM-DD>.md and the raw figures
in bench/results/lb-<timestamp>.json.

Usage: python3 bench/lb_bench.py [--quick] [--targets ours,haproxy,nginx,direct] [--rounds N] [--duration S]
"""

import argparse
import datetime
import http.client
import json
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

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TEMPLATES = os.path.join(HERE, "lb")
DEFAULT_BIN = os.path.join(REPO, "build", "autopipe")
CLK_TCK = os.sysconf("SC_CLK_TCK")
NPROC = os.cpu_count() or 1

BLOCK = "127.253."
BACKENDS = [("b1", "i-00000000000000001", "127.253.0.1"), ("b2", "i-00000000000000002", "127.253.0.2")]
BACKEND_PORT = 8081
PROXY_PORT = 8080
ALL_TARGETS = ["ours", "haproxy", "nginx", "direct"]
ALIASES = {"autopipe": "ours", "lb": "ours", "node": "ours", "ha": "haproxy", "nginx-proxy": "nginx"}
TARGET_ADDR = {"ours": "127.253.0.10", "haproxy": "127.253.0.11", "nginx": "127.253.0.12", "direct": "127.253.0.1"}
TARGET_LABEL = {"ours": "autopipe lb node", "haproxy": "HAProxy", "nginx": "nginx proxy",
                "direct": "direct (no proxy)"}

# A JSON API-style reply of exactly 200 bytes, the same on both back ends.
BODY = ('{"request_id":"5f0c2a7e-8b1d-4c3a-9e6f-2d4b7a1c0e93","status":"ok","region":"us-west-2",'
        '"items":[{"id":"i-0a1b2c3d4e5f60718","state":"running"},{"id":"i-0f1e2d3c4b5a69788",'
        '"state":"running"}],"n":2}')
BODY = BODY + " " * (199 - len(BODY)) + "\n"
assert len(BODY) == 200, len(BODY)

GOALS = {"rps_vs_haproxy": 1.2, "added_p50_us": 100.0, "rss_mb": 30.0}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- /proc helpers --------------------------------------------------------------------------------------------

def proc_stat_fields(pid):
    """Fields of /proc/PID/stat after the command name (index 0 = state), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def proc_start_time(pid):
    f = proc_stat_fields(pid)
    return int(f[19]) if f else None


def proc_cpu_seconds(pid):
    f = proc_stat_fields(pid)
    if not f:
        return None
    return (int(f[11]) + int(f[12])) / CLK_TCK  # utime + stime, all threads


def proc_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def pid_alive(pid, start_time=None):
    f = proc_stat_fields(pid)
    if not f or f[0] in ("Z", "X"):
        return False
    return start_time is None or int(f[19]) == start_time


def child_pids(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            f = proc_stat_fields(int(d))
            if f and int(f[1]) == pid:
                out.append(int(d))
    return out


def machine_cpu():
    """(busy jiffies, total jiffies) over all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return total - idle, total


def block_listeners():
    """Local addresses:ports in 127.253.0.0/16 that something is listening on."""
    found = []
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[3] != "0A":  # LISTEN
                    continue
                addr, port = cols[1].split(":")
                octets = bytes.fromhex(addr)[::-1]
                if octets[0] == 127 and octets[1] == 253:
                    found.append(f"{'.'.join(map(str, octets))}:{int(port, 16)}")
    except OSError:
        pass
    return found


def wait_until(pred, timeout_s, interval_s=0.05):
    """Calls pred() until it returns a truthy value; bounded by time and by count."""
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / interval_s) + 10):
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval_s)
    return None


def port_open(addr, port):
    try:
        with socket.create_connection((addr, port), timeout=0.3):
            return True
    except OSError:
        return False


def http_get(addr, port, path="/", timeout=2.0):
    """-> (status, body bytes) on a fresh connection, or (None, error text)."""
    conn = http.client.HTTPConnection(addr, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        r = conn.getresponse()
        return r.status, r.read()
    except (OSError, http.client.HTTPException) as e:
        return None, str(e)
    finally:
        conn.close()


def render(template_name, **values):
    with open(os.path.join(TEMPLATES, template_name)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace(f"@@{k}@@", str(v))
    left = re.findall(r"@@[A-Z_]+@@", text)
    if left:
        raise RuntimeError(f"{template_name}: unfilled placeholders {left}")
    return text


def tool_version(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"
    text = (p.stdout + p.stderr).strip().splitlines()
    return text[0].strip() if text else "?"


# ---- processes ------------------------------------------------------------------------------------------------

class Proc:
    """One process this script started (in its own session, so Ctrl-C reaches only us), plus the children it
    forks (nginx workers), all remembered by (pid, start time) and stopped by PID."""

    all = []

    def __init__(self, name, argv, cwd, log_path):
        self.name = name
        self.log_path = log_path
        self.out = open(log_path, "ab")
        self.popen = subprocess.Popen(argv, cwd=cwd, stdout=self.out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.popen.pid
        self.children = []  # [(pid, start time)]
        Proc.all.append(self)

    def alive(self):
        return self.popen.poll() is None

    def note_children(self):
        self.children = [(c, proc_start_time(c)) for c in child_pids(self.pid)]

    def pids(self):
        return [self.pid] + [c for c, st in self.children if pid_alive(c, st)]

    def rss_kb(self):
        vals = [proc_rss_kb(p) for p in self.pids()]
        return sum(v for v in vals if v)

    def cpu_seconds(self):
        vals = [proc_cpu_seconds(p) for p in self.pids()]
        return sum(v for v in vals if v is not None)

    def log_tail(self, n=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout_s=12.0):
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log(f"{self.name} (pid {self.pid}) still running {timeout_s:.0f} s after SIGTERM; SIGKILL")
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(timeout=10)
        for c, st in self.children:
            if wait_until(lambda: not pid_alive(c, st), 3.0) is None and pid_alive(c, st):
                log(f"{self.name}: child pid {c} outlived its parent; SIGKILL")
                try:
                    os.kill(c, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.out.close()


def stop_all():
    for p in reversed(Proc.all):
        try:
            p.stop()
        except Exception as e:  # keep stopping the others
            log(f"stopping {p.name}: {e}")
    Proc.all.clear()


class Target:
    def __init__(self, name):
        self.name = name
        self.label = TARGET_LABEL[name]
        self.addr = TARGET_ADDR[name]
        self.port = BACKEND_PORT if name == "direct" else PROXY_PORT
        self.proc = None        # the proxy process (None for direct)
        self.skip_reason = None
        self.ready_s = None     # start -> verified
        self.checks = {}        # pre-flight results
        self.runs = []          # throughput runs
        self.light = []         # light-load runs
        self.rss_kb = []        # after each throughput run
        self.quiet = []         # machine busy % just before each round's runs
        self.wrk_requests_total = 0  # every response wrk completed through this target (warm-up, repeats too)

    @property
    def url(self):
        return f"http://{self.addr}:{self.port}/"


def start_backends(tmp):
    procs = []
    for name, _iid, addr in BACKENDS:
        d = os.path.join(tmp, f"backend-{name}")
        os.makedirs(d)
        conf = render("backend-nginx.conf", DIR=d, ADDR=addr, PORT=BACKEND_PORT, BODY=BODY, NAME=name)
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(conf)
        procs.append(Proc(f"backend {name}", ["nginx", "-p", d, "-c", "nginx.conf"], d,
                          os.path.join(d, "stdout.log")))
    for p, (name, _iid, addr) in zip(procs, BACKENDS):
        ok = wait_until(lambda: (not p.alive()) or port_open(addr, BACKEND_PORT), 10)
        if not p.alive() or not ok:
            raise RuntimeError(f"back end {name} did not start:\n{p.log_tail()}")
        status, body = http_get(addr, BACKEND_PORT)
        if status != 200 or body != BODY.encode():
            raise RuntimeError(f"back end {name} answered {status} {body[:80]!r}")
    return procs


def start_haproxy(tmp, t, threads):
    d = os.path.join(tmp, "haproxy")
    os.makedirs(d)
    servers = "\n".join(f"    server {name} {addr}:{BACKEND_PORT} check inter 1s" for name, _i, addr in BACKENDS)
    with open(os.path.join(d, "haproxy.cfg"), "w") as f:
        f.write(render("haproxy.cfg", DIR=d, ADDR=t.addr, PORT=t.port, THREADS=threads, SERVERS=servers))
    check = subprocess.run(["haproxy", "-c", "-f", os.path.join(d, "haproxy.cfg")], capture_output=True, text=True,
                           timeout=20)
    if check.returncode != 0:
        raise RuntimeError(f"haproxy -c refused the config:\n{check.stdout}{check.stderr}")
    return Proc("haproxy", ["haproxy", "-db", "-f", os.path.join(d, "haproxy.cfg")], d, os.path.join(d, "out.log"))


def start_nginx_proxy(tmp, t, threads):
    d = os.path.join(tmp, "nginx-proxy")
    os.makedirs(d)
    servers = "\n".join(f"        server {addr}:{BACKEND_PORT};" for _n, _i, addr in BACKENDS)
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(render("proxy-nginx.conf", DIR=d, ADDR=t.addr, PORT=t.port, THREADS=threads, SERVERS=servers))
    return Proc("nginx proxy", ["nginx", "-p", d, "-c", "nginx.conf"], d, os.path.join(d, "stdout.log"))


def start_node(tmp, t, binary, threads, hc_interval):
    d = os.path.join(tmp, "node")
    os.makedirs(d)
    backends = json.dumps([{"id": iid, "address": addr, "availability_zone": "us-west-2a", "draining": False}
                           for _n, iid, addr in BACKENDS])
    conf = render("node.json", DIR=d, ADDR=t.addr, PORT=t.port, BACKEND_PORT=BACKEND_PORT, BACKENDS=backends,
                  THREADS=threads, HC_INTERVAL=hc_interval)
    json.loads(conf)  # the template must stay valid JSON
    path = os.path.join(d, "config.json")
    with open(path, "w") as f:
        f.write(conf)
    return Proc("autopipe lb", [binary, "lb", "--config", path], d, os.path.join(d, "node.log"))


def node_health(status_path):
    """{backend id: health} from the node's status.json, or {} while it has none."""
    try:
        with open(status_path) as f:
            st = json.load(f)
    except (OSError, ValueError):
        return {}
    out = {}
    for b in st.get("backends", []) if isinstance(st, dict) else []:
        if isinstance(b, dict) and "id" in b:
            out[b["id"]] = b.get("health") or b.get("state") or "?"
    return out


def verify(t, timeout_s):
    """Waits until the target listens and proxies: GET / returns the back ends' body. Then sends /whoami on
    fresh connections to see which back ends answer and what X-Forwarded-For they get."""
    t0 = time.monotonic()

    def answers():
        if t.proc is not None and not t.proc.alive():
            raise RuntimeError(f"{t.label} exited with {t.proc.popen.returncode}:\n{t.proc.log_tail()}")
        status, body = http_get(t.addr, t.port, timeout=1.0)
        return status == 200 and body == BODY.encode()

    if t.name == "ours":
        status_path = os.path.join(os.path.dirname(t.proc.log_path), "status.json")
        want = {iid for _n, iid, _a in BACKENDS}
        def both_healthy():
            if not t.proc.alive():
                raise RuntimeError(f"{t.label} exited with {t.proc.popen.returncode}:\n{t.proc.log_tail()}")
            return want <= {k for k, v in node_health(status_path).items() if v == "healthy"}

        healthy = wait_until(both_healthy, timeout_s, 0.1)
        t.checks["status_json_health"] = node_health(status_path)
        t.checks["both_healthy_after_s"] = round(time.monotonic() - t0, 2) if healthy else None
        if not healthy:
            log(f"  {t.label}: status.json does not show both back ends healthy after {timeout_s:.0f} s "
                f"({t.checks['status_json_health']}); going on if a GET succeeds")
    if not wait_until(answers, max(1.0, timeout_s - (time.monotonic() - t0)), 0.1):
        status, body = http_get(t.addr, t.port, timeout=2.0)
        raise RuntimeError(f"{t.label} at {t.url} does not proxy: GET / -> {status} {str(body)[:200]}")
    t.ready_s = round(time.monotonic() - t0, 2)
    seen, xff = {}, set()
    for _ in range(12):
        status, body = http_get(t.addr, t.port, "/whoami")
        if status != 200:
            raise RuntimeError(f"{t.label}: GET /whoami -> {status} {str(body)[:200]}")
        try:
            j = json.loads(body)
        except ValueError:
            raise RuntimeError(f"{t.label}: GET /whoami returned {body[:200]!r}")
        seen[j["backend"]] = seen.get(j["backend"], 0) + 1
        xff.add(j["xff"])
    t.checks["whoami_backends"] = seen
    t.checks["x_forwarded_for"] = sorted(xff)
    if t.name != "direct" and len(seen) < 2:
        log(f"  warning: {t.label} sent all 12 fresh-connection requests to {list(seen)}")


# ---- wrk ------------------------------------------------------------------------------------------------------

UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def to_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"cannot parse wrk time {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(out):
    r = {}
    m = re.search(r"Latency Distribution\s*\n((?:\s+\d+(?:\.\d+)?%\s+\S+\s*\n)+)", out)
    if not m:
        raise ValueError("no Latency Distribution block in wrk output:\n" + out)
    for pct, val in re.findall(r"(\d+(?:\.\d+)?)%\s+(\S+)", m.group(1)):
        r[f"p{int(float(pct))}_us"] = to_us(val)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    r["requests"] = int(m.group(1)) if m else None
    r["seconds"] = to_us(m.group(2) + m.group(3)) / 1e6 if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = dict(zip(["connect", "read", "write", "timeout"], map(int, m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Latency\s+([\d.]+\w+)\s+([\d.]+\w+)\s+([\d.]+\w+)", out)
    if m:
        r["mean_us"], r["max_us"] = to_us(m.group(1)), to_us(m.group(3))
    return r


def run_wrk(t, threads, conns, duration, backends, wrk_cmd="wrk"):
    """One wrk run against target t, with the CPU used by the proxy, the back ends, wrk and the machine."""
    argv = [wrk_cmd, f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency", t.url]
    proxy_cpu0 = t.proc.cpu_seconds() if t.proc else None
    be_cpu0 = sum(b.cpu_seconds() for b in backends)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    m0 = machine_cpu()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True, text=True)
    try:
        out, _ = p.communicate(timeout=duration + 30)
    except BaseException:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
        raise
    m1 = machine_cpu()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {p.returncode}:\n{out}")
    r = parse_wrk(out)
    r["cmd"] = " ".join(argv)
    req = r.get("requests") or 0
    t.wrk_requests_total += req
    r["wrk_cpu_s"] = round((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime), 3)
    r["backends_cpu_s"] = round(sum(b.cpu_seconds() for b in backends) - be_cpu0, 3)
    if t.proc:
        r["proxy_cpu_s"] = round(t.proc.cpu_seconds() - proxy_cpu0, 3)
        r["proxy_cpu_s_per_100k"] = round(r["proxy_cpu_s"] / req * 1e5, 4) if req else None
    total_s = (m1[1] - m0[1]) / CLK_TCK  # jiffies of all CPUs
    busy_s = (m1[0] - m0[0]) / CLK_TCK
    r["machine_busy_pct"] = round(100.0 * busy_s / max(1e-9, total_s), 1)
    # CPU that neither wrk, the back ends nor this proxy used: other work on the machine (builds, other tests).
    ours_s = r["wrk_cpu_s"] + r["backends_cpu_s"] + (r.get("proxy_cpu_s") or 0.0)
    r["other_cpu_cores"] = round(max(0.0, busy_s - ours_s) / max(1e-9, total_s / NPROC), 2)
    return r


def wait_quiet(limit_s, max_busy_pct=25.0):
    """Waits (at most limit_s) until the machine is below max_busy_pct busy over 1 s while nothing of ours runs.
    Returns the last busy % seen."""
    busy = None
    deadline = time.monotonic() + limit_s
    for _ in range(int(limit_s) + 2):
        a = machine_cpu()
        time.sleep(1.0)
        b = machine_cpu()
        busy = 100.0 * (b[0] - a[0]) / max(1, b[1] - a[1])
        if busy <= max_busy_pct or time.monotonic() >= deadline:
            break
    return round(busy, 1)


# ---- reporting ------------------------------------------------------------------------------------------------

def med(values):
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def summarize(t, direct, quiet_only=False):
    """Medians over the rounds; quiet_only keeps only the runs during which other processes stayed under
    --max-other cores (throughput and 1-connection runs are filtered separately)."""
    keep = (lambda rs: [r for r in rs if r.get("quiet")]) if quiet_only else (lambda rs: list(rs))
    runs, light = keep(t.runs), keep(t.light)
    dlight = keep(direct.light) if direct is not None else []
    s = {"label": t.label, "rounds": len(runs), "light_rounds": len(light),
         "quiet_runs": sum(1 for r in t.runs if r.get("quiet")),
         "quiet_light_runs": sum(1 for r in t.light if r.get("quiet"))}
    if runs:
        s["rps"] = med([r["rps"] for r in runs])
        s["rps_min"] = min(r["rps"] for r in runs)
        s["rps_max"] = max(r["rps"] for r in runs)
        for k in ("p50_us", "p90_us", "p99_us"):
            s[k] = med([r.get(k) for r in runs])
        s["proxy_cpu_s_per_100k"] = med([r.get("proxy_cpu_s_per_100k") for r in runs])
        s["backends_cpu_s_per_100k"] = med([r["backends_cpu_s"] / r["requests"] * 1e5 for r in runs
                                            if r.get("requests")])
        s["wrk_cpu_s_per_100k"] = med([r["wrk_cpu_s"] / r["requests"] * 1e5 for r in runs if r.get("requests")])
        s["machine_busy_pct"] = med([r["machine_busy_pct"] for r in runs])
        s["other_cpu_cores"] = med([r.get("other_cpu_cores") for r in runs])
        s["other_cpu_cores_max"] = max(r.get("other_cpu_cores") or 0 for r in runs + light)
        s["errors"] = sum(sum(r["socket_errors"].values()) + r["non_2xx"] for r in runs)
    if light:
        s["light_rps"] = med([r["rps"] for r in light])
        s["light_p50_us"] = med([r.get("p50_us") for r in light])
        s["light_p99_us"] = med([r.get("p99_us") for r in light])
        s["errors"] = s.get("errors", 0) + sum(sum(r["socket_errors"].values()) + r["non_2xx"] for r in light)
        if dlight and t.name != "direct":
            s["added_p50_us"] = s["light_p50_us"] - med([r.get("p50_us") for r in dlight])
            s["added_p99_us"] = s["light_p99_us"] - med([r.get("p99_us") for r in dlight])
    rss = [r["rss_kb"] for r in runs if r.get("rss_kb")]
    if rss:
        s["rss_mb_max"] = max(rss) / 1024.0
    return s


def fmt(v, spec, unit=""):
    return "–" if v is None else format(v, spec) + unit


def ms(us):
    return "–" if us is None else f"{us / 1000.0:.2f}"


def markdown_table(targets, summaries):
    lines = [
        "| target | req/s (median; min–max) | p50 ms | p90 ms | p99 ms | 1-conn p50 µs | 1-conn p99 µs "
        "| added p50 µs | RSS MB | proxy CPU s / 100k req | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in targets:
        s = summaries[t.name]
        if t.skip_reason:
            lines.append(f"| {t.label} | not measured: {t.skip_reason} |  |  |  |  |  |  |  |  |  |")
            continue
        rps = "–"
        if s.get("rps") is not None:
            rps = f"{s['rps']:,.0f}"
            if s["rounds"] > 1:
                rps += f" ({s['rps_min']:,.0f}–{s['rps_max']:,.0f})"
        lines.append(
            f"| {t.label} | {rps} | {ms(s.get('p50_us'))} | {ms(s.get('p90_us'))} | {ms(s.get('p99_us'))} "
            f"| {fmt(s.get('light_p50_us'), '.0f')} | {fmt(s.get('light_p99_us'), '.0f')} "
            f"| {fmt(s.get('added_p50_us'), '+.0f') if t.name != 'direct' else '(baseline)'} "
            f"| {fmt(s.get('rss_mb_max'), '.1f') if t.name != 'direct' else '–'} "
            f"| {fmt(s.get('proxy_cpu_s_per_100k'), '.3f') if t.name != 'direct' else '–'} "
            f"| {s.get('errors', '–')} |")
    return "\n".join(lines)


def cpu_table(targets, summaries, nproc):
    lines = ["| target | machine CPU busy % | other processes' CPU (cores) | wrk CPU s / 100k req "
             "| back ends CPU s / 100k req | proxy CPU s / 100k req |", "|---|---|---|---|---|---|"]
    for t in targets:
        s = summaries[t.name]
        if t.skip_reason or s.get("rps") is None:
            continue
        lines.append(f"| {t.label} | {fmt(s.get('machine_busy_pct'), '.0f')} | {fmt(s.get('other_cpu_cores'), '.2f')} "
                     f"| {fmt(s.get('wrk_cpu_s_per_100k'), '.3f')} | {fmt(s.get('backends_cpu_s_per_100k'), '.3f')} "
                     f"| {fmt(s.get('proxy_cpu_s_per_100k'), '.3f') if t.name != 'direct' else '–'} |")
    return "\n".join(lines)


def goal_lines(summaries, measured, missing="not measured in this run"):
    out = []
    ours = summaries.get("ours") if "ours" in measured else None
    ha = summaries.get("haproxy") if "haproxy" in measured else None
    if ours and ha and ours.get("rps") and ha.get("rps"):
        ratio = ours["rps"] / ha["rps"]
        ok = ratio >= GOALS["rps_vs_haproxy"] and ours["p99_us"] <= ha["p99_us"]
        out.append(f"- Throughput ≥ 1.2× HAProxy's requests/s with p99 ≤ HAProxy's: ours {ours['rps']:,.0f} req/s = "
                   f"{ratio:.2f}× HAProxy's {ha['rps']:,.0f}; p99 {ms(ours['p99_us'])} ms vs "
                   f"{ms(ha['p99_us'])} ms — **{'met' if ok else 'missed'}**")
    else:
        out.append(f"- Throughput ≥ 1.2× HAProxy's requests/s with p99 ≤ HAProxy's — {missing} "
                   "(needs both our node and HAProxy)")
    if ours and ours.get("added_p50_us") is not None:
        ok = ours["added_p50_us"] <= GOALS["added_p50_us"]
        out.append(f"- Added latency p50 ≤ 100 µs (1 connection, vs direct): {ours['added_p50_us']:+.0f} µs — "
                   f"**{'met' if ok else 'missed'}**")
    else:
        out.append(f"- Added latency p50 ≤ 100 µs — {missing} (needs our node and direct)")
    if ours and ours.get("rss_mb_max") is not None:
        ok = ours["rss_mb_max"] <= GOALS["rss_mb"]
        out.append(f"- RSS per node ≤ 30 MB (after load): {ours['rss_mb_max']:.1f} MB — "
                   f"**{'met' if ok else 'missed'}**")
    else:
        out.append(f"- RSS per node ≤ 30 MB — {missing} (needs a throughput run of our node)")
    return out


def auto_notes(targets, summaries, nproc, args):
    notes = []
    busy = [summaries[t.name].get("machine_busy_pct") for t in targets if summaries[t.name].get("rps")]
    busy = [b for b in busy if b is not None]
    if busy:
        notes.append(f"During the throughput runs the whole machine ({nproc} cores) was {min(busy):.0f}–{max(busy):.0f} % "
                     f"busy: wrk, the proxy and both back ends share the cores, so requests/s measures the "
                     f"whole chain's CPU cost per request rather than the proxy alone.")
    other = [summaries[t.name].get("other_cpu_cores_max") or 0 for t in targets if summaries[t.name].get("rps")]
    if other and max(other) >= 0.1:
        notes.append(f"Other processes on the machine (not wrk, not the back ends, not the proxy) used up to "
                     f"{max(other):.2f} cores during some runs; figures from such runs are depressed (see the "
                     f"per-run `other_cpu_cores` in the JSON).")
    for t in targets:
        s = summaries[t.name]
        if s.get("errors"):
            notes.append(f"{t.label}: {s['errors']} socket errors or non-2xx responses over all its runs "
                         f"(see the JSON).")
        if t.name != "direct" and t.checks.get("whoami_backends") and len(t.checks["whoami_backends"]) < 2:
            notes.append(f"{t.label}: the pre-flight requests reached only {list(t.checks['whoami_backends'])}.")
    ours = next((t for t in targets if t.name == "ours"), None)
    st = ours.checks.get("final_status") if ours else None
    if isinstance(st, dict) and isinstance(st.get("metrics"), dict):
        m = st["metrics"]
        sent = ours.checks.get("wrk_requests_total", 0)
        bad = {k: v for k, v in m.items() if re.search(r"ELB_[45]XX|Backend_[45]XX|ConnectionErrors|Spillover", k)
               and isinstance(v, (int, float)) and v}
        notes.append(f"Our node's status.json counters at the end: RequestCount {m.get('RequestCount'):,}"
                     f"; wrk completed {sent:,} responses through it over all its runs (warm-up and repeated runs "
                     f"included); the rest are the pre-flight GETs and requests in flight when wrk stopped"
                     + (f"; non-zero error counters: {bad}" if bad else "; all error counters 0") + ".")
    if args.quick:
        notes.append("Quick mode: one round of short runs; figures are indicative only.")
    return notes


def machine_info(binary, targets):
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    info = {
        "nproc": os.cpu_count(),
        "cpu": model,
        "mem_mb": mem,
        "kernel": platform.release(),
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
        "nginx": tool_version(["nginx", "-v"]),
        "haproxy": tool_version(["haproxy", "-v"]),
        "wrk": tool_version(["wrk", "-v"]),
        "python": platform.python_version(),
    }
    if "ours" in targets and binary and os.path.exists(binary):
        info["autopipe"] = binary
        info["autopipe_mtime"] = datetime.datetime.fromtimestamp(
            os.path.getmtime(binary), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return info


# ---- perf -----------------------------------------------------------------------------------------------------

def perf_usable():
    if not shutil.which("perf"):
        return False, "perf is not installed"
    try:
        p = subprocess.run(["perf", "stat", "-e", "instructions", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"perf stat failed: {e}"
    if p.returncode != 0:
        return False, "perf stat -e instructions true failed: " + p.stderr.decode(errors="replace")[-200:]
    return True, ""


def perf_run(t, args, backends, results_dir, stamp):
    """One extra throughput run of target t (not counted in the medians) with `perf record -g` attached to its
    processes. cpu-clock sampling, because this VM exposes no hardware counters."""
    data = os.path.join(args.tmp, "perf.data")
    dur = max(2, args.duration - 1)
    argv = ["perf", "record", "-e", "cpu-clock", "-F", "999", "-g", "-o", data,
            "-p", ",".join(map(str, t.proc.pids())), "--", "sleep", str(dur)]
    log(f"perf: {' '.join(argv)} during one extra wrk run of {t.label}")
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        r = run_wrk(t, args.wrk_threads, args.connections, args.duration, backends)
        out, _ = p.communicate(timeout=dur + 60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    path = os.path.join(results_dir, f"lb-perf-{t.name}-{stamp}.txt")
    flat = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none",
                           "--percent-limit", "0.3"], capture_output=True, text=True, timeout=300)
    full = subprocess.run(["perf", "report", "-i", data, "--stdio"], capture_output=True, text=True, timeout=300)
    dso = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none", "--sort", "dso"],
                         capture_output=True, text=True, timeout=300)
    with open(path, "w") as f:
        f.write(f"# perf record of {t.label} (pids {t.proc.pids()}) during `{r['cmd']}`: "
                f"{r['rps']:,.0f} req/s with perf attached (not in the medians)\n")
        f.write(f"# {' '.join(argv)}\n\n## flat profile (perf report --stdio --no-children -g none), first 80 lines\n\n")
        f.write("\n".join(flat.stdout.splitlines()[:80]) + "\n")
        f.write("\n## by shared object (kernel vs user space)\n\n")
        f.write("\n".join([x for x in dso.stdout.splitlines() if x.strip() and not x.startswith("#")][:12]) + "\n")
        f.write("\n## perf report --stdio | head -80\n\n")
        f.write("\n".join(full.stdout.splitlines()[:80]) + "\n")
    log(f"perf report written to {os.path.relpath(path, REPO)}")
    return path


# ---- main -----------------------------------------------------------------------------------------------------

def parse_targets(text):
    out = []
    for x in text.split(","):
        x = x.strip().lower()
        if not x:
            continue
        x = ALIASES.get(x, x)
        if x not in ALL_TARGETS:
            raise SystemExit(f"unknown target {x!r}; pick from {','.join(ALL_TARGETS)}")
        if x not in out:
            out.append(x)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--autopipe", default=os.environ.get("AUTOPIPE_BIN", DEFAULT_BIN), help="autopipe binary")
    ap.add_argument("--targets", default=",".join(ALL_TARGETS),
                    help="comma list out of ours,haproxy,nginx,direct (default: all)")
    ap.add_argument("--quick", action="store_true", help="1 round, 5 s throughput and 3 s light-load runs")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3, quick 1)")
    ap.add_argument("--duration", type=int, default=None, help="seconds per throughput run (default 10, quick 5)")
    ap.add_argument("--light-duration", type=int, default=None, help="seconds per 1-connection run (default 5, quick 3)")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections in the throughput run")
    ap.add_argument("--wrk-threads", type=int, default=2, help="wrk threads in the throughput run")
    ap.add_argument("--threads", type=int, default=2, help="threads/workers of each proxy")
    ap.add_argument("--hc-interval", type=int, default=5, help="our node's health check interval (s)")
    ap.add_argument("--ready-timeout", type=float, default=15.0, help="seconds a proxy may take to start proxying")
    ap.add_argument("--quiet-wait", type=float, default=None,
                    help="before each target's runs, wait up to S s for the machine to be < 25%% busy (default 20, quick 5)")
    ap.add_argument("--max-other", type=float, default=0.15,
                    help="a run during which other processes used more cores than this is not 'quiet' (default 0.15)")
    ap.add_argument("--retries", type=int, default=None,
                    help="times a non-quiet run is repeated (default 2, quick 1); the last attempt counts")
    ap.add_argument("--perf", nargs="?", const="ours", default=None, metavar="TARGET",
                    help="perf record one extra run of TARGET (default ours) and save the report")
    ap.add_argument("--no-write", action="store_true", help="print only; write nothing to bench/results")
    ap.add_argument("--keep-dir", action="store_true", help="keep the temp dir (configs, logs)")
    ap.add_argument("--results-dir", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = args.duration or (5 if args.quick else 10)
    args.light_duration = args.light_duration or (3 if args.quick else 5)
    if args.retries is None:
        args.retries = 1 if args.quick else 2
    if args.quiet_wait is None:
        args.quiet_wait = 5.0 if args.quick else 20.0
    names = parse_targets(args.targets)
    if args.perf:
        args.perf = ALIASES.get(args.perf, args.perf)
        if args.perf not in names or args.perf == "direct":
            raise SystemExit("--perf needs a proxy target that is in --targets")

    for tool in ["nginx", "wrk"] + (["haproxy"] if "haproxy" in names else []):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not on PATH (apt-get install nginx haproxy wrk)")
    busy = block_listeners()
    if busy:
        raise SystemExit(f"something already listens in 127.253.0.0/16 ({', '.join(busy)}); another run?")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started with SIGINT ignored (e.g. `cmd &` in a script)

    started = datetime.datetime.now(datetime.timezone.utc)
    stamp = started.strftime("%Y%m%dT%H%M%S")
    args.tmp = tempfile.mkdtemp(prefix="lb_bench-")
    targets = [Target(n) for n in names]
    info = machine_info(args.autopipe, names)
    log(f"targets {names}, {args.rounds} round(s), {args.duration} s throughput / {args.light_duration} s light, "
        f"temp dir {args.tmp}")
    nproc = info["nproc"]
    perf_path = None
    perf_note = None
    interrupted = False
    try:
        binary = None
        if "ours" in names:
            if os.path.exists(args.autopipe):
                binary = os.path.join(args.tmp, "autopipe")
                shutil.copy2(args.autopipe, binary)  # a rebuild during the run can't swap it out
            else:
                next(t for t in targets if t.name == "ours").skip_reason = f"no binary at {args.autopipe}"
        backends = start_backends(args.tmp)
        log(f"back ends up: {', '.join(f'{a}:{BACKEND_PORT} (pid {p.pid})' for p, (_n, _i, a) in zip(backends, BACKENDS))}")
        for t in targets:
            if t.skip_reason:
                continue
            t0 = time.monotonic()
            try:
                if t.name == "haproxy":
                    t.proc = start_haproxy(args.tmp, t, args.threads)
                elif t.name == "nginx":
                    t.proc = start_nginx_proxy(args.tmp, t, args.threads)
                elif t.name == "ours":
                    t.proc = start_node(args.tmp, t, binary, args.threads, args.hc_interval)
                verify(t, args.ready_timeout)
            except RuntimeError as e:
                lines = [x.strip() for x in str(e).splitlines() if x.strip()]
                alert = [x for x in lines[1:] if re.search(r"ALERT|emerg|error|not built", x, re.I)]
                t.skip_reason = (lines[0] + (" " + alert[0] if alert else ""))[:200] if lines else "failed"
                log(f"  {t.label}: NOT MEASURED: {e}")
                if t.proc is not None:
                    t.proc.stop()
                    Proc.all.remove(t.proc)
                    t.proc = None
                continue
            if t.proc is not None:
                t.proc.note_children()
            log(f"  {t.label} proxies at {t.url} after {time.monotonic() - t0:.2f} s "
                f"(pids {t.proc.pids() if t.proc else [backends[0].pid]}; whoami {t.checks.get('whoami_backends')}, "
                f"xff {t.checks.get('x_forwarded_for')})")
        live = [t for t in targets if not t.skip_reason]
        if not live:
            raise RuntimeError("no target could be measured")

        warm = 1 if args.quick else 2
        for t in live:
            run_wrk(t, args.wrk_threads, args.connections, warm, backends)
        log(f"warmed up every target with a {warm} s wrk run")
        direct = next((t for t in live if t.name == "direct"), None)
        for rnd in range(args.rounds):
            order = live[rnd % len(live):] + live[:rnd % len(live)]
            for t in order:
                def measured(threads, conns, duration, what):
                    """One run; repeated (at most --retries times) while other processes used more than
                    --max-other cores during it. The last attempt counts either way."""
                    for attempt in range(args.retries + 1):
                        t.quiet.append(wait_quiet(args.quiet_wait, 100.0 * args.max_other / NPROC + 5.0))
                        r = run_wrk(t, threads, conns, duration, backends)
                        r["attempt"] = attempt + 1
                        r["quiet"] = r["other_cpu_cores"] <= args.max_other
                        if t.proc:
                            if not t.proc.alive():
                                raise RuntimeError(f"{t.label} died during the run:\n{t.proc.log_tail()}")
                            r["rss_kb"] = t.proc.rss_kb()
                        if r["quiet"] or attempt == args.retries:
                            return r
                        log(f"  {t.label} {what}: other processes used {r['other_cpu_cores']:.2f} cores "
                            f"({r['rps']:,.0f} req/s); repeating")
                        time.sleep(0.5)

                r = measured(args.wrk_threads, args.connections, args.duration, "throughput")
                t.runs.append(r)
                if r.get("rss_kb"):
                    t.rss_kb.append(r["rss_kb"])
                time.sleep(0.5)
                lr = measured(1, 1, args.light_duration, "1-conn")
                t.light.append(lr)
                errs = sum(r["socket_errors"].values()) + r["non_2xx"]
                log(f"round {rnd + 1}/{args.rounds} {t.label:18s} {r['rps']:>9,.0f} req/s  p50 {ms(r['p50_us'])} "
                    f"p90 {ms(r['p90_us'])} p99 {ms(r['p99_us'])} ms | 1-conn p50 {lr['p50_us']:.0f} "
                    f"p99 {lr['p99_us']:.0f} us | machine {r['machine_busy_pct']:.0f}% busy, others "
                    f"{r['other_cpu_cores']:.2f}/{lr['other_cpu_cores']:.2f} cores"
                    + (f" | RSS {t.rss_kb[-1] / 1024:.1f} MB, CPU {r['proxy_cpu_s_per_100k']:.3f} s/100k"
                       if t.proc else "") + (f" | {errs} errors" if errs else ""))
                time.sleep(0.5)
        ours = next((t for t in live if t.name == "ours"), None)
        if ours is not None:  # the node's own counters (status.json is rewritten every second)
            time.sleep(1.2)
            ours.checks["wrk_requests_total"] = ours.wrk_requests_total
            try:
                with open(os.path.join(os.path.dirname(ours.proc.log_path), "status.json")) as f:
                    ours.checks["final_status"] = json.load(f)
            except (OSError, ValueError) as e:
                ours.checks["final_status"] = f"unreadable: {e}"
        if args.perf:
            pt = next((t for t in live if t.name == args.perf), None)
            ok, why = perf_usable()
            if pt is None:
                perf_note = f"--perf {args.perf}: target not measured"
            elif not ok:
                perf_note = f"--perf skipped: {why}"
            elif args.no_write:
                perf_note = "--perf skipped: --no-write"
            else:
                os.makedirs(args.results_dir, exist_ok=True)
                perf_path = perf_run(pt, args, backends, args.results_dir, stamp)
            if perf_note:
                log(perf_note)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted; stopping everything")
    finally:
        stop_all()
        if args.keep_dir:
            log(f"kept {args.tmp}")
        else:
            shutil.rmtree(args.tmp, ignore_errors=True)
        left = block_listeners()
        if left:
            log(f"WARNING: still listening in 127.253.0.0/16 after cleanup: {left}")

    if interrupted:
        return 130
    direct = next((t for t in targets if t.name == "direct" and t.light), None)
    summaries = {t.name: summarize(t, direct) for t in targets}
    quiet = {t.name: summarize(t, direct, quiet_only=True) for t in targets}
    measured = {t.name for t in targets if t.runs}
    table = markdown_table(targets, summaries)
    ctable = cpu_table(targets, summaries, nproc)
    goals = goal_lines(summaries, measured)
    all_quiet = all(r.get("quiet") for t in targets for r in t.runs + t.light)
    qtable = qgoals = None
    if not all_quiet and any(quiet[t.name].get("rps") or quiet[t.name].get("light_p50_us") for t in targets):
        qtable = markdown_table(targets, quiet)
        qgoals = goal_lines(quiet, {t.name for t in targets if quiet[t.name].get("rps") or quiet[t.name].get("light_p50_us")},
                             "no quiet runs")
    notes = auto_notes(targets, summaries, nproc, args)
    if perf_note:
        notes.append(perf_note)
    cmd = "python3 bench/lb_bench.py " + " ".join(sys.argv[1:])
    section = [
        f"## Run {started.strftime('%Y-%m-%d %H:%M:%S UTC')}: `{cmd.strip()}`",
        "",
        f"Machine: {nproc} cores ({info['cpu']}), {info['mem_mb']:,} MB, Linux {info['kernel']}, load average at "
        f"start {' '.join(info['loadavg_at_start'])}. {info['nginx']}; {info['haproxy']}; {info['wrk']}."
        + (f" autopipe binary built {info['autopipe_mtime']}." if "autopipe_mtime" in info else ""),
        f"Our node {'**included**' if 'ours' in measured else '**not included**'} in this run.",
        "",
        f"{args.rounds} interleaved round(s); throughput = `wrk -t{args.wrk_threads} -c{args.connections} "
        f"-d{args.duration}s --latency`, 1-conn = `wrk -t1 -c1 -d{args.light_duration}s --latency`; medians over "
        f"rounds. Added p50 = 1-conn p50 through the proxy − 1-conn p50 direct. RSS = VmRSS of the proxy's "
        f"processes after load (max over rounds). Each proxy uses {args.threads} threads/workers.",
        "",
        table,
        "",
        "CPU during the throughput runs (medians):",
        "",
        ctable,
        "",
        "Goals (all rounds):",
        "",
        *goals,
        "",
    ]
    runs_quiet = ", ".join(f"{t.label} {summaries[t.name]['quiet_runs']}/{len(t.runs)} + "
                           f"{summaries[t.name]['quiet_light_runs']}/{len(t.light)}" for t in targets if t.runs)
    if all_quiet:
        section += [f"Every run was quiet (other processes ≤ {args.max_other} cores).", ""]
    elif qtable:
        section += [f"Quiet runs only (other processes ≤ {args.max_other} cores during the run; quiet "
                    f"throughput + 1-conn runs: {runs_quiet}). Medians over those; a target without a quiet run "
                    f"shows –:", "", qtable, "", "Goals on quiet runs only:", "", *qgoals, ""]
    else:
        section += [f"No run was quiet (other processes > {args.max_other} cores in every run).", ""]
    if notes:
        section += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    if perf_path:
        section += [f"perf profile: `{os.path.relpath(perf_path, REPO)}`", ""]
    text = "\n".join(section)
    print()
    print(text)
    if not args.no_write:
        os.makedirs(args.results_dir, exist_ok=True)
        md = os.path.join(args.results_dir, f"lb-{started.strftime('%Y-%m-%d')}.md")
        new = not os.path.exists(md)
        with open(md, "a") as f:
            if new:
                f.write(f"# Load balancer benchmark, {started.strftime('%Y-%m-%d')}\n\n"
                        "Written by `bench/lb_bench.py`; one section per run, newest last.\n\n")
            f.write(text + "\n")
        js = os.path.join(args.results_dir, f"lb-{stamp}.json")
        with open(js, "w") as f:
            json.dump({"started": started.isoformat(), "command": cmd.strip(), "machine": info,
                       "args": {k: v for k, v in vars(args).items() if k != "tmp"},
                       "targets": {t.name: {"label": t.label, "addr": t.url, "skip_reason": t.skip_reason,
                                            "ready_s": t.ready_s, "checks": t.checks, "rss_kb": t.rss_kb,
                                            "busy_pct_before_runs": t.quiet,
                                            "runs": t.runs, "light": t.light, "summary": summaries[t.name],
                                            "summary_quiet_runs": quiet[t.name]}
                                   for t in targets},
                       "goals": goals, "notes": notes, "perf": perf_path}, f, indent=1)
        log(f"wrote {os.path.relpath(md, REPO)} and {os.path.relpath(js, REPO)}")
    return 2 if any(t.skip_reason for t in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
