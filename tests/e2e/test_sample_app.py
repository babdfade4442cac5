"""The built-in image's sample service keeps answering its health check however many connections clients hold
open: with a fixed pool of workers, 100 keep-alive connections from a load balancer or wrk took every worker,
the health check waited behind them until it timed out, and ELB health checks replaced a healthy instance.
"""

import http.client
import socket
import subprocess
import time
import unittest

import harness
from harness import autopipe_bin, lease_block, wait_until

HELD = 200  # more than any fixed pool the service ever had (64)


class SampleAppUnderHeldConnectionsTest(unittest.TestCase):

    def setUp(self):
        self.lease = lease_block()
        self.addCleanup(self.lease.release)
        self.ip = "%s.1.1" % self.lease.block
        self.port = 8080  # on this test's own leased address
        self.proc = subprocess.Popen([autopipe_bin(), "sample-app", "--listen", "%s:%d" % (self.ip, self.port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(self.stop)
        wait_until(lambda: harness.serves(self.ip, self.port) is not None, 10, 0.1, "the sample app to serve")
        self.held = []
        self.addCleanup(self.close_held)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def close_held(self):
        for s in self.held:
            s.close()

    def read_head(self, s):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data

    def test_new_connections_and_health_are_served_while_many_are_held(self):
        # HELD clients connect and each sends a request at once, then keeps its connection open (keep-alive), as
        # a load balancer's pool or wrk does. Every one is answered (a fixed pool served only the first 64 and let
        # the rest wait until one of those went idle for 5 s).
        for _ in range(HELD):
            s = socket.create_connection((self.ip, self.port), timeout=3)
            s.sendall(b"GET / HTTP/1.1\r\nHost: sample\r\n\r\n")
            self.held.append(s)
        for i, s in enumerate(self.held):
            try:
                head = self.read_head(s)
            except socket.timeout:
                self.fail("connection %d of %d was not served within 3 s" % (i + 1, HELD))
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:80])
        # With all of them still open, the health check is answered well inside ELB's default 5 s timeout.
        started = time.monotonic()
        conn = http.client.HTTPConnection(self.ip, self.port, timeout=3)
        conn.request("GET", "/health")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        resp.read()
        conn.close()
        harness.log("/health answered in %.1f ms with %d connections held" % ((time.monotonic() - started) * 1000,
                                                                            HELD))


if __name__ == "__main__":
    unittest.main()
