#!/usr/bin/env python3
"""Where Envoy's memory goes with a wasm filter (docs/footprint.md): bare Envoy, the no-op wasm
filter and meshgate (and any extra module given with --wasm NAME=PATH), each at one and two
workers. Every Envoy is started, sent a bounded number of gRPC pass-through requests (h2load,
loopback, so every worker's VM has run), then measured and stopped by PID:

- RSS (VmRSS) and its split from /proc/<pid>/smaps: file-backed (Envoy's binary), anonymous
  executable (the engine's compiled code: V8's code space), other anonymous (heaps, V8's heap,
  the VMs' linear memories);
- Envoy's /memory admin (tcmalloc: allocated, heap size);
- meshgate's `meshgate_vm_memory_bytes` gauge (the VM's linear memory).

Usage: footprint.py [--requests N] [--wasm NAME=PATH ...] [--concurrency 1,2] [--release-mb N]
(needs build/meshgate.wasm, build/noop.wasm, target/release/{meshgate,demo-backend})."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import bench  # noqa: E402
import configs  # noqa: E402
import jwt  # noqa: E402
from procs import Proc, free_port, wait_http  # noqa: E402

MB = 1024.0


def smaps(pid):
    """kB of resident memory by kind: file, anon_exec (JIT code), anon (everything else)."""
    out = {"file": 0, "anon_exec": 0, "anon": 0}
    kind = "anon"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if not parts[0].endswith(":"):  # a mapping's header: range perms offset dev inode [path]
                path = parts[5] if len(parts) > 5 else ""
                if path.startswith("/"):
                    kind = "file"
                else:
                    kind = "anon_exec" if "x" in parts[1] else "anon"
            elif parts[0] == "Rss:":
                out[kind] += int(parts[1])
    return out


def largest_anon(pid, n=6):
    """The n largest anonymous resident mappings: (kB, perms, size of the mapping in kB)."""
    regions, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if parts and not parts[0].endswith(":"):
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                anon = not (len(parts) > 5 and parts[5].startswith("/"))
                cur = [0, parts[1], (hi - lo) // 1024] if anon else None
                if cur:
                    regions.append(cur)
            elif cur and parts and parts[0] == "Rss:":
                cur[0] = int(parts[1])
    return sorted(regions, reverse=True)[:n]


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def vm_memory(admin):
    text = get(f"http://127.0.0.1:{admin}/stats/prometheus")
    vals = [float(line.split()[-1]) for line in text.splitlines()
            if line.startswith("meshgate_vm_memory_bytes")]
    return max(vals) if vals else None


def measure(envoy_bin, filters, backend_port, workers, requests, work, name, release):
    admin, listen = free_port(), free_port()
    path = os.path.join(work, f"envoy-{name}-{workers}.json")
    # tcmalloc gives its free pages back to the OS in the background (Envoy >= 1.27).
    boot = configs.bootstrap(filters, listen, admin, backend_port, release_bytes=release << 20)
    with open(path, "w") as f:
        json.dump(boot, f)
    log = open(os.path.join(work, f"envoy-{name}-{workers}.log"), "w")
    envoy = Proc([envoy_bin, "-c", path, "--concurrency", str(workers), "--log-level", "warn",
                  "--use-dynamic-base-id"], log)
    try:
        if not wait_http(f"http://127.0.0.1:{admin}/ready", 60):
            return {"error": f"Envoy did not become ready (see {log.name})"}
        idle = int(bench.rss_kb(envoy.pid))
        # Bounded load: N requests over 4 connections (so both workers get some), 30 s at most.
        grpc = os.path.join(work, "small.grpc")
        out = subprocess.run(["h2load", "-n", str(requests), "-c", "4", "-m", "1", "-t", "1",
                              "-H", "content-type: application/grpc", "-H", "te: trailers",
                              "-d", grpc, f"http://127.0.0.1:{listen}{bench.GRPC_UPDATE}"],
                             capture_output=True, text=True, timeout=30)
        ok = "succeeded" in out.stdout and f"{requests} succeeded" in out.stdout
        time.sleep(4 if release else 0.5)
        mem = json.loads(get(f"http://127.0.0.1:{admin}/memory"))
        return {"idle_kb": idle, "rss_kb": bench.rss_kb(envoy.pid), "smaps": smaps(envoy.pid),
                "allocated": int(mem.get("allocated", 0)), "heap": int(mem.get("heap_size", 0)),
                "free": int(mem.get("pageheap_free", 0)),
                "vm_memory": vm_memory(admin), "load_ok": ok,
                "stats": len(get(f"http://127.0.0.1:{admin}/stats").splitlines()),
                "regions": largest_anon(envoy.pid)}
    finally:
        envoy.stop()
        log.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", default="1,2")
    ap.add_argument("--wasm", action="append", default=[],
                    help="NAME=PATH: another meshgate module, same configuration")
    ap.add_argument("--meshgate-wasm", default=os.path.join(ROOT, "build", "meshgate.wasm"))
    ap.add_argument("--noop-wasm", default=os.path.join(ROOT, "build", "noop.wasm"))
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--release-mb", type=int, default=0,
                    help="bootstrap memory_allocator_manager: release this many MiB/s of "
                         "tcmalloc's free pages (0: off, Envoy's default)")
    args = ap.parse_args()
    envoy_bin = subprocess.run([os.path.join(ROOT, "tests/tools/envoy-path.sh")],
                               capture_output=True, text=True).stdout.strip()
    if not envoy_bin:
        sys.exit("footprint: no Envoy (make setup, or set MESHGATE_ENVOY)")
    work = tempfile.mkdtemp(prefix="meshgate-footprint-")
    keys = jwt.make_keys(work)
    ctx = {"meshgate_bin": os.path.join(ROOT, "target", "release", "meshgate"), "workdir": work,
           "jwks": keys, "proto_dir": bench.bench_protos(work),
           "meshgate_wasm": args.meshgate_wasm, "noop_wasm": args.noop_wasm}
    all_filters = configs.all_filters(ctx)
    conf = all_filters["meshgate"][0]["typed_config"]["config"]["configuration"]["value"]
    rows = [("bare", []), ("noop-wasm", all_filters["noop-wasm"]),
            ("meshgate", all_filters["meshgate"])]
    for spec in args.wasm:
        name, path = spec.split("=", 1)
        rows.append((name, [configs.wasm_filter("meshgate", os.path.abspath(path), conf)]))
    bench.scenarios(work, keys)  # writes small.grpc
    backend_port = free_port()
    blog = open(os.path.join(work, "backend.log"), "w")
    backend = Proc([os.path.join(ROOT, "target", "release", "demo-backend"), "--listen",
                    f"127.0.0.1:{backend_port}", "--services", "payments", "--name",
                    "payments"], blog)
    results = []
    try:
        time.sleep(0.5)
        for workers in [int(w) for w in args.concurrency.split(",")]:
            for name, filters in rows:
                r = measure(envoy_bin, filters, backend_port, workers, args.requests, work, name,
                            args.release_mb)
                r.update({"config": name, "workers": workers})
                results.append(r)
    finally:
        backend.stop()
        blog.close()
    sizes = {"noop-wasm": args.noop_wasm, "meshgate": args.meshgate_wasm}
    sizes.update(dict(s.split("=", 1) for s in args.wasm))
    print("| config | workers | module KB | RSS MB | Δ bare | idle RSS MB | JIT code MB "
          "| other anon MB | file MB | tcmalloc alloc / heap / free MB | linear memory KB | stats | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    bare = {r["workers"]: r.get("rss_kb", 0) for r in results if r["config"] == "bare"}
    for r in results:
        if "error" in r:
            print(f"| {r['config']} | {r['workers']} | {r['error']} |")
            continue
        s, size = r["smaps"], sizes.get(r["config"])
        kb = f"{os.path.getsize(size) / 1000:.0f}" if size else "-"
        vm = f"{r['vm_memory'] / 1024:.0f}" if r["vm_memory"] else "-"
        print(f"| {r['config']} | {r['workers']} | {kb} | {r['rss_kb'] / MB:.1f} "
              f"| {(r['rss_kb'] - bare.get(r['workers'], 0)) / MB:+.1f} "
              f"| {r['idle_kb'] / MB:.1f} | {s['anon_exec'] / MB:.1f} | {s['anon'] / MB:.1f} "
              f"| {s['file'] / MB:.1f} | {r['allocated'] / 2**20:.1f} / {r['heap'] / 2**20:.1f} / "
              f"{r['free'] / 2**20:.1f} | {vm} | {r['stats']} "
              f"| {'ok' if r['load_ok'] else 'FAILED'} |")
    print("\nlargest anonymous mappings (resident kB, perms, mapping kB):")
    for r in results:
        if "regions" in r:
            print(f"  {r['config']:>10} x{r['workers']}: {r['regions']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r.get("load_ok") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
