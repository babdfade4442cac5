"""End-to-end test harness for autopipe.

A Region is one `autopipe server` started by the test on a fresh data dir, a port the kernel picks (it
listens on 127.0.0.1:0 and the harness reads the endpoint it writes to DATA_DIR/endpoint) and a private /16
of 127.0.0.0/8 leased with lease_block() (see "address blocks" below). Tests drive it with the real aws CLI
(v1 and v2), boto3 and raw HTTP.

Only processes started by the test are ever signalled, always by pid:
  - the server process (the Popen child),
  - instance processes of this region, found by their AUTOPIPE_* environment inside this region's
    private address block (which no other test or user region uses while the lease is held).
"""

import base64
import configparser
import contextlib
import fcntl
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

REGION_NAME = "us-west-2"
SAMPLE_AMI = "ami-0a1b2c3d4e5f60718"    # autopipe-sample-web
MINIMAL_AMI = "ami-0f1e2d3c4b5a69788"   # autopipe-minimal
AS_VERSION = "2011-01-01"
AS_NS = "{http://autoscaling.amazonaws.com/doc/2011-01-01/}"

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

START_TIMEOUT = 20.0      # server start: DIR/endpoint must appear within this
CONVERGE_TIMEOUT = float(os.environ.get("AUTOPIPE_E2E_CONVERGE_TIMEOUT", "30"))
REPLACE_TIMEOUT = float(os.environ.get("AUTOPIPE_E2E_REPLACE_TIMEOUT", "45"))
CLI_TIMEOUT = 60.0



def autopipe_bin():
    return os.environ.get("AUTOPIPE_BIN") or os.path.join(REPO, "build", "autopipe")


