#!/usr/bin/env python3
"""`make bench` / `make bench-quick`: meshgate against Envoy's native filters, a no-op wasm
filter and a bare proxy, measured with h2load on one Envoy worker.

Every round starts each Envoy configuration in turn (the order rotates between rounds), runs
each scenario that applies to it (a warm-up, then a measured run) and stops it. The main figure
is Envoy's CPU time per request (utime+stime from /proc/<pid>/stat before and after the measured
run, divided by the requests completed); requests/s and latency percentiles (from h2load's
per-request log) come beside it. Ratios are taken pair by pair within a round, against the bare
run of the same round, and reported as median [min-max] across rounds.

Usage: bench.py [--quick] [--out BENCHMARKS.md] [--only CONFIGS] [--scenarios NAMES]
(comma-separated subsets, for profiling one case; environment: BENCH_ROUNDS, BENCH_DURATION,
BENCH_WARMUP, BENCH_CONNECTIONS, MESHGATE_ENVOY, BENCH_KEEP=1 to keep the work directory)
"""
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

import configs  # noqa: E402
import jwt  # noqa: E402
import native  # noqa: E402
import payload  # noqa: E402
import report  # noqa: E402
from procs import Proc, free_port, wait_http  # noqa: E402

UPDATE_PATH = "/v1/payments/pay_001"
GRPC_UPDATE = "/meshgate.demo.v1.Payments/UpdatePayment"
GRPC_GET = "/meshgate.demo.v1.Payments/GetPayment"
GRPC_HEADERS = ["content-type: application/grpc", "te: trailers"]


def scenarios(work, keys):
    """name -> (description, request, configs, bare reference scenario)."""
    small_json, small_pb = payload.payment(0)
    big_json, big_pb = payload.payment(96)
    files = {}

    def put(name, data):
        path = os.path.join(work, name)
        with open(path, "wb") as f:
            f.write(data)
        files[name] = len(data)
        return path

    json_small = put("small.json", small_json)
    json_big = put("big.json", big_json)
    pb_small = put("small.pb", small_pb)
    grpc_small = put("small.grpc", payload.grpc_frame(payload.update_request(small_pb)))
    grpc_big = put("big.grpc", payload.grpc_frame(payload.update_request(big_pb)))
    grpc_get = put("get.grpc", payload.grpc_frame(payload._str(1, "pay_001")))

    def req(method, path, body, headers, h1=False):
        return {"method": method, "path": path, "body": body, "headers": headers, "h1": h1}

    patch_json = ["content-type: application/json"]
    bearer = lambda alg: ["authorization: Bearer " + keys[alg]["token"]]  # noqa: E731
    n = lambda p: files[os.path.basename(p)]  # noqa: E731
    auth_cfgs = ["native", "native-cache", "meshgate", "meshgate-nocache"]
    return {
        "grpc": (f"native gRPC pass-through, UpdatePayment ({n(grpc_small)} B frame)",
                 req("POST", GRPC_UPDATE, grpc_small, GRPC_HEADERS),
                 ["bare", "native", "meshgate", "noop-wasm", "bare-w2", "meshgate-w2",
                  "noop-wasm-w2"], "grpc"),
        "grpc-10k": (f"native gRPC, UpdatePayment ({n(grpc_big)} B frame)",
                     req("POST", GRPC_UPDATE, grpc_big, GRPC_HEADERS), ["bare"], "grpc-10k"),
        "json": (f"JSON unary PATCH {UPDATE_PATH} ({n(json_small)} B)",
                 req("PATCH", UPDATE_PATH, json_small, patch_json),
                 ["native", "meshgate"], "grpc"),
        "json-10k": (f"JSON unary PATCH {UPDATE_PATH} ({n(json_big)} B)",
                     req("PATCH", UPDATE_PATH, json_big, patch_json),
                     ["native", "meshgate"], "grpc-10k"),
        "json-h1": (f"JSON unary PATCH {UPDATE_PATH} ({n(json_small)} B) over HTTP/1.1",
                    req("PATCH", UPDATE_PATH, json_small, patch_json, h1=True),
                    ["native", "meshgate"], "grpc"),
        "json-10k-h1": (f"JSON unary PATCH {UPDATE_PATH} ({n(json_big)} B) over HTTP/1.1",
                        req("PATCH", UPDATE_PATH, json_big, patch_json, h1=True),
                        ["native", "meshgate"], "grpc-10k"),
        "protobuf": (f"HTTP+Protobuf PATCH {UPDATE_PATH} ({n(pb_small)} B)",
                     req("PATCH", UPDATE_PATH, pb_small,
                         ["content-type: application/x-protobuf"]),
                     ["meshgate"], "grpc"),
        "jwt-rs256": ("JSON small + JWT RS256 (2048-bit)",
                      req("PATCH", UPDATE_PATH, json_small, patch_json + bearer("RS256")),
                      auth_cfgs, "grpc"),
        "jwt-es256": ("JSON small + JWT ES256 (P-256)",
                      req("PATCH", UPDATE_PATH, json_small, patch_json + bearer("ES256")),
                      auth_cfgs, "grpc"),
        "grpc-get": ("native gRPC GetPayment", req("POST", GRPC_GET, grpc_get, GRPC_HEADERS),
                     ["bare"], "grpc-get"),
        "json-get": ("JSON GET /v1/payments/pay_001 (meshgate: side call)",
                     req("GET", UPDATE_PATH, None, []), ["native", "meshgate"], "grpc-get"),
    }


