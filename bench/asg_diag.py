#!/usr/bin/env python3
"""Where the time of DescribeAutoScalingGroups goes with 10 x 100 instances (diagnosis for asg_bench.py).

Starts one region (address block 127.253, --log-level debug so each API call logs its handler time `us=`),
creates 10 groups x 100 minimal instances running `exec sleep 3600`, then:
  A. 1,000 raw pre-signed DescribeAutoScalingGroups (all groups) with TCP_QUICKACK: client latency, the
     handler time the server logs (Dispatch: lock wait + building the result; XML rendering is outside it), and
     how latency lines up with the controller's 100 ms pass period;
  B. the same while `perf record -g` samples the server (top symbols written to the results file);
  C. the same with every instance process SIGSTOPped (then SIGCONTed), to separate the 1,000 instance-init
     processes' 100 ms wake-ups from the server's own work;
  D. CPU used by the server and by all instance processes while idle;
  E. `autopipe down` timed, under `strace -c` (syscall counts of the down process itself).
Writes bench/results/asg_diag-<timestamp>.json. Bounded, loopback only, `autopipe down` in finally.

Usage: python3 bench/asg_diag.py [--groups 10] [--per-group 100] [--calls 1000]
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import asg_bench as b  # noqa: E402


def handler_micros(log_path, after_epoch):
    out = []
    for t, msg in b.read_server_log(log_path):
        if t < after_epoch - 0.002:
            continue
        m = re.search(r"action=DescribeAutoScalingGroups .* us=(\d+)", msg)
        if m:
            out.append(int(m.group(1)) / 1e6)
    return out


def attribute(perf_script):
    """Share of the server's CPU samples: inside DescribeAutoScalingGroups by its nearest autopipe callee, and
    elsewhere by the first recognisable frame (rendering, HTTP, controller pass, reaper)."""
    samples, cur = [], []
    for line in perf_script.splitlines():
        if not line.strip():
            if cur:
                samples.append(cur)
            cur = []
        elif not line.startswith((" ", "\t")):
            cur = [line.strip()]
        else:
            parts = line.strip().split(None, 1)
            cur.append(parts[1] if len(parts) > 1 else "?")
    if cur:
        samples.append(cur)
    inside, outside = {}, {}
    keys = ("RenderResult", "ControllerRunner", "Reaper", "VerifySigV4", "ParseForm", "process_request",
            "write_data", "tcp_")
    for smp in samples:
        frames = smp[1:]
        idx = [i for i, f in enumerate(frames) if "DescribeAutoScalingGroups" in f]
        if idx:
            below = [f for f in frames[:idx[0]] if "autopipe::" in f or f.startswith("List")]
            key = "DescribeAutoScalingGroups > " + (below[-1] if below else "(own code, vector/json ops)")
            key = re.sub(r"\(anonymous namespace\)::", "", key)[:100]
            inside[key] = inside.get(key, 0) + 1
        else:
            hit = [f for f in frames if any(k in f for k in keys)]
            key = re.sub(r"std::thread::_State_impl.*Reaper.*", "Reaper thread (waitpid loop)",
                         hit[0] if hit else (frames[-1] if frames else "?"))
            key = re.sub(r"\(anonymous namespace\)::", "", key)[:100]
            outside[key] = outside.get(key, 0) + 1
    n = max(len(samples), 1)
    rows = sorted(inside.items(), key=lambda kv: -kv[1]) + sorted(outside.items(), key=lambda kv: -kv[1])
    return {"samples": len(samples),
            "shares": [f"{100 * v / n:5.1f}%  {k}" for k, v in rows if 100 * v / n >= 0.5]}


def thread_cpu(pid):
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[t] = (int(fields[11]) + int(fields[12])) / b.CLK_TCK
        except (OSError, IndexError, ValueError):
            pass
    return out


def timed_series(ep, calls, params=None):
    params = params or {"Action": "DescribeAutoScalingGroups", "Version": "2011-01-01"}
    raw = ep.raw()
    lat, starts = [], []
    try:
        for _ in range(20):
            raw.call("autoscaling", params, True)
        for _ in range(calls):
            starts.append(time.time())
            dt, status, _ = raw.call("autoscaling", params, True)
            if status != 200:
                raise RuntimeError(f"HTTP {status}")
            lat.append(dt)
    finally:
        raw.close()
    return lat, starts


def instance_cpu(pids):
    total = 0.0
    for p in pids:
        c = b.proc_cpu_seconds(p)
        if c is not None:
            total += c
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=b.DEFAULT_BIN)
    ap.add_argument("--groups", type=int, default=10)
    ap.add_argument("--per-group", type=int, default=100)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--block", default="127.253")
    args = ap.parse_args()
    if not re.fullmatch(r"127\.\d{1,3}", args.block):
        sys.exit("address block must be 127.N")

    def stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    tmp = tempfile.mkdtemp(prefix="asg_diag-")
    res = {"timestamp": stamp, "groups": args.groups, "per_group": args.per_group, "calls": args.calls}
    binary, mtime = b.snapshot_binary(args.bin, tmp)
    res["binary_mtime"] = mtime
    srv = b.AutopipeServer(binary, os.path.join(tmp, "region"), b.free_port(), args.block)
    stopped = []
    try:
        # --log-level debug: AutopipeServer has no flag for it, so start the server by hand.
        os.makedirs(srv.data_dir)
        srv.out = open(os.path.join(srv.data_dir, "server.stdout"), "ab")
        srv.proc = subprocess.Popen(
            [binary, "server", "--data-dir", srv.data_dir, "--listen", f"127.0.0.1:{srv.port}", "--region",
             b.REGION, "--address-block", srv.block, "--log-level", "debug"],
            stdout=srv.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=srv.data_dir)
        if not b.wait_until(lambda: os.path.exists(os.path.join(srv.data_dir, "endpoint")), 20, 0.02):
            raise RuntimeError("server did not start")
        import configparser
        cp = configparser.ConfigParser()
        cp.read(os.path.join(srv.data_dir, "credentials"))
        ep = b.Endpoint("autopipe", open(os.path.join(srv.data_dir, "endpoint")).read().strip(),
                        cp["default"]["aws_access_key_id"], cp["default"]["aws_secret_access_key"])
        b.check_capacity(args.groups * args.per_group)
        res["scale"] = b.create_scale(ep, args.groups, args.per_group, 600)
        b.log(f"{args.groups * args.per_group} InService after {res['scale']['all_inservice_s']} s")
        time.sleep(3)
        pids = b.instance_pids(srv.data_dir)

        # D. idle CPU
        s0, i0, th0, t0 = b.proc_cpu_seconds(srv.pid), instance_cpu(pids), thread_cpu(srv.pid), time.monotonic()
        time.sleep(5)
        s1, i1, th1, t1 = b.proc_cpu_seconds(srv.pid), instance_cpu(pids), thread_cpu(srv.pid), time.monotonic()
        res["idle_cpu_percent"] = {"server": round(100 * (s1 - s0) / (t1 - t0), 1),
                                   "server_by_thread": sorted((round(100 * (th1[t] - th0.get(t, 0)) / (t1 - t0), 1)
                                                               for t in th1), reverse=True)[:4],
                                   "all_instance_processes": round(100 * (i1 - i0) / (t1 - t0), 1),
                                   "instance_processes": len(pids)}
        b.log(f"idle CPU: {res['idle_cpu_percent']}")

        # A. latency vs handler time vs controller pass phase
        wall0 = time.time()
        lat, starts = timed_series(ep, args.calls)
        handler = handler_micros(srv.log_path, wall0)
        res["A_quickack"] = b.summarize_ms(lat)
        res["A_handler_us_field"] = b.summarize_ms(handler)
        slow = [i for i, x in enumerate(lat) if x > 0.020]
        res["A_slow_over_20ms"] = len(slow)
        # Gap between consecutive slow requests: a multiple of ~100 ms points at the controller pass.
        gaps = [round((starts[j] - starts[i]) * 1000) for i, j in zip(slow, slow[1:])]
        res["A_slow_gaps_ms_first30"] = gaps[:30]
        b.log(f"A quickack: {res['A_quickack']}  handler: {res['A_handler_us_field']}  slow>20ms: {len(slow)}")

        # One group, for scale.
        lat1, _ = timed_series(ep, min(args.calls, 500), {"Action": "DescribeAutoScalingGroups",
                                                          "Version": "2011-01-01",
                                                          "AutoScalingGroupNames.member.1": "bench-scale-05"})
        res["A_one_group_quickack"] = b.summarize_ms(lat1)

        # B. perf: where the server's CPU goes while it answers DescribeAutoScalingGroups (all groups)
        perf = shutil.which("perf")
        if perf:
            data = os.path.join(tmp, "perf.data")
            p = subprocess.Popen([perf, "record", "-F", "499", "--call-graph", "dwarf,16384", "-o", data, "-p",
                                  str(srv.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            lat_b, _ = timed_series(ep, min(args.calls, 300))
            p.send_signal(signal.SIGINT)
            p.wait(timeout=60)
            res["B_under_perf"] = b.summarize_ms(lat_b)
            script = subprocess.run([perf, "script", "-i", data, "-F", "tid,ip,sym"], capture_output=True,
                                    text=True, timeout=300).stdout
            res["B_perf_attribution"] = attribute(script)
        # C. instances paused
        pids = b.instance_pids(srv.data_dir)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(1)
        s0, t0 = b.proc_cpu_seconds(srv.pid), time.monotonic()
        time.sleep(3)
        res["C_server_idle_cpu_percent_instances_paused"] = round(
            100 * (b.proc_cpu_seconds(srv.pid) - s0) / (time.monotonic() - t0), 1)
        lat_c, _ = timed_series(ep, args.calls)
        res["C_quickack_instances_paused"] = b.summarize_ms(lat_c)
        b.log(f"C paused: {res['C_quickack_instances_paused']}")
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        stopped = []
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        # E. down, with syscall counts of the down process itself
        t0 = time.monotonic()
        if srv.proc is not None:
            strace = shutil.which("strace")
            cmd = [binary, "down", "--data-dir", srv.data_dir]
            out = os.path.join(tmp, "down.strace")
            if strace:
                cmd = [strace, "-c", "-o", out] + cmd
            try:
                subprocess.run(cmd, timeout=300, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                b.log("down timed out")
            res["E_down_s"] = round(time.monotonic() - t0, 2)
            if strace and os.path.exists(out):
                res["E_down_strace_c"] = [ln.rstrip() for ln in open(out)][:14]
            stop_line = b.first_log(b.read_server_log(srv.log_path), r"server stopping", 0)
            res["E_server_stopping_logged_at"] = stop_line
        srv.down()  # idempotent: reaps the server, kills leftovers by pid inside our data dir
        shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(b.HERE, "results"), exist_ok=True)
    path = os.path.join(b.HERE, "results", f"asg_diag-{stamp}.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    print(json.dumps(res, indent=1))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