def log(msg):
    sys.stderr.write("[e2e %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# waiting
# ---------------------------------------------------------------------------------------------

class WaitTimeout(AssertionError):
    pass


def wait_until(fn, timeout=CONVERGE_TIMEOUT, interval=0.5, what=None):
    """Calls fn() until it returns a truthy value; returns that value.

    Exceptions raised by fn count as "not yet" (the last one is reported). Raises WaitTimeout (an
    AssertionError, so the test fails rather than errors) after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    last_val, last_exc = None, None
    while True:
        try:
            last_val = fn()
            last_exc = None
            if last_val:
                return last_val
        except unittest.SkipTest:
            raise
        except Exception as e:  # noqa: BLE001 - anything means "not yet"
            last_exc = e
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    desc = what or getattr(fn, "__name__", "condition")
    detail = ("last exception: %r" % (last_exc,)) if last_exc is not None else ("last value: %r" % (last_val,))
    raise WaitTimeout("timed out after %.0fs waiting for %s; %s" % (timeout, desc, detail))


def hold_for(fn, duration, interval=0.5, what=None):
    """Asserts fn() stays truthy for `duration` seconds (fn's exceptions fail immediately)."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        v = fn()
        if not v:
            raise AssertionError("condition %s stopped holding: %r" % (what or fn.__name__, v))
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# HTTP to instances
# ---------------------------------------------------------------------------------------------

def read_text(path):
    """The file's text, or None if it does not exist (yet)."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def http_get(ip, port=80, path="/", timeout=2.0):
    """GET http://ip:port/path without any proxy. Returns (status, body text)."""
    conn = http.client.HTTPConnection(ip, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def http_json(ip, port=80, path="/", timeout=2.0):
    status, body = http_get(ip, port, path, timeout)
    if status != 200:
        raise AssertionError("GET http://%s:%d%s -> %d %s" % (ip, port, path, status, body[:200]))
    return json.loads(body)


def serves(ip, port=80):
    """The parsed GET / document, or None when nothing answers."""
    try:
        return http_json(ip, port)
    except (OSError, AssertionError, ValueError, http.client.HTTPException):
        return None


# ---------------------------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------------------------

def proc_environ(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    env = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            env[k.decode("utf-8", "replace")] = v.decode("utf-8", "replace")
    return env


def proc_stat(pid):
    """(state, ppid, pgid) from /proc/pid/stat, or None when gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[2])


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None


def pid_alive(pid):
    """True when pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def all_pids():
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def instance_processes(block_prefix=None, instance_id=None):
    """Live processes carrying AUTOPIPE_INSTANCE_ID, optionally limited to one block / instance."""
    out = []
    for pid in all_pids():
        if pid == os.getpid():
            continue
        env = proc_environ(pid)
        if not env or "AUTOPIPE_INSTANCE_ID" not in env:
            continue
        if instance_id is not None and env.get("AUTOPIPE_INSTANCE_ID") != instance_id:
            continue
        if block_prefix is not None and not env.get("AUTOPIPE_PRIVATE_IP", "").startswith(block_prefix):
            continue
        if not pid_alive(pid):
            continue
        out.append((pid, env))
    return out


def lb_node_processes(data_dir):
    """Live `autopipe lb` node processes of the region whose data dir is `data_dir`: [(pid, cmdline)]."""
    marker = os.path.join(data_dir, "load-balancers") + os.sep
    out = []
    for pid in all_pids():
        argv = proc_cmdline(pid)
        if argv and len(argv) >= 4 and argv[1] == "lb" and argv[2] == "--config" and argv[3].startswith(marker):
            out.append((pid, " ".join(argv)))
    return out


def data_dir_processes(data_dir):
    """(pid, cmdline) of every process whose command line names a path inside data_dir, or whose working
    directory is inside it (database servers, DB endpoints, cache nodes, which run in their own folder with
    relative paths and rename their process title: whatever the region started with its files there)."""
    out = []
    needle = data_dir.rstrip("/") + "/"
    for pid in all_pids():
        cmd = " ".join(proc_cmdline(pid) or [])
        try:
            cwd = os.readlink("/proc/%d/cwd" % pid) + "/"
        except OSError:
            cwd = ""
        if (needle in cmd or cwd.startswith(needle)) and pid_alive(pid):
            out.append((pid, cmd))
    return out


def instance_init_pid(instance_id, block_prefix=None):
    """The instance's init: the process with AUTOPIPE_INSTANCE_ID=<id> whose parent is not another such
    process (the root of the instance's process tree)."""
    procs = instance_processes(block_prefix, instance_id)
    pids = {p for p, _ in procs}
    roots = []
    for pid, _ in procs:
        st = proc_stat(pid)
        if st and st[1] not in pids:
            roots.append(pid)
    if len(roots) != 1:
        raise AssertionError("expected exactly one init process for %s, found %r (all: %r)"
                             % (instance_id, roots, sorted(pids)))
    return roots[0]


def kill9(pid):
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# CLI helpers
# ---------------------------------------------------------------------------------------------

_CLI_ERR_RE = re.compile(r"An error occurred \(([^)]+)\) when calling the (\w+) operation(?: \(reached max retries: \d+\))?: (.*)",
                         re.S)


def parse_cli_error(stderr):
    """(code, message) from the aws CLI's 'An error occurred (Code) ...: message' line, or (None, stderr)."""
    m = _CLI_ERR_RE.search(stderr)
    if not m:
        return None, stderr
    return m.group(1), m.group(3).strip()


class CliError(AssertionError):
    def __init__(self, argv, rc, stdout, stderr):
        self.argv, self.rc, self.stdout, self.stderr = argv, rc, stdout, stderr
        self.code, self.message = parse_cli_error(stderr)
        super().__init__("aws command failed (rc=%d): %s\nstderr: %s" % (rc, " ".join(argv), stderr.strip()))


_cli_cache = {}


def _find_cli_v1():
    if "v1" in _cli_cache:
        return _cli_cache["v1"]
    found = None
    cand = shutil.which("aws")
    if cand and os.path.realpath(cand) not in ("/usr/bin/aws",):
        try:
            out = subprocess.run([cand, "--version"], capture_output=True, text=True, timeout=30)
            if (out.stdout + out.stderr).startswith("aws-cli/1."):
                found = [cand]
        except (OSError, subprocess.TimeoutExpired):
            pass
    if found is None:
        try:
            out = subprocess.run([sys.executable, "-m", "awscli", "--version"], capture_output=True, text=True,
                                 timeout=30)
            if (out.stdout + out.stderr).startswith("aws-cli/1."):
                found = [sys.executable, "-m", "awscli"]
        except (OSError, subprocess.TimeoutExpired):
            pass
    _cli_cache["v1"] = found
    return found


def _find_cli_v2():
    if "v2" in _cli_cache:
        return _cli_cache["v2"]
    found = None
    path = "/usr/bin/aws"
    if os.path.exists(path):
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
            if (out.stdout + out.stderr).startswith("aws-cli/2."):
                found = [path]
        except (OSError, subprocess.TimeoutExpired):
            pass
    _cli_cache["v2"] = found
    return found


# ---------------------------------------------------------------------------------------------
# XML errors
# ---------------------------------------------------------------------------------------------

def parse_error_xml(text):
    """(Type, Code, Message) of an <ErrorResponse>; raises AssertionError if it is not one."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise AssertionError("error body is not XML (%s): %r" % (e, text[:300]))
    if not root.tag.endswith("ErrorResponse"):
        raise AssertionError("root element is %s, not ErrorResponse: %r" % (root.tag, text[:300]))

    def find(name):
        for el in root.iter():
            if el.tag.split("}")[-1] == name:
                return el
        return None

    err = find("Error")
    if err is None:
        raise AssertionError("ErrorResponse without <Error>: %r" % text[:300])

    def child(name):
        for el in err:
            if el.tag.split("}")[-1] == name:
                return el.text or ""
        return None

    return child("Type"), child("Code"), child("Message")


# ---------------------------------------------------------------------------------------------
# Region
# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# address blocks
# ---------------------------------------------------------------------------------------------
#
# Every region (and every module that listens by itself, like test_lb_node) needs a /16 of 127.0.0.0/8 that
# nothing else running on the machine uses: the region's instances, load balancer nodes and back ends listen
# there on fixed ports (80, and the ports a test configures), and cleanup treats every process with an address
# in the block as its own. ctest -j2 runs modules in parallel, a developer may run a module by hand at the
# same time, and a user's own region may be up on the machine.
#
# The scheme: the candidates are 127.150 to 127.253 (user regions default to 127.60-127.99 and 127.100 and
# up, one per known region name, below 127.150). A block is held by an exclusive flock on the file
# /tmp/autopipe-e2e-blocks/127.N.lock (always /tmp, not $TMPDIR, so runs with different TMPDIRs still
# see each other's locks); lease_block() walks the candidates and takes the first whose lock it
# gets without waiting and in which nothing already runs (no instance process with an AUTOPIPE_PRIVATE_IP
# there and no socket listening on an address there: leftovers of a crashed run, or a user's region that
# happens to use the block). The lock is held, through the open file, until BlockLease.release() (Region.close
# releases its block after `autopipe down` has stopped everything in it) or until the process ends, however
# it ends: the kernel drops flocks with the process, so a crashed run never leaves a block taken. Two leases
# in one process conflict too (each open() is its own lock), so two Regions of one module get two blocks.
# The lock files themselves stay (removing them would race with another process locking them).
#
# AUTOPIPE_E2E_BLOCK=127.N (or N) makes the walk start at N; it still takes only a free, unlocked block.

BLOCK_FIRST, BLOCK_LAST = 150, 253
BLOCK_LOCK_DIR = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), "autopipe-e2e-blocks")


def _listening_in_block(n):
    """True when some TCP socket listens on an address in 127.n.0.0/16 (any user's, any process's)."""
    suffix = "%02X7F" % n  # /proc/net/tcp prints the IPv4 address as little-endian hex: 127.n.x.y -> YYXXNN7F
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                addr, state = fields[1].split(":")[0], fields[3]
                if state == "0A" and addr.upper().endswith(suffix):  # 0A: LISTEN
                    return True
    except OSError:
        return False
    return False


def _block_occupied(n):
    prefix = "127.%d." % n
    if instance_processes(prefix):
        return "instance processes"
    if _listening_in_block(n):
        return "listening sockets"
    return None


class BlockLease:
    """An address block 127.N held by this process until release() (or until the process ends)."""

    def __init__(self, n, fd):
        self.n = n
        self.block = "127.%d" % n
        self.prefix = "127.%d." % n
        self._fd = fd

    def release(self):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _open_lock_file(path):
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except PermissionError:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # another user's lock file: flock works read-only


def lease_block():
    """Takes an address block no other test run or region on this machine uses; see the scheme above."""
    if not os.path.isdir(BLOCK_LOCK_DIR):
        with contextlib.suppress(FileExistsError):
            os.mkdir(BLOCK_LOCK_DIR)
            os.chmod(BLOCK_LOCK_DIR, 0o1777)  # shared by every user's test runs, like /tmp itself
    env = os.environ.get("AUTOPIPE_E2E_BLOCK")
    start = BLOCK_FIRST
    if env:
        start = int(env.split(".")[-1])
        if not BLOCK_FIRST <= start <= BLOCK_LAST:
            raise RuntimeError("AUTOPIPE_E2E_BLOCK=%s is outside 127.%d-127.%d" % (env, BLOCK_FIRST, BLOCK_LAST))
    count = BLOCK_LAST - BLOCK_FIRST + 1
    for i in range(count):
        n = BLOCK_FIRST + (start - BLOCK_FIRST + i) % count
        fd = _open_lock_file(os.path.join(BLOCK_LOCK_DIR, "127.%d.lock" % n))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        occupied = _block_occupied(n)
        if occupied:
            log("address block 127.%d is unlocked but has %s in it (a crashed run or a user's region); "
                "skipping it" % (n, occupied))
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            continue
        return BlockLease(n, fd)
    raise RuntimeError("no free address block in 127.%d-127.%d" % (BLOCK_FIRST, BLOCK_LAST))


_live_regions = []


class Region:
    """One autopipe region server under test."""

    def __init__(self, name=None, region_name=None):
        self.module = name or "e2e"
        self.region_name = region_name or REGION_NAME  # a second region of a partition has another name
        self.lease = lease_block()
        self.block = self.lease.n
        self.block_prefix = self.lease.prefix
        self.root = tempfile.mkdtemp(prefix="autopipe-e2e-%s-" % self.module.replace(".", "-"))
        self.data_dir = os.path.join(self.root, "data")
        os.makedirs(self.data_dir)
        self.proc = None
        self.endpoint = None
        self._stdout = None
        self._boto_clients = {}  # (service, config) -> client at the current endpoint
        self._boto_proxies = {}  # (service, config) -> _FollowingClient handed to tests
        self._closed = False
        self._starts = 0
        self.extra_env = {}  # added to the server's environment at the next start (test hooks)
        self.server_args = []  # extra `autopipe server` flags (e.g. --smtp-relay), set before start()

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    @classmethod
    def for_class(cls, test_class, name=None):
        """Starts a Region for a TestCase class; it is cleaned up even if setUpClass fails later."""
        region = cls(name or "%s.%s" % (test_class.__module__, test_class.__name__))
        test_class.addClassCleanup(region.close)
        region.start()
        return region

    @classmethod
    def for_test(cls, test):
        region = cls("%s.%s" % (type(test).__module__, test._testMethodName))
        test.addCleanup(region.close)
        region.start()
        return region

    def start(self):
        binary = autopipe_bin()
        if not os.path.exists(binary):
            raise AssertionError("autopipe binary not found at %s (set AUTOPIPE_BIN)" % binary)
        endpoint_file = os.path.join(self.data_dir, "endpoint")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(endpoint_file)  # stale after a kill -9
        self._starts += 1
        self._is_down = False
        out_path = os.path.join(self.root, "server.stdout.%d" % self._starts)
        if self._stdout:
            self._stdout.close()
        self._stdout = open(out_path, "wb")
        # Port 0: the server binds a port the kernel picks and writes the endpoint it listens on to DIR/endpoint
        # (after it listens), so no other process can take the port between choosing and binding it.
        argv = [binary, "server", "--data-dir", self.data_dir, "--listen", "127.0.0.1:0",
                "--region", self.region_name, "--address-block", "127.%d" % self.block] + list(self.server_args)
        log("starting %s" % " ".join(argv))
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._stdout,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env=self._server_env())
        if self not in _live_regions:
            _live_regions.append(self)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("server exited with %s before writing %s\n%s"
                                     % (self.proc.returncode, endpoint_file, self.diagnostics()))
            try:
                with open(endpoint_file) as f:
                    ep = f.read().strip()
                if ep:
                    break
            except FileNotFoundError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server did not write %s within %.0fs\n%s"
                                     % (endpoint_file, START_TIMEOUT, self.diagnostics()))
            time.sleep(0.1)
        self.endpoint = ep
        self._boto_clients = {}
        u = urllib.parse.urlparse(ep)
        self.host, self.endpoint_port = u.hostname, u.port
        # The endpoint must accept connections once it is advertised.
        wait_until(lambda: self._connectable(), 5, 0.1, "endpoint %s to accept connections" % ep)
        log("server pid %d at %s (block 127.%d, dir %s)" % (self.proc.pid, ep, self.block, self.data_dir))

    def _connectable(self):
        with socket.create_connection((self.host, self.endpoint_port), timeout=1):
            return True

    def _server_env(self):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("AWS_") or k.lower() in ("http_proxy", "https_proxy", "all_proxy"):
                del env[k]
        env.update(self.extra_env)
        return env

    def kill9(self):
        """kill -9 the server process only (instances keep running)."""
        assert self.proc is not None
        log("kill -9 server pid %d" % self.proc.pid)
        self.proc.kill()
        self.proc.wait(10)

    def restart(self):
        """Starts the server again on the same data dir and address block (after kill9() or down()). It listens on
        a new port; self.endpoint and the boto3 clients follow it."""
        if self.proc is not None and self.proc.poll() is None:
            raise AssertionError("restart() while the server is still running")
        self.start()

    def server_pid(self):
        return self.proc.pid if self.proc else None

    def down(self, timeout=60):
        """`autopipe down --data-dir DIR`; returns the CompletedProcess."""
        log("autopipe down --data-dir %s" % self.data_dir)
        res = subprocess.run([autopipe_bin(), "down", "--data-dir", self.data_dir], capture_output=True,
                             text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=self._server_env())
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        self._is_down = res.returncode == 0
        return res

    def close(self):
        if self._closed:
            return
        self._closed = True
        problems = []
        try:
            if getattr(self, "_is_down", False) and (self.proc is None or self.proc.poll() is not None):
                res = subprocess.CompletedProcess([], 0, "", "")  # already down; nothing was restarted
            else:
                res = self.down()
            if res.returncode != 0:
                problems.append("autopipe down exited %d: %s" % (res.returncode, (res.stderr or "").strip()[-500:]))
        except Exception as e:  # noqa: BLE001
            problems.append("autopipe down failed: %r" % (e,))
        if self.proc is not None and self.proc.poll() is None:
            problems.append("server pid %d still running after autopipe down" % self.proc.pid)
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        # Anything of this region left over? (our private block; nobody else uses it)
        deadline = time.monotonic() + 5
        left = instance_processes(self.block_prefix)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = instance_processes(self.block_prefix)
        if left:
            problems.append("instance processes left after autopipe down: %r"
                            % [(p, e.get("AUTOPIPE_INSTANCE_ID"), proc_cmdline(p)) for p, e in left])
            for pid, _ in left:
                kill9(pid)
        lb_left = lb_node_processes(self.data_dir)
        while lb_left and time.monotonic() < deadline:
            time.sleep(0.2)
            lb_left = lb_node_processes(self.data_dir)
        if lb_left:
            problems.append("load balancer nodes left after autopipe down: %r" % lb_left)
            for pid, _ in lb_left:
                kill9(pid)
        db_left = data_dir_processes(self.data_dir)
        while db_left and time.monotonic() < deadline:
            time.sleep(0.2)
            db_left = data_dir_processes(self.data_dir)
        if db_left:
            problems.append("processes of the data dir left after autopipe down: %r" % db_left)
            for pid, _ in db_left:
                kill9(pid)
        if self._stdout:
            self._stdout.close()
        if self in _live_regions:
            _live_regions.remove(self)
        # Everything that ran in the block is gone (or was just killed): another run may take it.
        self.lease.release()
        if problems:
            log("cleanup problems:\n  " + "\n  ".join(problems) + "\n" + self.diagnostics())
        if os.environ.get("AUTOPIPE_E2E_KEEP") or problems:
            log("keeping %s" % self.root)
        else:
            shutil.rmtree(self.root, ignore_errors=True)
        if problems:
            raise AssertionError("; ".join(problems))

    def diagnostics(self, lines=40):
        parts = []
        for path in sorted(os.listdir(self.root)):
            if path.startswith("server.stdout"):
                parts.append(self._tail(os.path.join(self.root, path), lines, "server stdout/stderr"))
        parts.append(self._tail(os.path.join(self.data_dir, "server.log"), lines, "server.log"))
        return "\n".join(p for p in parts if p)

    @staticmethod
    def _tail(path, lines, label):
        try:
            with open(path, "rb") as f:
                data = f.read().decode("utf-8", "replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "---- %s (%s) ----\n%s" % (label, path, "\n".join(data))

    # -- credentials ----------------------------------------------------------------------------

    @property
    def credentials_file(self):
        return os.path.join(self.data_dir, "credentials")

    @property
    def config_file(self):
        return os.path.join(self.data_dir, "config")

    def credentials(self):
        cp = configparser.RawConfigParser()
        cp.read(self.credentials_file)
        return cp["default"]["aws_access_key_id"], cp["default"]["aws_secret_access_key"]

    def cli_env(self, credentials_file=None):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
        env.update({
            "AWS_SHARED_CREDENTIALS_FILE": credentials_file or self.credentials_file,
            "AWS_CONFIG_FILE": self.config_file,
            "AWS_DEFAULT_REGION": self.region_name,
            "AWS_PAGER": "",
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        })
        return env

    # -- CLIs -----------------------------------------------------------------------------------

    def _run_cli(self, base, args, credentials_file=None, timeout=CLI_TIMEOUT):
        argv = list(base) + [str(a) for a in args] + ["--endpoint-url", self.endpoint, "--output", "json"]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                             env=self.cli_env(credentials_file))
        return argv, res

    def _cli(self, base, args, **kw):
        argv, res = self._run_cli(base, args, **kw)
        if res.returncode != 0:
            raise CliError(argv, res.returncode, res.stdout, res.stderr)
        out = res.stdout.strip()
        return json.loads(out) if out else {}

    @staticmethod
    def v1_argv():
        base = _find_cli_v1()
        if base is None:
            raise unittest.SkipTest("aws-cli v1 not installed")
        return base

    @staticmethod
    def v2_argv():
        base = _find_cli_v2()
        if base is None:
            raise unittest.SkipTest("aws-cli v2 (/usr/bin/aws) not installed")
        return base

    def cli_v1(self, *args, **kw):
        """Runs the aws-cli v1 (`aws` on PATH); returns parsed JSON output ({} when empty)."""
        return self._cli(self.v1_argv(), args, **kw)

    def cli_v2(self, *args, **kw):
        """Runs aws-cli v2 (/usr/bin/aws); returns parsed JSON output ({} when empty)."""
        return self._cli(self.v2_argv(), args, **kw)

    def cli(self, version, *args, **kw):
        return self.cli_v1(*args, **kw) if version == 1 else self.cli_v2(*args, **kw)

    def cli_error(self, *args, version=1, **kw):
        """Runs a CLI command that is expected to fail; returns (exit code, stderr).
        Raises AssertionError if it succeeds."""
        base = self.v1_argv() if version == 1 else self.v2_argv()
        argv, res = self._run_cli(base, args, **kw)
        if res.returncode == 0:
            raise AssertionError("expected failure but succeeded: %s\nstdout: %s" % (" ".join(argv), res.stdout))
        return res.returncode, res.stderr

    def cli_error_code(self, *args, version=1, **kw):
        """(code, message) of an expected CLI failure."""
        _, stderr = self.cli_error(*args, version=version, **kw)
        code, msg = parse_cli_error(stderr)
        if code is None:
            raise AssertionError("CLI failed without a service error: %s" % stderr.strip())
        return code, msg

    # -- boto3 ----------------------------------------------------------------------------------

    def boto3(self, service, **config):
        """A boto3 client for this region. It follows the endpoint: after restart() (a new port) the same object
        talks to the new server, so tests may keep it across restarts."""
        key = (service, tuple(sorted(config.items())))
        if key not in self._boto_proxies:
            self._boto_proxies[key] = _FollowingClient(self, key)
        return self._boto_proxies[key]

    def _boto3_client(self, key):
        """The real client for `key` at the current endpoint (made again after each start)."""
        if key not in self._boto_clients:
            import boto3
            from botocore.config import Config
            service, config = key[0], dict(key[1])
            ak, sk = self.credentials()
            session = boto3.session.Session(aws_access_key_id=ak, aws_secret_access_key=sk,
                                            region_name=self.region_name)
            cfg = Config(proxies={}, connect_timeout=5, read_timeout=30, **config)
            self._boto_clients[key] = session.client(service, endpoint_url=self.endpoint, config=cfg)
        return self._boto_clients[key]

    def botocore_json10(self, service="autoscaling", target_prefix="AutoScaling_2011_01_01"):
        """A botocore client for `service` whose model is switched to AWS JSON 1.0 (query-compatible), as
        botocore's CloudWatch model is: requests carry X-Amz-Target and x-amzn-query-mode, errors are read from
        the JSON body and x-amzn-query-error. No retries, so an error surfaces at once."""
        import copy
        import botocore.session
        from botocore.config import Config

        ak, sk = self.credentials()
        model = copy.deepcopy(botocore.session.get_session().get_component("data_loader")
                              .load_service_model(service, "service-2"))
        meta = model["metadata"]
        meta.update({"protocol": "json", "protocols": ["json"], "jsonVersion": "1.0",
                     "targetPrefix": target_prefix, "awsQueryCompatible": {}})
        models = tempfile.mkdtemp(prefix="autopipe-json10-model-")
        try:
            version_dir = os.path.join(models, service, meta["apiVersion"])
            os.makedirs(version_dir)
            with open(os.path.join(version_dir, "service-2.json"), "w") as f:
                json.dump(model, f)
            session = botocore.session.get_session()  # a fresh loader: its cache has not seen the real model
            session.get_component("data_loader").search_paths.insert(0, models)
            return session.create_client(service, region_name=self.region_name, endpoint_url=self.endpoint,
                                         aws_access_key_id=ak, aws_secret_access_key=sk,
                                         config=Config(proxies={}, connect_timeout=5, read_timeout=30,
                                                       retries={"max_attempts": 1}))
        finally:
            shutil.rmtree(models, ignore_errors=True)  # create_client has read the model

    # -- raw signed requests --------------------------------------------------------------------

    def signed_request(self, body, service="autoscaling", access_key=None, secret_key=None, sign_body=None,
                       when=None, extra_headers=None, method="POST"):
        """Signs `sign_body` (default: body) with botocore's SigV4Auth and sends `body`.

        `when` (a timezone-aware datetime) overrides the signing time. Returns (status, headers, text).
        """
        from unittest import mock
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        if isinstance(body, str):
            body = body.encode()
        if sign_body is None:
            sign_body = body
        elif isinstance(sign_body, str):
            sign_body = sign_body.encode()
        ak, sk = self.credentials()
        creds = Credentials(access_key or ak, secret_key or sk)
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        headers.update(extra_headers or {})
        req = AWSRequest(method=method, url=self.endpoint + "/", data=sign_body, headers=headers)
        signer = SigV4Auth(creds, service, self.region_name)
        if when is not None:
            with mock.patch("botocore.auth.get_current_datetime", lambda: when):
                signer.add_auth(req)
        else:
            signer.add_auth(req)
        hdrs = {k: v for k, v in req.headers.items()}
        return self.raw_request(body, hdrs, method=method)

    def raw_request(self, body, headers=None, method="POST", path="/"):
        """Sends a request to the endpoint exactly as given. Returns (status, headers, text)."""
        if isinstance(body, str):
            body = body.encode()
        hdrs = {"Host": "%s:%d" % (self.host, self.endpoint_port)}
        if body and not any(k.lower() == "content-type" for k in (headers or {})):
            hdrs["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        hdrs.update(headers or {})
        conn = http.client.HTTPConnection(self.host, self.endpoint_port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read().decode("utf-8", "replace")
        finally:
            conn.close()

    # -- convenience queries (boto3; fast enough for polling) ----------------------------------

    def asg(self, name, client=None):
        c = client or self.boto3("autoscaling")
        groups = c.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        return groups[0] if groups else None

    def group_instances(self, name):
        g = self.asg(name)
        return g["Instances"] if g else []

    def ec2_instances(self, ids=None, filters=None):
        c = self.boto3("ec2")
        kw = {}
        if ids:
            kw["InstanceIds"] = list(ids)
        if filters:
            kw["Filters"] = filters
        out = []
        for r in c.describe_instances(**kw)["Reservations"]:
            out.extend(r["Instances"])
        return out

    def ec2_instance(self, iid):
        found = [i for i in self.ec2_instances(filters=[{"Name": "instance-id", "Values": [iid]}])]
        return found[0] if found else None

    def private_ips(self, ids):
        res = {}
        for inst in self.ec2_instances(filters=[{"Name": "instance-id", "Values": list(ids)}]):
            res[inst["InstanceId"]] = inst.get("PrivateIpAddress")
        return res

    def healthy_in_service(self, name, count):
        """Instances of the group when exactly `count` are InService+Healthy and there are no others."""
        insts = self.group_instances(name)
        good = [i for i in insts if i["LifecycleState"] == "InService" and i["HealthStatus"] == "Healthy"]
        if len(good) == count and len(insts) == count:
            return good
        return None

    def wait_group(self, name, count, timeout=CONVERGE_TIMEOUT, serving=True):
        """Waits until the group has exactly `count` InService Healthy instances that (if `serving`)
        answer GET / with their own id. Returns {instance_id: {"ip":..., "az":..., "doc":...}}."""

        def ready():
            good = self.healthy_in_service(name, count)
            if good is None:
                return None
            ids = [i["InstanceId"] for i in good]
            ips = self.private_ips(ids) if ids else {}
            res = {}
            for i in good:
                iid = i["InstanceId"]
                ip = ips.get(iid)
                if not ip:
                    return None
                doc = serves(ip) if serving else None
                if serving and (doc is None or doc.get("instance_id") != iid):
                    return None
                res[iid] = {"ip": ip, "az": i["AvailabilityZone"], "doc": doc,
                            "lc": i.get("LaunchConfigurationName")}
            return res

        try:
            return wait_until(ready, timeout, 0.5, "group %s to have %d InService Healthy%s instances"
                              % (name, count, " serving" if serving else ""))
        except WaitTimeout as e:
            raise WaitTimeout("%s\ncurrent instances: %r\n%s" % (e, self._safe_instances(name), self.diagnostics(20)))

    def _safe_instances(self, name):
        try:
            return [(i["InstanceId"], i["AvailabilityZone"], i["LifecycleState"], i["HealthStatus"])
                    for i in self.group_instances(name)]
        except Exception as e:  # noqa: BLE001
            return repr(e)

    def activities(self, name):
        c = self.boto3("autoscaling")
        out, token = [], None
        while True:
            kw = {"AutoScalingGroupName": name}
            if token:
                kw["NextToken"] = token
            r = c.describe_scaling_activities(**kw)
            out.extend(r["Activities"])
            token = r.get("NextToken")
            if not token:
                return out

    def create_lc(self, name, image=SAMPLE_AMI, instance_type="t3.micro", **kw):
        self.boto3("autoscaling").create_launch_configuration(
            LaunchConfigurationName=name, ImageId=image, InstanceType=instance_type, **kw)

    def create_group(self, name, lc, size, azs=("us-west-2a", "us-west-2b"), min_size=None, max_size=None, **kw):
        self.boto3("autoscaling").create_auto_scaling_group(
            AutoScalingGroupName=name, LaunchConfigurationName=lc,
            MinSize=size if min_size is None else min_size, MaxSize=max(size, 1) if max_size is None else max_size,
            DesiredCapacity=size, AvailabilityZones=list(azs), **kw)


class _FollowingClient:
    """Stands for a Region's boto3 client: every attribute is looked up on the client for the region's current
    endpoint, which changes when the server restarts on a new port."""

    def __init__(self, region, key):
        self._region = region
        self._key = key

    def __getattr__(self, name):
        return getattr(self._region._boto3_client(self._key), name)


def b64(s):
    return base64.b64encode(s.encode()).decode()


def az_counts(instances):
    """{az: n} for a list of ASG instance dicts or wait_group() values."""
    counts = {}
    for i in instances:
        az = i["AvailabilityZone"] if "AvailabilityZone" in i else i["az"]
        counts[az] = counts.get(az, 0) + 1
    return counts


def _close_all():
    for r in list(_live_regions):
        with contextlib.suppress(Exception):
            r.close()


import atexit  # noqa: E402

atexit.register(_close_all)
