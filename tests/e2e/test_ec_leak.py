"""No redis-server outlives its replication group or its region (the leak seen in earlier full runs).

- A server killed after it relaunched a failed node but before it recorded the new process leaves a redis-server
  that carries the node's launch token while the node's document still names the dead process. The next server
  must stop (or adopt) it: deleting the group and `autopipe down` leave no process of the data dir.
- Delete right after the group becomes available, while the last node records are still being written, and
  down: no process of the data dir is left.
"""

import json
import os
import sqlite3
import subprocess
import sys
import unittest

import harness
from harness import Region, wait_until

sys.path.append("/usr/lib/python3/dist-packages")

RG = "leaky"

CALL = dict(ReplicationGroupId=RG, ReplicationGroupDescription="d", NumNodeGroups=2, ReplicasPerNodeGroup=1,
            CacheNodeType="cache.t3.micro", Engine="redis", CacheParameterGroupName="default.redis7.cluster.on",
            AutomaticFailoverEnabled=True)


def status(ec):
    try:
        return ec.describe_replication_groups(ReplicationGroupId=RG)["ReplicationGroups"][0]["Status"]
    except Exception as e:  # noqa: BLE001
        if getattr(e, "response", {}).get("Error", {}).get("Code") == "ReplicationGroupNotFoundFault":
            return "gone"
        raise


def node_docs(data_dir):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "state.db"), uri=True, timeout=5)
    try:
        return {i: json.loads(d) for i, d in db.execute("SELECT id, doc FROM documents WHERE kind='cache_node'")}
    finally:
        db.close()


def put_node_doc(data_dir, cluster_id, doc):
    db = sqlite3.connect(os.path.join(data_dir, "state.db"), timeout=5)
    try:
        db.execute("UPDATE documents SET doc=? WHERE kind='cache_node' AND id=?", (json.dumps(doc), cluster_id))
        db.commit()
    finally:
        db.close()


def redis_of(data_dir):
    return [(p, c) for p, c in harness.data_dir_processes(data_dir) if "redis-server" in c]


class CacheNodeLeakTest(unittest.TestCase):
    def delete_and_down(self, region, ec):
        ec.delete_replication_group(ReplicationGroupId=RG)
        wait_until(lambda: status(ec) == "gone", 30, 0.1, "the group to be deleted")
        # Deleted means stopped: nothing of the group runs any more, before `down` has anything to do with it.
        left = redis_of(region.data_dir)
        self.assertEqual(left, [], "redis-server processes left after the group was deleted")
        self.assertEqual(region.down().returncode, 0)
        self.assertEqual(harness.data_dir_processes(region.data_dir), [], "processes left after autopipe down")

    def test_relaunch_unrecorded_when_the_server_died(self):
        region = Region.for_test(self)
        ec = region.boto3("elasticache")
        ec.create_replication_group(**CALL)
        wait_until(lambda: status(ec) == "available", 60, 0.1, "the group")
        docs = node_docs(region.data_dir)
        replica_id = sorted(i for i, d in docs.items() if i.endswith("-002"))[0]
        replica = docs[replica_id]
        region.kill9()
        # What the dead server left: the replica's process died and was marked recovering (committed); the server
        # then relaunched it and was killed before committing the new pid. The relaunched process carries the
        # node's token, holds the node's address, and no document names it.
        harness.kill9(replica["Pid"])
        wait_until(lambda: not harness.pid_alive(replica["Pid"]), 10, 0.05, "the replica's process to die")
        replica.update(Status="recovering", Wiped=False, Generation=replica.get("Generation", 0) + 1)
        put_node_doc(region.data_dir, replica_id, replica)
        node_dir = os.path.join(region.data_dir, "elasticache", RG, replica_id)
        env = {"PATH": "/usr/bin:/bin", "AUTOPIPE_LAUNCH_TOKEN": replica["LaunchToken"]}
        stray = subprocess.Popen(["redis-server", "--bind", replica["Address"], "--port", str(replica["Port"]),
                                  "--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
                                  "--cluster-config-file", "nodes.conf", "--dir", "./", "--set-proc-title", "no"],
                                 cwd=node_dir, env=env, start_new_session=True, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: stray.poll() is None and stray.kill())
        wait_until(lambda: any(p == stray.pid for p, _ in redis_of(region.data_dir)), 10, 0.05, "the stray")
        region.restart()
        # The rebuilt replica is the server's own process again, and the group available.
        wait_until(lambda: status(ec) == "available" and stray.poll() is not None, 60, 0.1,
                   "the stray to be stopped and the group to recover")
        self.delete_and_down(region, ec)

    def test_delete_right_after_available(self):
        region = Region.for_test(self)
        ec = region.boto3("elasticache")
        ec.create_replication_group(**CALL)
        wait_until(lambda: status(ec) == "available", 60, 0.02, "the group")
        self.delete_and_down(region, ec)


if __name__ == "__main__":
    unittest.main()
