#!/usr/bin/env python3
"""ElastiCache benchmarks (issue 11): the seed's replication group on real redis-server nodes.

  1. create -> available for the seed's group (2 shards x 3 nodes), --create-runs times (a fresh region each);
  2. failover: --trials kill -9 of a primary (shards in turn) under a writer doing INCR on one key of that shard
     through a RedisCluster client: seconds from the kill to the first acknowledged write after it, and writes
     lost (acknowledged INCRs the counter no longer holds: replication is asynchronous); each trial waits for the
     group to be back to 6 available nodes;
  3. RSS of each idle node (VmRSS);
  4. redis-benchmark SET/GET (--cluster) against a node directly and through the configuration endpoint;
  5. online resharding 2 -> 3 -> 2 shards with --reshard-keys keys in the group: wall time to available, and the
     migration itself (from the first slot moved, as the completion event says);
  6. a TLS + AuthToken group (TransitEncryptionEnabled): create -> available, and redis-benchmark --tls against
     one of its nodes and through its configuration endpoint, beside the plain figures of 4.

Writes bench/results/elasticache-<time>.json. Uses the e2e harness (tests/e2e/harness.py): its own region in a
leased address block, `autopipe down` in a finally, signals only the redis-server pids it looked up by address.

    python3 bench/elasticache_bench.py [--trials 20] [--create-runs 3] [--bin build/autopipe]
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import harness  # noqa: E402
import test_elasticache as t  # noqa: E402  (the corrected call, helpers)
from redis.cluster import RedisCluster  # noqa: E402


def percentile(values, p):
    values = sorted(values)
    if not values:
        return None
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * (len(values) - 1)))))
    return values[k]


def create_group(region):
    ec = region.boto3("elasticache")
    t0 = time.monotonic()
    ec.create_replication_group(**t.CORRECTED_CALL)
    harness.wait_until(lambda: t.all_available(region, 6), 120, 0.02, "available")
    return time.monotonic() - t0


def failover_trial(region, endpoint, shard_lo, shard_hi, n):
    key = t.key_in(shard_lo, shard_hi, "bench-%d" % n)
    victim_ip, victim_port = harness.wait_until(lambda: t.primary_of(t.slot_of(key), endpoint), 10, 0.02,
                                                "the slot map")
    pid = t.redis_server_pid(victim_ip, victim_port)
    acked = []
    stop = threading.Event()

    def writer():
        c = None
        while not stop.is_set():
            try:
                if c is None:
                    c = RedisCluster(host=endpoint["Address"], port=endpoint["Port"], socket_timeout=0.3,
                                     socket_connect_timeout=0.3)
                c.incr(key)
                acked.append(time.monotonic())
            except Exception:  # noqa: BLE001
                c = None
            time.sleep(0.002)

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    harness.wait_until(lambda: len(acked) > 20, 10, 0.01, "the writer")
    t_kill = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    harness.wait_until(lambda: t.primary_of(t.slot_of(key), endpoint)[0] != victim_ip, 20, 0.01, "promotion")
    t_promoted = time.monotonic()
    harness.wait_until(lambda: [a for a in acked if a > t_promoted], 20, 0.01, "a write after the promotion")
    time.sleep(0.2)
    stop.set()
    th.join(5)
    before = [a for a in acked if a <= t_kill]
    after = [a for a in acked if a > t_kill]
    # The pause: the longest wait between acknowledged writes from the last one before the kill on.
    seq = before[-1:] + after
    pause = max(b - a for a, b in zip(seq, seq[1:]))
    value = None
    deadline = time.monotonic() + 10
    while value is None and time.monotonic() < deadline:
        try:
            c = RedisCluster(host=endpoint["Address"], port=endpoint["Port"], socket_timeout=2)
            try:
                value = int(c.get(key) or 0)
            finally:
                c.close()
        except Exception:  # noqa: BLE001 - a client holding the old map right after the failover
            time.sleep(0.05)
    lost = max(0, len(acked) - value)
    harness.wait_until(lambda: t.all_available(region, 6), 60, 0.05, "recovery")
    return {"pause_s": round(pause, 4), "acked": len(acked), "lost": lost, "victim": victim_ip}


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def redis_benchmark(host, port, extra=()):
    out = subprocess.run(["redis-benchmark", "-h", host, "-p", str(port), "--cluster", "-t", "set,get", "-n",
                          "100000", "-c", "50", "-q"] + list(extra), capture_output=True, text=True,
                         timeout=300).stdout
    res = {}
    for line in out.replace("\r", "\n").splitlines():
        if ":" in line and "requests per second" in line:
            name, rest = line.split(":", 1)
            res[name.strip()] = float(rest.split()[0])
    return res


def migration_figures(region):
    """(total ms, ms while slots moved, slots, keys) from the newest "Completed modifying number of node groups"
    event: the total counts from the call (new nodes started and joined), the other from the first slot moved."""
    import re
    events = region.boto3("elasticache").describe_events(SourceIdentifier=t.RG, SourceType="replication-group",
                                                          Duration=60)["Events"]
    for e in events:  # newest first
        m = re.search(r"\((\d+) slots, (\d+) keys moved in (\d+) ms; slots moving for (\d+) ms\)", e["Message"])
        if m and e["Message"].startswith("Completed modifying"):
            slots, keys, total, moving = (int(x) for x in m.groups())
            return total, moving, slots, keys
    return None, None, 0, 0


def reshard_run(region, keys):
    ec = region.boto3("elasticache")
    endpoint = t.describe(region)["ConfigurationEndpoint"]
    c = RedisCluster(host=endpoint["Address"], port=endpoint["Port"], socket_timeout=5)
    try:
        pipe = c.pipeline()
        for i in range(keys):
            pipe.set("bench-reshard-%d" % i, "x" * 100)
            if i % 1000 == 999:
                pipe.execute()
                pipe = c.pipeline()
        pipe.execute()
    finally:
        c.close()
    out = {"keys": keys}
    for label, kw in (("2_to_3", dict(NodeGroupCount=3)), ("3_to_2", dict(NodeGroupCount=2,
                                                                           NodeGroupsToRemove=["0003"]))):
        t0 = time.monotonic()
        ec.modify_replication_group_shard_configuration(ReplicationGroupId=t.RG, ApplyImmediately=True, **kw)
        harness.wait_until(lambda: t.describe(region)["Status"] == "available", 300, 0.05, "resharding")
        total_ms, moving_ms, slots, moved_keys = migration_figures(region)
        out[label] = {"to_available_s": round(time.monotonic() - t0, 3), "total_ms": total_ms,
                      "slots_moving_ms": moving_ms, "slots": slots, "keys_moved": moved_keys,
                      "slots_per_s": round(slots * 1000 / moving_ms) if moving_ms else None}
        harness.log("resharding %s: %r" % (label, out[label]))
    c = RedisCluster(host=endpoint["Address"], port=endpoint["Port"], socket_timeout=5)
    try:
        out["keys_after"] = sum(1 for _ in c.scan_iter("bench-reshard-*", count=1000))
    finally:
        c.close()
    return out


def tls_run(plain):
    token = "Bench-token-0123456789"
    call = dict(t.CORRECTED_CALL, TransitEncryptionEnabled=True, AuthToken=token)
    with harness.Region("bench-elasticache-tls") as region:
        ec = region.boto3("elasticache")
        t0 = time.monotonic()
        ec.create_replication_group(**call)
        harness.wait_until(lambda: t.all_available(region, 6), 120, 0.02, "available")
        out = {"create_to_available_s": round(time.monotonic() - t0, 3)}
        ca = os.path.join(region.data_dir, "ca", "elasticache-ca.pem")
        endpoint = t.describe(region)["ConfigurationEndpoint"]
        clusters = ec.describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]
        node = clusters[0]["CacheNodes"][0]["Endpoint"]
        tls = ["--tls", "--cacert", ca, "-a", token]
        out["redis_benchmark_direct"] = redis_benchmark(node["Address"], node["Port"], tls)
        out["redis_benchmark_configuration_endpoint"] = redis_benchmark(endpoint["Address"], endpoint["Port"], tls)
        out["plain_for_comparison"] = plain
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--create-runs", type=int, default=3)
    ap.add_argument("--reshard-keys", type=int, default=20000)
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build", "autopipe"))
    args = ap.parse_args()
    os.environ["AUTOPIPE_BIN"] = os.path.abspath(args.bin)
    results = {"binary": os.environ["AUTOPIPE_BIN"], "create_to_available_s": [], "failover": []}

    for i in range(args.create_runs - 1):
        with harness.Region("bench-create-%d" % i) as region:
            results["create_to_available_s"].append(round(create_group(region), 3))
    with harness.Region("bench-elasticache") as region:
        results["create_to_available_s"].append(round(create_group(region), 3))
        endpoint = t.describe(region)["ConfigurationEndpoint"]
        clusters = region.boto3("elasticache").describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]
        pids = [t.redis_server_pid(c["CacheNodes"][0]["Endpoint"]["Address"]) for c in clusters]
        results["idle_node_rss_kib"] = [rss_kib(p) for p in pids]
        node = clusters[0]["CacheNodes"][0]["Endpoint"]
        results["redis_benchmark_direct"] = redis_benchmark(node["Address"], node["Port"])
        results["redis_benchmark_configuration_endpoint"] = redis_benchmark(endpoint["Address"], endpoint["Port"])
        for n in range(args.trials):
            lo, hi = (0, 8191) if n % 2 == 0 else (8192, 16383)
            r = failover_trial(region, endpoint, lo, hi, n)
            harness.log("trial %d: %r" % (n, r))
            results["failover"].append(r)
        results["resharding"] = reshard_run(region, args.reshard_keys)
    results["tls"] = tls_run({"direct": results["redis_benchmark_direct"],
                              "configuration_endpoint": results["redis_benchmark_configuration_endpoint"]})

    pauses = [r["pause_s"] for r in results["failover"]]
    results["summary"] = {
        "create_to_available_s_median": statistics.median(results["create_to_available_s"]),
        "failover_pause_s_p50": percentile(pauses, 50),
        "failover_pause_s_max": max(pauses) if pauses else None,
        "writes_lost_total": sum(r["lost"] for r in results["failover"]),
        "writes_acked_total": sum(r["acked"] for r in results["failover"]),
        "idle_node_rss_kib_median": statistics.median(results["idle_node_rss_kib"]),
        "resharding": results["resharding"],
        "tls_create_to_available_s": results["tls"]["create_to_available_s"],
        "tls_redis_benchmark_direct": results["tls"]["redis_benchmark_direct"],
        "plain_redis_benchmark_direct": results["redis_benchmark_direct"],
        "tls_redis_benchmark_configuration_endpoint": results["tls"]["redis_benchmark_configuration_endpoint"],
        "plain_redis_benchmark_configuration_endpoint": results["redis_benchmark_configuration_endpoint"],
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", "elasticache-%s.json" % time.strftime("%Y%m%dT%H%M%S"))
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results["summary"], indent=2))
    print("wrote", path)


if __name__ == "__main__":
    main()
