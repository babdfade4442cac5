"""The load balancer's data plane on its own: one `autopipe lb` node in front of two real sample-app
instances (`autopipe sample-app`), driven over raw sockets and http.client.

Everything listens in an address block leased from harness.lease_block() for this module (held until the
module ends), so no other run on the machine listens there: the node's listeners and the back ends can use
fixed ports on those addresses (the node config needs them up front, and every back end behind a listener
answers on the same instance port). The misbehaving back end binds port 0 and the config takes the port it
got. Only processes this module started are signalled, by pid.
"""

import contextlib
import http.client
import json
import os
import select
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import autopipe_bin, log, wait_until

# Ports on this module's own addresses (see above). The listener ports differ from the instance port so that
# a node forwarding to the wrong port fails.
PORT = 8080
TCP_PORT = 8090
BACKEND_PORT = 8081
IDLE_TIMEOUT = 3

_lease = None  # this module's address block, from setUpModule to tearDownModule
LB = None      # the node's address, in that block


def setUpModule():
    global _lease, LB
    _lease = harness.lease_block()
    LB = block_addr(0, 10)
    log("test_lb_node uses address block %s" % _lease.block)


def tearDownModule():
    _lease.release()


def block_addr(third, fourth):
    """An address in this module's block."""
    return "%s%d.%d" % (_lease.prefix, third, fourth)


def backend_addr(i):
    return block_addr(0, i + 1)


def assert_free(address, port):
    """Nothing may already listen where this module listens (the lease should guarantee it; a leftover would
    share the node's SO_REUSEPORT address and its back ends' ports, and the test would see its traffic)."""
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex((address, port)) == 0:
            raise RuntimeError("%s:%d is already in use in this module's leased block" % (address, port))


class NodeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="autopipe-lbnode-")
        for addr, port in [(LB, PORT), (LB, TCP_PORT), (backend_addr(0), BACKEND_PORT),
                           (backend_addr(1), BACKEND_PORT)]:
            assert_free(addr, port)
        cls.procs = {}
        cls.backends = {}
        for i, iid in enumerate(["i-aaaa", "i-bbbb"]):
            cls.start_backend(iid, backend_addr(i))
        cls.config_path = os.path.join(cls.dir, "config.json")
        cls.status_path = os.path.join(cls.dir, "status.json")
        cls.access_log = os.path.join(cls.dir, "access.log")
        cls.version = 0
        cls.write_config()
        cls.node_log = open(os.path.join(cls.dir, "node.log"), "ab")
        cls.node = subprocess.Popen([autopipe_bin(), "lb", "--config", cls.config_path],
                                    stdout=cls.node_log, stderr=subprocess.STDOUT)
        wait_until(lambda: cls.healthy_ids() == {"i-aaaa", "i-bbbb"}, timeout=15, what="both back ends healthy")

    @classmethod
    def tearDownClass(cls):
        for p in [cls.node] + list(cls.procs.values()):
            if p.poll() is None:
                p.kill()
                p.wait()
        cls.node_log.close()

    # --- helpers ------------------------------------------------------------------------------------------

    @classmethod
    def start_backend(cls, iid, addr):
        env = dict(os.environ, AUTOPIPE_INSTANCE_ID=iid, AUTOPIPE_PRIVATE_IP=addr)
        with open(os.path.join(cls.dir, iid + ".log"), "ab") as out:  # the child keeps its own copy
            cls.procs[iid] = subprocess.Popen([autopipe_bin(), "sample-app", "--listen",
                                               "%s:%d" % (addr, BACKEND_PORT)],
                                              stdout=out, stderr=subprocess.STDOUT, env=env)
        cls.backends[iid] = addr
        wait_until(lambda: socket.create_connection((addr, BACKEND_PORT), timeout=1).close() or True,
                   timeout=10, what="%s listening" % iid)

    @classmethod
    def write_config(cls, backends=None, draining=(), health_target="HTTP:%d/health" % BACKEND_PORT,
                     idle_timeout=IDLE_TIMEOUT):
        cls.version += 1
        ids = sorted(cls.backends) if backends is None else backends
        config = {
            "version": cls.version,
            "load_balancer_name": "node-test",
            "availability_zone": "us-west-2a",
            "addresses": [LB],
            "listeners": [
                {"protocol": "HTTP", "port": PORT, "instance_protocol": "HTTP", "instance_port": BACKEND_PORT},
                {"protocol": "TCP", "port": TCP_PORT, "instance_protocol": "TCP", "instance_port": BACKEND_PORT},
            ],
            "backends": [{"id": i, "address": cls.backends[i], "availability_zone": "us-west-2a",
                          "draining": i in draining} for i in ids],
            "health_check": {"target": health_target, "interval_seconds": 5, "timeout_seconds": 2,
                             "healthy_threshold": 2, "unhealthy_threshold": 2},
            "idle_timeout_seconds": idle_timeout,
            "draining_enabled": True,
            "draining_timeout_seconds": 30,
            "access_log_path": cls.access_log,
            "status_path": cls.status_path,
            "threads": 2,
        }
        tmp = cls.config_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(config, f)
        os.rename(tmp, cls.config_path)

    @classmethod
    def reload(cls, **kwargs):
        cls.write_config(**kwargs)
        cls.node.send_signal(signal.SIGHUP)
        wait_until(lambda: cls.status()["config_version"] == cls.version, timeout=5, what="config applied")

    @classmethod
    def status(cls):
        with open(cls.status_path) as f:
            return json.load(f)

    @classmethod
    def active_requests(cls):
        """Requests the node has in flight to its back ends, per its status.json (written every second)."""
        try:
            return sum(b["active_requests"] for b in cls.status()["backends"])
        except (OSError, ValueError):
            return 0

    @classmethod
    def healthy_ids(cls):
        try:
            return {b["id"] for b in cls.status()["backends"] if b["health"] == "healthy"}
        except (OSError, ValueError):
            return set()

    def get(self, path="/", headers=None, timeout=5, port=PORT):
        conn = http.client.HTTPConnection(LB, port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def raw(self, data, timeout=8, read_until_close=True):
        """Sends raw bytes; returns everything the node sends back until it closes (or the timeout)."""
        s = socket.create_connection((LB, PORT), timeout=timeout)
        try:
            s.sendall(data)
            chunks = []
            while True:
                try:
                    b = s.recv(65536)
                except socket.timeout:
                    break
                if not b:
                    break
                chunks.append(b)
                if not read_until_close:
                    break
            return b"".join(chunks)
        finally:
            s.close()

    @staticmethod
    def readable(s):
        """True when socket s has data (or EOF) waiting, without consuming it."""
        r, _, _ = select.select([s], [], [], 0)
        return bool(r)

    def assert_serving(self):
        status, _, body = self.get("/")
        self.assertEqual(status, 200)
        self.assertIn(json.loads(body)["instance_id"], self.backends)

    # --- tests --------------------------------------------------------------------------------------------

    def test_requests_reach_both_backends_with_forwarded_headers(self):
        seen = set()
        for _ in range(20):
            status, _, body = self.get("/headers", headers={"X-Forwarded-For": "203.0.113.7",
                                                            "X-Forwarded-Proto": "https"})
            self.assertEqual(status, 200)
            doc = json.loads(body)
            seen.add(doc["instance_id"])
            h = {k.lower(): v for k, v in doc["headers"].items()}
            self.assertEqual(h["x-forwarded-for"], "203.0.113.7, 127.0.0.1")  # appended, client last
            self.assertEqual(h["x-forwarded-proto"], "http")                  # the listener's, not the client's
            self.assertEqual(h["x-forwarded-port"], str(PORT))
        self.assertEqual(seen, {"i-aaaa", "i-bbbb"})

    def test_keep_alive_reuses_client_connection(self):
        conn = http.client.HTTPConnection(LB, PORT, timeout=5)
        try:
            for _ in range(50):
                conn.request("GET", "/")
                resp = conn.getresponse()
                self.assertEqual(resp.status, 200)
                resp.read()
            self.assertIsNotNone(conn.sock)  # still the first connection
        finally:
            conn.close()

    def test_malformed_request_gets_400_and_node_keeps_serving(self):
        for bad in [b"GARBAGE\r\n\r\n",
                    b"GET / HTTP/1.1\nHost: x\n\n",                                     # bare LF
                    b"GET / HTTP/1.1\r\nHost: x\r\n folded: y\r\n\r\n",                # obs-fold
                    b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",                              # space before colon
                    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
                    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",                      # smuggling
                    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                    b"GET / HTTP/1.1\r\n\r\n"]:                                       # 1.1 without Host
            reply = self.raw(bad)
            self.assertTrue(reply.startswith(b"HTTP/1.1 400 "), (bad, reply[:80]))
            self.assert_serving()
        reply = self.raw(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 400 "), reply[:80])
        reply = self.raw(b"A" * 200 + b" / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 405 "), reply[:80])
        self.assert_serving()
        wait_until(lambda: self.status()["metrics"]["HTTPCode_ELB_4XX"] >= 10, timeout=3, what="ELB 4XX counted")

    def test_bodies_are_streamed_both_ways(self):
        body = os.urandom(3 * 1024 * 1024)
        conn = http.client.HTTPConnection(LB, PORT, timeout=20)
        try:
            conn.request("POST", "/echo", body=body, headers={"Expect": "100-continue"})
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.read(), body)

            def chunks():
                for i in range(0, len(body), 100000):
                    yield body[i:i + 100000]
            conn.request("POST", "/echo", body=chunks(), encode_chunked=True)
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.getheader("X-Body-Length"), str(len(body)))
            self.assertEqual(resp.read(), body)
        finally:
            conn.close()

    def test_expect_100_continue_is_answered_by_the_node(self):
        s = socket.create_connection((LB, PORT), timeout=5)
        try:
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            first = s.recv(1024)
            self.assertTrue(first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), first)
            s.sendall(b"hello")
            reply = b""
            while not reply.endswith(b"hello"):
                b = s.recv(65536)
                if not b:
                    break
                reply += b
            self.assertIn(b" 200 ", reply.split(b"\r\n")[0] if not reply.startswith(b"HTTP/1.1 100") else reply)
            self.assertTrue(reply.endswith(b"hello"))
        finally:
            s.close()

    def read_responses(self, s, count, timeout):
        """Reads `count` complete responses with Content-Length bodies from socket s; returns their status lines."""
        s.settimeout(timeout)
        data, statuses = b"", []
        while len(statuses) < count:
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    return statuses
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(rest) < length:
                chunk = s.recv(65536)
                if not chunk:
                    return statuses
                rest += chunk
            statuses.append(head.split(b"\r\n")[0])
            data = rest[length:]
        return statuses

    def test_pipelined_request_arriving_in_pieces_is_served(self):
        # The first request must still be in flight when the rest of the second arrives. The node's status (written
        # every second) shows when it is; the request sleeps long enough to be seen, under a longer idle timeout.
        self.reload(idle_timeout=15)
        s = socket.create_connection((LB, PORT), timeout=5)
        try:
            s.sendall(b"GET /sleep?ms=4000 HTTP/1.1\r\nHost: x\r\n\r\nGET /headers HTTP/1.1\r\nHo")
            wait_until(lambda: self.active_requests() >= 1, timeout=5, interval=0.05,
                       what="the first pipelined request in flight")
            self.assertFalse(self.readable(s), "the first response came back before the test could send the rest")
            s.sendall(b"st: x\r\n\r\n")
            statuses = self.read_responses(s, 2, timeout=10)
        finally:
            s.close()
            self.reload()
        self.assertEqual(statuses, [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"])

    def test_upload_longer_than_the_idle_timeout_is_not_cut_off(self):
        body = os.urandom(1000 * (2 * IDLE_TIMEOUT + 2))
        s = socket.create_connection((LB, PORT), timeout=5)
        try:
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
            for i in range(0, len(body), 1000):  # 1000 bytes every 0.5 s: busy, but slower than the timeout
                s.sendall(body[i:i + 1000])
                time.sleep(0.5)
            statuses = self.read_responses(s, 1, timeout=5)
        finally:
            s.close()
        self.assertEqual(statuses, [b"HTTP/1.1 200 OK"])

    def test_slow_client_gets_408(self):
        start = time.monotonic()
        s = socket.create_connection((LB, PORT), timeout=IDLE_TIMEOUT + 5)
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and then nothing more, or a byte now and then
            reply = b""
            while True:
                time.sleep(0.5)
                try:
                    s.sendall(b"X")  # trickling keeps the connection busy but never completes the head
                except OSError:
                    pass
                s.settimeout(0.1)
                try:
                    b = s.recv(4096)
                    if not b:
                        break
                    reply += b
                except socket.timeout:
                    pass
                if time.monotonic() - start > IDLE_TIMEOUT + 5:
                    break
            self.assertTrue(reply.startswith(b"HTTP/1.1 408 "), reply[:80])
        finally:
            s.close()
        self.assert_serving()

    def test_backend_slower_than_idle_timeout_gets_504(self):
        status, _, _ = self.get("/sleep?ms=%d" % ((IDLE_TIMEOUT + 2) * 1000), timeout=IDLE_TIMEOUT + 10)
        self.assertEqual(status, 504)
        self.assert_serving()

    def test_least_outstanding_requests_spread_slow_requests(self):
        results = []

        def slow():
            status, _, body = self.get("/sleep?ms=8000", timeout=20)
            results.append((status, json.loads(body)["instance_id"] if status == 200 else None))
        threads = [threading.Thread(target=slow) for _ in range(4)]
        # One at a time, so each choice sees the ones before it in flight: the next request goes out once the
        # node's status (written every second) counts the previous one. 8 s requests outlast the four waits; the
        # idle timeout is raised to let them.
        self.reload(idle_timeout=20)
        try:
            for k, t in enumerate(threads, 1):
                t.start()
                wait_until(lambda: self.active_requests() >= k, timeout=5, interval=0.05,
                           what="%d slow requests in flight" % k)
        finally:
            for t in threads:
                t.join(30)
            self.reload()
        per = {}
        for status, iid in results:
            self.assertEqual(status, 200)
            per[iid] = per.get(iid, 0) + 1
        self.assertEqual(per, {"i-aaaa": 2, "i-bbbb": 2})

    def test_tcp_listener_proxies_bytes(self):
        s = socket.create_connection((LB, TCP_PORT), timeout=5)
        try:
            s.sendall(b"GET /headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                reply += b
        finally:
            s.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 200"), reply[:80])
        self.assertNotIn(b"X-Forwarded-For", reply)  # TCP listeners do not touch the bytes

    def test_z_reload_keeps_connections_and_draining_finishes_in_flight(self):
        conn = http.client.HTTPConnection(LB, PORT, timeout=10)
        conn.request("GET", "/")
        r = conn.getresponse()
        r.read()
        # A slow request in flight on whichever back end serves it...
        result = {}

        def slow():
            status, _, body = self.get("/sleep?ms=2500", timeout=10)
            result["status"] = status
            result["iid"] = json.loads(body)["instance_id"] if status == 200 else None
        t = threading.Thread(target=slow)
        t.start()
        busy = wait_until(lambda: [b["id"] for b in self.status()["backends"] if b["active_requests"] > 0],
                          timeout=3, what="the slow request in the node's status")
        self.assertEqual(len(busy), 1, self.status()["backends"])
        draining = busy[0]
        other = ({"i-aaaa", "i-bbbb"} - {draining}).pop()
        # ...then its back end starts draining: the request finishes, new ones go to the other.
        self.reload(draining=(draining,))
        for _ in range(10):
            status, _, body = self.get("/")
            self.assertEqual(json.loads(body)["instance_id"], other)
        t.join()
        self.assertEqual(result, {"status": 200, "iid": draining})
        # The keep-alive connection opened before the reload still works.
        conn.request("GET", "/")
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        r.read()
        conn.close()
        self.reload()
        wait_until(lambda: self.healthy_ids() == {"i-aaaa", "i-bbbb"}, timeout=10)

    def test_y_new_backend_serves_as_soon_as_it_answers(self):
        # Registered before its service listens (as an instance is): the first check fails, then it is checked
        # every second rather than every 5 s interval, and those early failures do not make it unhealthy.
        iid, addr = "i-cccc", backend_addr(2)
        assert_free(addr, BACKEND_PORT)
        self.__class__.backends[iid] = addr
        try:
            self.reload()
            wait_until(lambda: any(b["id"] == iid and b["last_error"] for b in self.status()["backends"]),
                       timeout=3, what="the first check of %s failing" % iid)
            self.start_backend(iid, addr)
            seen = []

            def healthy():
                health = [b["health"] for b in self.status()["backends"] if b["id"] == iid][0]
                seen.append(health)
                return health == "healthy"
            wait_until(healthy, timeout=3, interval=0.2, what="%s healthy well before the next 5 s check" % iid)
            self.assertNotIn("unhealthy", seen)
        finally:
            proc = self.procs.pop(iid, None)
            if proc is not None:
                proc.kill()
                proc.wait()
            del self.__class__.backends[iid]
            self.reload()

    def test_z_no_backends_gives_503(self):
        self.reload(backends=[])
        try:
            status, _, _ = self.get("/")
            self.assertEqual(status, 503)
        finally:
            self.reload()
        wait_until(lambda: self.healthy_ids() == {"i-aaaa", "i-bbbb"}, timeout=10)
        self.assert_serving()

    def test_zz_killed_backend_costs_no_new_requests(self):
        victim = "i-bbbb"
        self.procs[victim].kill()
        self.procs[victim].wait()
        failures = 0
        for _ in range(100):
            status, _, body = self.get("/")
            if status != 200:
                failures += 1
            else:
                self.assertEqual(json.loads(body)["instance_id"], "i-aaaa")
        self.assertEqual(failures, 0)
        wait_until(lambda: self.status()["metrics"]["BackendConnectionErrors"] >= 1, timeout=3)
        # It comes back as soon as it answers again (ejected back ends are re-checked every second).
        self.start_backend(victim, self.backends[victim])
        wait_until(lambda: {json.loads(self.get("/")[2])["instance_id"] for _ in range(10)} == {"i-aaaa", "i-bbbb"},
                   timeout=10, what="the restarted back end back in rotation")

    def test_metrics_and_access_log(self):
        for _ in range(10):
            self.assertEqual(self.get("/access-log-probe")[0], 404)  # the sample app has no such path
        # No other test gets a 4XX from a back end, so all of these are ours.
        wait_until(lambda: self.status()["metrics"]["HTTPCode_Backend_4XX"] >= 10, timeout=5,
                   what="back-end 4XX counted")
        self.assertGreater(self.status()["metrics"]["LatencyCount"], 0)

        def logged():
            with open(self.access_log) as f:
                return sum(1 for line in f if '"GET /access-log-probe HTTP/1.1"' in line)
        wait_until(lambda: logged() >= 10, timeout=5, what="access log lines")


class MisbehavingBackend(socketserver.ThreadingTCPServer):
    """A back end that breaks HTTP on purpose, chosen by path."""
    daemon_threads = True
    allow_reuse_address = True

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = self.request.recv(65536)
                if not chunk:
                    return
                data += chunk
            path = data.split(b" ", 2)[1]
            if path == b"/half":      # promises 100 bytes, sends 3, dies
                self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
            elif path == b"/garbage":  # not HTTP at all
                self.request.sendall(b"SURPRISE\r\n\r\n")
            elif path == b"/hangup":   # closes without a word
                pass
            elif path == b"/reject":   # answers before reading the body, then closes
                self.request.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n"
                                     b"Connection: close\r\n\r\n")
                # Closing with the upload still arriving would reset the connection, and a reset may discard the
                # answer before the node reads it. So close our side only, and read (and drop) whatever still
                # comes until the node closes its side too (bounded).
                self.request.shutdown(socket.SHUT_WR)
                self.request.settimeout(10)
                with contextlib.suppress(OSError):
                    while self.request.recv(65536):
                        pass
            else:
                self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


class BrokenBackendTest(unittest.TestCase):
    """What the node does when the back end itself misbehaves: the client gets ELB's answer (or, once the
    response has started, a closed connection), and the node keeps serving."""

    @classmethod
    def setUpClass(cls):
        cls.LB2 = block_addr(0, 20)
        cls.BACKEND = block_addr(0, 21)
        assert_free(cls.LB2, PORT)
        cls.dir = tempfile.mkdtemp(prefix="autopipe-lbnode-broken-")
        # Port 0: the kernel picks the back end's port, and the node's config takes the one it got.
        cls.server = MisbehavingBackend((cls.BACKEND, 0), MisbehavingBackend.Handler)
        backend_port = cls.server.server_address[1]
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        config = {
            "version": 1, "load_balancer_name": "broken", "availability_zone": "us-west-2a",
            "addresses": [cls.LB2],
            "listeners": [{"protocol": "HTTP", "port": PORT, "instance_protocol": "HTTP",
                           "instance_port": backend_port}],
            "backends": [{"id": "i-broken", "address": cls.BACKEND, "availability_zone": "us-west-2a",
                          "draining": False}],
            "health_check": {"target": "TCP:%d" % backend_port, "interval_seconds": 5, "timeout_seconds": 2,
                             "healthy_threshold": 2, "unhealthy_threshold": 2},
            "idle_timeout_seconds": IDLE_TIMEOUT, "draining_enabled": False, "draining_timeout_seconds": 300,
            "access_log_path": "", "status_path": os.path.join(cls.dir, "status.json"), "threads": 2,
        }
        path = os.path.join(cls.dir, "config.json")
        with open(path, "w") as f:
            json.dump(config, f)
        cls.log = open(os.path.join(cls.dir, "node.log"), "ab")
        cls.node = subprocess.Popen([autopipe_bin(), "lb", "--config", path], stdout=cls.log,
                                    stderr=subprocess.STDOUT)

        def ok():
            conn = http.client.HTTPConnection(cls.LB2, PORT, timeout=2)
            try:
                conn.request("GET", "/ok")
                return conn.getresponse().status == 200
            finally:
                conn.close()
        wait_until(ok, timeout=15, what="the broken-backend node serving")

    @classmethod
    def tearDownClass(cls):
        cls.node.kill()
        cls.node.wait()
        cls.server.shutdown()
        cls.server.server_close()
        cls.log.close()

    def get(self, path):
        conn = http.client.HTTPConnection(self.LB2, PORT, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def test_unparsable_response_is_502(self):
        self.assertEqual(self.get("/garbage")[0], 502)
        self.assertEqual(self.get("/ok"), (200, b"ok"))

    def test_backend_closing_without_response_is_504(self):
        self.assertEqual(self.get("/hangup")[0], 504)
        self.assertEqual(self.get("/ok"), (200, b"ok"))

    def test_early_answer_during_an_upload_reaches_the_client(self):
        conn = http.client.HTTPConnection(self.LB2, PORT, timeout=10)
        try:
            conn.request("POST", "/reject", body=os.urandom(8 * 1024 * 1024))  # fails if the node resets us
            self.assertEqual(conn.getresponse().status, 413)
        finally:
            conn.close()
        self.assertEqual(self.get("/ok"), (200, b"ok"))

    def test_backend_dying_mid_response_closes_the_client_connection(self):
        with self.assertRaises(http.client.IncompleteRead):
            self.get("/half")
        self.assertEqual(self.get("/ok"), (200, b"ok"))


if __name__ == "__main__":
    unittest.main()
