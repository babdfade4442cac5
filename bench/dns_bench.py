#!/usr/bin/env python3
"""DNS server throughput: dnsperf against the global service's DNS server and against NSD answering the same zone,
side by side in one run.

The zone (an apex with SOA/NS, 200 A names, a CNAME, TXT, a weighted pair and a failover pair) is created through
Route 53's API (boto3) on a fresh `autopipe global`, and written as a zone file for NSD (Debian's `nsd`) on another
loopback port. Each server gets the same query file (names that exist, NXDOMAIN, NODATA: 80/10/10) for the same
time, with the same dnsperf settings (UDP, -c clients, -Q unlimited), each alone on the machine while measured.

  bench/dns_bench.py [--seconds 10] [--clients 8] [--runs 3]

Writes bench/results/dns_bench-<date>.json and prints a table. Needs dnsperf and nsd (apt-get install dnsperf nsd).
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
APEX = "bench.example.test."


def free_port():
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free port")


def records():
    sets = [("www.%s" % APEX, "A", 300, ["192.0.2.1", "192.0.2.2"]),
            ("cname.%s" % APEX, "CNAME", 300, ["www.%s" % APEX]),
            ("txt.%s" % APEX, "TXT", 300, ['"benchmark text"'])]
    for i in range(200):
        sets.append(("host%d.%s" % (i, APEX), "A", 60, ["10.0.%d.%d" % (i // 250, i % 250 + 1)]))
    return sets


def queries(path, n=20000):
    rnd = random.Random(7)
    with open(path, "w") as f:
        for _ in range(n):
            r = rnd.random()
            if r < 0.8:
                f.write("host%d.%s A\n" % (rnd.randrange(200), APEX))
            elif r < 0.9:
                f.write("missing%d.%s A\n" % (rnd.randrange(1000), APEX))
            else:
                f.write("www.%s MX\n" % APEX)


def dnsperf(port, qfile, seconds, clients):
    out = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile, "-l", str(seconds),
                          "-c", str(clients), "-T", "2", "-q", "500"], capture_output=True, text=True,
                         timeout=seconds + 60).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))
    lat = re.search(r"Average Latency \(s\):\s+([\d.]+)", out)
    return {"qps": qps, "lost": lost, "avg_latency_ms": float(lat.group(1)) * 1000 if lat else None}


def start_global(root, binary):
    data = os.path.join(root, "global")
    port = free_port()
    proc = subprocess.Popen([binary, "global", "--data-dir", data, "--listen", "127.0.0.1:0", "--dns-listen",
                             "127.0.0.1:%d" % port, "--partition", os.path.join(root, "partition")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 20
    while not os.path.exists(os.path.join(data, "endpoint")):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("autopipe global did not start")
        time.sleep(0.1)
    endpoint = open(os.path.join(data, "endpoint")).read().strip()
    import boto3
    from botocore.config import Config
    import configparser
    cp = configparser.RawConfigParser()
    cp.read(os.path.join(data, "credentials"))
    r53 = boto3.session.Session(aws_access_key_id=cp["default"]["aws_access_key_id"],
                                aws_secret_access_key=cp["default"]["aws_secret_access_key"],
                                region_name="us-east-1").client("route53", endpoint_url=endpoint,
                                                                config=Config(proxies={}))
    zone = r53.create_hosted_zone(Name=APEX, CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
    changes = [{"Action": "CREATE", "ResourceRecordSet": {"Name": n, "Type": t, "TTL": ttl,
                                                          "ResourceRecords": [{"Value": v} for v in vals]}}
               for n, t, ttl, vals in records()]
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})
    return proc, port


def start_nsd(root):
    d = os.path.join(root, "nsd")
    os.makedirs(d)
    port = free_port()
    with open(os.path.join(d, "zone"), "w") as f:
        f.write("$ORIGIN %s\n" % APEX)
        f.write("@ 900 IN SOA ns-1.autopipe-dns.test. hostmaster.autopipe-dns.test. 1 7200 900 1209600 86400\n")
        f.write("@ 172800 IN NS ns-1.autopipe-dns.test.\n@ 172800 IN NS ns-2.autopipe-dns.test.\n")
        for n, t, ttl, vals in records():
            for v in vals:
                f.write("%s %d IN %s %s\n" % (n, ttl, t, v))
    conf = os.path.join(d, "nsd.conf")
    with open(conf, "w") as f:
        f.write("server:\n  ip-address: 127.0.0.1@%d\n  server-count: 2\n  username: \"\"\n  chroot: \"\"\n"
                "  zonesdir: \"%s\"\n  database: \"\"\n  pidfile: \"%s/nsd.pid\"\n  xfrdfile: \"%s/xfrd.state\"\n"
                "  zonelistfile: \"%s/zone.list\"\n  logfile: \"%s/nsd.log\"\n  verbosity: 0\n"
                "  rrl-ratelimit: 0\n  rrl-whitelist-ratelimit: 0\n"
                "remote-control:\n  control-enable: no\n"
                "zone:\n  name: %s\n  zonefile: \"%s/zone\"\n" % (port, d, d, d, d, d, APEX, d))
    proc = subprocess.Popen(["nsd", "-d", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 10
    while True:
        out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "www." + APEX, "+short", "+tries=1", "+time=1"],
                             capture_output=True, text=True).stdout
        if "192.0.2.1" in out:
            return proc, port
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("nsd did not start: " + open(os.path.join(d, "nsd.log")).read()[-500:])
        time.sleep(0.2)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default=os.environ.get("AUTOPIPE_BIN", os.path.join(REPO, "build", "autopipe")))
    args = ap.parse_args()
    for tool in ("dnsperf", "nsd", "dig"):
        if not shutil.which(tool):
            sys.exit("%s is not installed (apt-get install dnsperf nsd dnsutils)" % tool)
    root = tempfile.mkdtemp(prefix="autopipe-dns-bench-")
    procs = []
    try:
        g, gport = start_global(root, args.bin)
        procs.append(g)
        n, nport = start_nsd(root)
        procs.append(n)
        qfile = os.path.join(root, "queries")
        queries(qfile)
        results = {"autopipe": [], "nsd": []}
        for run in range(args.runs):
            for name, port in (("autopipe", gport), ("nsd", nport)):
                r = dnsperf(port, qfile, args.seconds, args.clients)
                results[name].append(r)
                print("run %d %-8s %9.0f qps  lost %d  avg %.3f ms" % (run + 1, name, r["qps"], r["lost"],
                                                                      r["avg_latency_ms"] or 0), flush=True)
        summary = {k: {"qps_median": sorted(x["qps"] for x in v)[len(v) // 2],
                       "lost_total": sum(x["lost"] for x in v)} for k, v in results.items()}
        doc = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
               "load_avg_at_start": os.getloadavg(), "seconds": args.seconds, "clients": args.clients,
               "queries": "80% existing A, 10% NXDOMAIN, 10% NODATA (MX)", "runs": results, "summary": summary}
        out = os.path.join(HERE, "results", "dns_bench-%s.json" % time.strftime("%Y%m%d-%H%M"))
        with open(out, "w") as f:
            json.dump(doc, f, indent=2)
        print(json.dumps(summary, indent=2))
        print("written to %s" % out)
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