def h2load_args(url, request, seconds, conns, log_file=None):
    args = ["h2load", "-c", str(conns), "-m", "1", "-t", "1", "-D", str(seconds)]
    if request.get("h1"):
        args.append("--h1")
    if request["method"] not in ("GET", "POST"):
        args += ["-H", f":method: {request['method']}"]
    for h in request["headers"]:
        args += ["-H", h]
    if request["body"]:
        args += ["-d", request["body"]]
    if log_file:
        args += ["--log-file", log_file]
    return args + [url + request["path"]]


def check_once(url, request):
    """One request with curl (HTTP/2, or HTTP/1.1 for the h1 rows): True when it got 200 and
    no gRPC error."""
    proto = "--http1.1" if request.get("h1") else "--http2-prior-knowledge"
    args = ["curl", "-sS", proto, "-o", "/dev/null", "-D", "-",
            "-X", request["method"], "--max-time", "10"]
    for h in request["headers"]:
        args += ["-H", h]
    if request["body"]:
        args += ["--data-binary", "@" + request["body"]]
    out = subprocess.run(args + [url + request["path"]], capture_output=True, text=True)
    head = out.stdout.lower()
    status_line = "http/1.1 200" if request.get("h1") else "http/2 200"
    ok = out.returncode == 0 and head.startswith(status_line) and "grpc-status: " not in \
        head.replace("grpc-status: 0", "")
    return ok, out.stdout.strip().splitlines()[:1] + [out.stderr.strip()]


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def parse_log(path):
    """h2load --log-file: start time, status, elapsed µs per request."""
    lat, bad = [], 0
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3:
                continue
            if not parts[1].startswith("2"):
                bad += 1
            lat.append(int(parts[2]))
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000.0 if lat else 0.0  # noqa: E731
    return len(lat), bad, pct(0.50), pct(0.99)


def measure(env, url, pid, name, request):
    work, p = env["work"], env["params"]
    subprocess.run(h2load_args(url, request, p["warmup"], p["conns"]), capture_output=True)
    log_file = os.path.join(work, "h2load.log")
    if os.path.exists(log_file):
        os.remove(log_file)
    before, t0 = cpu_ticks(pid), time.monotonic()
    out = subprocess.run(h2load_args(url, request, p["duration"], p["conns"], log_file),
                         capture_output=True, text=True)
    elapsed, after = time.monotonic() - t0, cpu_ticks(pid)
    done, bad, p50, p99 = parse_log(log_file)
    if out.returncode != 0 or done == 0:
        print(f"    h2load failed: {out.stdout[-400:]} {out.stderr[-400:]}", flush=True)
        return None
    cpu_us = (after - before) * 1e6 / env["clk"] / done
    return {"cpu_us": cpu_us, "rps": done / p["duration"], "p50": p50, "p99": p99,
            "done": done, "errors": bad, "wall": elapsed}


def run_config(env, cfg, round_no):
    admin, listen = free_port(), free_port()
    path = os.path.join(env["work"], f"envoy-{cfg}.json")
    with open(path, "w") as f:
        f.write(configs.json.dumps(configs.bootstrap(env["filters"][cfg], listen, admin,
                                                     env["backend_port"])))
    log = open(os.path.join(env["work"], f"envoy-{cfg}.log"), "a")
    envoy = Proc([env["envoy"], "-c", path, "--concurrency", str(configs.workers(cfg)),
                  "--log-level", "warn",
                  "--use-dynamic-base-id"], log)
    results = []
    try:
        if not wait_http(f"http://127.0.0.1:{admin}/ready", 60):
            print(f"  {cfg}: Envoy did not become ready (see {log.name})", flush=True)
            return results
        url = f"http://127.0.0.1:{listen}"
        for name, (_, request, cfgs, _) in env["scenarios"].items():
            if cfg not in cfgs:
                continue
            ok, why = check_once(url, request)
            if not ok:
                print(f"  r{round_no} {cfg:17} {name:10} check failed: {why}", flush=True)
                results.append({"round": round_no, "config": cfg, "scenario": name,
                                "failed": " ".join(why)})
                continue
            r = measure(env, url, envoy.pid, name, request)
            if r is None:
                continue
            r.update({"round": round_no, "config": cfg, "scenario": name,
                      "rss_kb": rss_kb(envoy.pid)})
            results.append(r)
            print(f"  r{round_no} {cfg:17} {name:10} {r['cpu_us']:7.1f} µs/req "
                  f"{r['rps']:8.0f} req/s p50 {r['p50']:.2f} ms p99 {r['p99']:.2f} ms"
                  f"{' errors=' + str(r['errors']) if r['errors'] else ''}", flush=True)
    finally:
        envoy.stop()
        log.close()
    return results


