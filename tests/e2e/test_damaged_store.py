"""A damaged or emptied state.db stops the server at start with a clear message, and changes nothing: a region
must never start on partial state and act on it (kill instances it no longer knows, reuse their addresses).
"""

import hashlib
import os
import subprocess
import unittest

import harness
from harness import Region

LC = "damaged-store-lc"


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class DamagedStoreTest(unittest.TestCase):

    def stopped_region_with_state(self):
        region = Region.for_test(self)
        # Enough documents that the database spans many pages.
        for i in range(40):
            region.cli_v1("autoscaling", "create-launch-configuration", "--launch-configuration-name",
                          "%s-%d" % (LC, i), "--image-id", harness.SAMPLE_AMI, "--instance-type", "t3.micro",
                          "--user-data", "x" * 2000)
        res = region.down()
        self.assertEqual(res.returncode, 0, res.stderr)
        return region

    def start_fails(self, region):
        res = subprocess.run([harness.autopipe_bin(), "server", "--data-dir", region.data_dir, "--listen",
                              "127.0.0.1:0", "--address-block", "127.%d" % region.block],
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertNotEqual(res.returncode, 0, "the server started on a damaged store:\n" + res.stdout)
        self.assertFalse(os.path.exists(os.path.join(region.data_dir, "endpoint")))
        return res.stderr

    def test_a_damaged_page_refuses_to_start_and_changes_nothing(self):
        region = self.stopped_region_with_state()
        db = os.path.join(region.data_dir, "state.db")
        # Checkpointed by the clean stop; damage a page in the middle of the file.
        size = os.path.getsize(db)
        self.assertGreater(size, 16 * 4096)
        with open(db, "r+b") as f:
            f.seek((size // 4096 // 2) * 4096 + 100)
            f.write(os.urandom(2000))
        before = digest(db)
        message = self.start_fails(region)
        self.assertIn("state.db", message)
        self.assertEqual(digest(db), before, "a refused start changed the store")

    def test_an_emptied_store_refuses_to_start(self):
        region = self.stopped_region_with_state()
        db = os.path.join(region.data_dir, "state.db")
        for suffix in ("-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        open(db, "wb").close()
        message = self.start_fails(region)
        self.assertIn("state.db", message)
        self.assertEqual(os.path.getsize(db), 0)


if __name__ == "__main__":
    unittest.main()
