#!/usr/bin/env python3
"""Two builds of meshgate.wasm (or of the native module, libmeshgate_native.so) against each other, paired in one run (docs/footprint.md): the
same configuration (bench.py's meshgate gateway, token cache on, or off with --nocache) with
module A and module B, alternating A B A B ... for --rounds rounds, each scenario measured as
bench.py measures it (Envoy CPU µs per request over a short h2load run, one worker). Prints the
per-round ratio B/A per scenario and the median: on a shared, noisy machine only such
interleaved ratios mean anything.

Usage: ab.py A.wasm B.wasm [--rounds 4] [--scenarios json,jwt-rs256,jwt-es256] [--nocache]
       ab.py A.so B.so ... (two native modules: the same configuration in the dynamic-modules
       filter, as bench.py's meshgate-native rows)
(environment as bench.py: BENCH_DURATION, BENCH_WARMUP, BENCH_CONNECTIONS, MESHGATE_ENVOY,
BENCH_KEEP=1 to keep the work directory)."""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import bench  # noqa: E402
import configs  # noqa: E402
import jwt  # noqa: E402
import native  # noqa: E402
from procs import Proc, free_port  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--scenarios", default="json,jwt-rs256,jwt-es256")
    ap.add_argument("--nocache", action="store_true")
    ap.add_argument("--meshgate", default=os.path.join(ROOT, "target", "release", "meshgate"))
    ap.add_argument("--backend", default=os.path.join(ROOT, "target", "release", "demo-backend"))
    args = ap.parse_args()
    envoy = subprocess.run([os.path.join(ROOT, "tests/tools/envoy-path.sh")],
                           capture_output=True, text=True).stdout.strip()
    if not envoy:
        sys.exit("ab: no Envoy (make setup, or set MESHGATE_ENVOY)")
    work = tempfile.mkdtemp(prefix="meshgate-ab-")
    keys = jwt.make_keys(work)
    ctx = {"meshgate_bin": args.meshgate, "workdir": work,
           "jwks": keys, "proto_dir": bench.bench_protos(work), "meshgate_wasm": args.a,
           "noop_wasm": None}
    base = configs.all_filters(ctx)["meshgate-nocache" if args.nocache else "meshgate"][0]
    conf = base["typed_config"]["config"]["configuration"]["value"]

    def module(path):
        if path.endswith(".so"):
            return native.dynamic_module_filter(os.path.abspath(path), conf)
        return configs.wasm_filter("meshgate", os.path.abspath(path), conf)

    filters = {"A": [module(args.a)], "B": [module(args.b)]}
    wanted = args.scenarios.split(",")
    scen = {k: (d, req, ["A", "B"], ref)
            for k, (d, req, cfgs, ref) in bench.scenarios(work, keys).items() if k in wanted}
    backend_port = free_port()
    blog = open(os.path.join(work, "backend.log"), "w")
    backend = Proc([args.backend, "--listen",
                    f"127.0.0.1:{backend_port}", "--services", "payments", "--name",
                    "payments"], blog)
    env = {"work": work, "params": bench.params(True), "filters": filters,
           "backend_port": backend_port, "envoy": envoy, "clk": os.sysconf("SC_CLK_TCK"),
           "scenarios": scen}
    results = []
    try:
        time.sleep(0.5)
        for r in range(args.rounds):
            for cfg in (["A", "B"] if r % 2 == 0 else ["B", "A"]):
                results.extend(bench.run_config(env, cfg, r))
    finally:
        backend.stop()
        blog.close()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nB/A Envoy CPU per request (A={args.a}, B={args.b}, {args.rounds} rounds):")
    for name in scen:
        ratios = []
        for r in range(args.rounds):
            cpu = {x["config"]: x["cpu_us"] for x in results
                   if x["round"] == r and x["scenario"] == name and "cpu_us" in x}
            if "A" in cpu and "B" in cpu:
                ratios.append(cpu["B"] / cpu["A"])
        if ratios:
            print(f"  {name:12} median {statistics.median(ratios):.3f}  "
                  f"[{' '.join(f'{x:.2f}' for x in ratios)}]")
    failed = [x for x in results if "failed" in x]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