def bench_protos(work):
    """The demo protos, less the one binding Envoy's transcoder refuses to load (`response_body`
    naming a non-HttpBody field, which meshgate supports): both sides get this same set."""
    out = os.path.join(work, "proto")
    shutil.copytree(os.path.join(ROOT, "proto"), out)
    path = os.path.join(out, "meshgate", "demo", "v1", "payments.proto")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace('response_body: "status"', ""))
    return out


def params(quick):
    e = os.environ.get
    return {"rounds": int(e("BENCH_ROUNDS", 1 if quick else 3)),
            "duration": int(e("BENCH_DURATION", 3 if quick else 7)),
            "warmup": int(e("BENCH_WARMUP", 1 if quick else 2)),
            "conns": int(e("BENCH_CONNECTIONS", 8))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    ap.add_argument("--wasm", default=os.path.join(ROOT, "build", "meshgate.wasm"))
    ap.add_argument("--noop-wasm", default=os.path.join(ROOT, "build", "noop.wasm"))
    ap.add_argument("--native", default=os.path.join(ROOT, "build", "libmeshgate_native.so"),
                    help="the native module (issue 22); its rows are skipped when it is absent")
    ap.add_argument("--noop-native", default=os.path.join(ROOT, "build", "noop-native.so"),
                    help="the no-op dynamic module (tests/bench/noop-native); its row is skipped "
                         "when it is absent")
    ap.add_argument("--meshgate", default=os.path.join(ROOT, "target", "release", "meshgate"))
    ap.add_argument("--backend", default=os.path.join(ROOT, "target", "release", "demo-backend"))
    ap.add_argument("--only", default="", help="comma-separated configs to run")
    ap.add_argument("--scenarios", default="", help="comma-separated scenarios to run")
    args = ap.parse_args()
    envoy = subprocess.run([os.path.join(ROOT, "tests/tools/envoy-path.sh")],
                           capture_output=True, text=True).stdout.strip()
    if not envoy:
        sys.exit("bench: no Envoy (make setup, or set MESHGATE_ENVOY)")
    work = tempfile.mkdtemp(prefix="meshgate-bench-")
    p = params(args.quick)
    started = time.time()
    keys = jwt.make_keys(work)
    noop = args.noop_wasm if os.path.exists(args.noop_wasm) else None
    ctx = {"meshgate_bin": args.meshgate, "workdir": work, "jwks": keys,
           "proto_dir": bench_protos(work), "meshgate_wasm": args.wasm,
           "noop_wasm": noop}
    filters = configs.all_filters(ctx)
    order = [c for c in ["bare", "native", "native-cache", "meshgate", "meshgate-nocache",
                         "noop-wasm", "bare-w2", "meshgate-w2", "noop-wasm-w2"] if c in filters]
    order += native.add_filters(filters, args.native, args.noop_native)
    if args.only:
        order = [c for c in order if c in args.only.split(",")]
    backend_port = free_port()
    blog = open(os.path.join(work, "backend.log"), "w")
    backend = Proc([args.backend, "--listen", f"127.0.0.1:{backend_port}", "--services",
                    "payments", "--name", "payments"], blog)
    env = {"work": work, "params": p, "filters": filters, "backend_port": backend_port,
           "envoy": envoy, "clk": os.sysconf("SC_CLK_TCK"), "scenarios": scenarios(work, keys)}
    native.add_rows(env["scenarios"], filters)
    if args.scenarios:
        wanted = args.scenarios.split(",")
        env["scenarios"] = {k: v for k, v in env["scenarios"].items() if k in wanted}
    results = []
    load = [os.getloadavg()[0]]
    try:
        time.sleep(0.5)
        for r in range(p["rounds"]):
            rot = order[r % len(order):] + order[:r % len(order)]
            print(f"round {r + 1}/{p['rounds']}: {' '.join(rot)}", flush=True)
            for cfg in rot:
                results.extend(run_config(env, cfg, r))
    finally:
        backend.stop()
        blog.close()
    load.append(os.getloadavg()[0])
    meta = report.machine(envoy, p, time.time() - started, load, args.quick)
    meta["wasm"] = {"meshgate": os.path.getsize(args.wasm),
                    "noop": os.path.getsize(noop) if noop else None}
    text = native.with_goals(report.render(results, env["scenarios"], meta), results, args.native)
    report.write(args.out, text)
    with open(os.path.join(work, "results.json"), "w") as f:
        configs.json.dump({"meta": meta, "results": results}, f, indent=1)
    print(text)
    print(f"bench: wrote {args.out} (raw results: {work}/results.json)")
    if not os.environ.get("BENCH_KEEP"):
        for name in os.listdir(work):
            if name.endswith((".pem", ".log")) and name != "backend.log":
                os.remove(os.path.join(work, name))
    failed = [x for x in results if "failed" in x]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
