"""The Markdown written into BENCHMARKS.md between the bench markers."""
import os
import platform
import statistics
import subprocess

import configs

BEGIN, END = "<!-- bench:begin (written by tests/bench/bench.py) -->", "<!-- bench:end -->"
CONFIG_NAMES = {
    "bare": "bare Envoy (router only)",
    "native": "Envoy native: jwt_authn + grpc_json_transcoder",
    "native-cache": "Envoy native, jwt_cache_config on",
    "meshgate": "meshgate (token cache on)",
    "meshgate-nocache": "meshgate, token cache off",
    "noop-wasm": "no-op wasm filter",
    "bare-w2": "bare Envoy, 2 workers",
    "meshgate-w2": "meshgate, 2 workers",
    "noop-wasm-w2": "no-op wasm filter, 2 workers",
}
W2 = "-w2"


def _bare(config):
    """The bare run a configuration is compared with: the one with as many workers."""
    return "bare" + W2 if config.endswith(W2) else "bare"


def _noop(config):
    """The no-op filter of the same flavour (the native module's is the no-op dynamic module)."""
    if config.startswith("meshgate-native"):
        return "noop-native"
    return "noop-wasm" + W2 if config.endswith(W2) else "noop-wasm"
# meshgate config -> the native config it is compared with, per scenario kind.
NATIVE_PEER = {("meshgate", True): "native-cache", ("meshgate", False): "native",
               ("meshgate-nocache", True): "native", ("meshgate-nocache", False): "native"}


def machine(envoy, params, seconds, load, quick):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ver = subprocess.run([envoy, "--version"], capture_output=True, text=True).stdout.strip()
    h2 = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "envoy": ver.split("version:")[-1].strip()[:80], "h2load": h2.splitlines()[0],
            "params": params, "seconds": round(seconds), "load": load, "quick": quick}


def _mid(xs):
    return statistics.median(xs) if xs else None


def _fmt(xs, digits=0, unit=""):
    if not xs:
        return "–"
    f = f"{{:.{digits}f}}"
    s = f.format(_mid(xs)) + unit
    if len(xs) > 1:
        s += f" ({f.format(min(xs))}–{f.format(max(xs))})"
    return s


def _index(results):
    idx = {}
    for r in results:
        if "failed" not in r:
            idx[(r["round"], r["scenario"], r["config"])] = r
    return idx


def _ratios(idx, scenario, config, ref_s, ref_c, key):
    out = []
    for (rnd, s, c), r in idx.items():
        if s == scenario and c == config and (rnd, ref_s, ref_c) in idx:
            out.append(r[key] / idx[(rnd, ref_s, ref_c)][key])
    return out


def scenario_rows(results, scenarios):
    idx = _index(results)
    failed = {(r["scenario"], r["config"]) for r in results if "failed" in r}
    rows = []
    for name, (desc, _, cfgs, ref) in scenarios.items():
        for c in cfgs:
            runs = [r for (_, s, cc), r in sorted(idx.items()) if s == name and cc == c]
            if not runs and (name, c) not in failed:
                continue
            jwt = name.startswith("jwt")
            cpu_bare = _ratios(idx, name, c, ref, _bare(c), "cpu_us")
            rps_bare = _ratios(idx, name, c, ref, _bare(c), "rps")
            is_ref = name == ref and c == _bare(c)
            vs_noop = (_ratios(idx, name, c, name, _noop(c), "cpu_us")
                       if c.startswith("meshgate") else [])
            peer = NATIVE_PEER.get((c, jwt))
            vs_native = _ratios(idx, name, c, name, peer, "cpu_us") if peer else []
            rows.append([
                f"{name}" if c == cfgs[0] else "", CONFIG_NAMES.get(c, c),
                "FAILED" if (name, c) in failed else _fmt([r["cpu_us"] for r in runs], 1),
                _fmt([r["rps"] for r in runs]),
                _fmt([r["p50"] for r in runs], 2), _fmt([r["p99"] for r in runs], 2),
                _fmt(cpu_bare, 2, "×") if not is_ref else "1",
                _fmt(rps_bare, 2, "×") if not is_ref else "1",
                (_fmt(vs_native, 2, "×") + f" vs {peer}") if vs_native else "",
                _fmt(vs_noop, 2, "×") if vs_noop else "",
            ])
    return rows


def memory_rows(results):
    by, after_grpc = {}, {}
    for r in results:
        if "rss_kb" in r:
            by.setdefault(r["config"], []).append(r["rss_kb"] / 1024)
            if r["scenario"] == "grpc":
                after_grpc.setdefault(r["config"], []).append(r["rss_kb"] / 1024)

    def delta(table, c):
        bare = _mid(table.get(_bare(c), []))
        return _mid(table[c]) - bare if bare is not None and c in table else None

    rows = []
    for c, xs in by.items():
        d = delta(by, c)
        # One more worker's VM: the two-worker Δ minus the one-worker Δ, both right after the
        # grpc scenario (the two-worker configurations run only that one).
        base = c[:-len(W2)] if c.endswith(W2) else None
        w2, w1 = (delta(after_grpc, c), delta(after_grpc, base)) if base else (None, None)
        extra = w2 - w1 if w2 is not None and w1 is not None else None
        rows.append([CONFIG_NAMES.get(c, c), f"{_mid(xs):.1f}", f"{max(xs):.1f}",
                     f"{d:+.1f}" if d is not None else "–",
                     f"{extra:+.1f}" if extra is not None else ""])
    return rows


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def release_note():
    n = configs.RELEASE_FREE_MEMORY_BYTES
    if n <= 0:
        return "no `memory_allocator_manager` (Envoy's default: tcmalloc keeps its free pages)"
    return (f"`memory_allocator_manager` releasing {n >> 20} MiB/s of free heap (as `meshgate "
            f"envoy` renders)")


def render(results, scenarios, meta):
    p = meta["params"]
    w = meta["wasm"]
    out = [BEGIN, "",
           f"Run: {'`make bench-quick`' if meta['quick'] else '`make bench`'}, "
           f"{p['rounds']} round(s), {p['duration']} s measured per run after a {p['warmup']} s "
           f"warm-up, h2load HTTP/2 (`*-h1` rows: `--h1`, HTTP/1.1) with {p['conns']} connections "
           f"× 1 stream, Envoy "
           f"`--concurrency 1` (`, 2 workers` rows: `--concurrency 2`), every row's bootstrap "
           f"with {release_note()}; took {meta['seconds']} s.",
           f"Machine: {meta['cpu']}, {meta['cores']} cores (shared), Linux {meta['kernel']}; "
           f"Envoy {meta['envoy']}; {meta['h2load']}; load average {meta['load'][0]:.2f} at "
           f"start, {meta['load'][1]:.2f} at end.", "",
           "Figures: median (min–max) across rounds. *µs/req* is Envoy's CPU time (user+system, "
           "all threads) per completed request; ratios are computed pair by pair within a round: "
           "*µs vs bare* = this µs/req ÷ the bare run's (lower is better), *req/s vs bare* = this "
           "throughput ÷ the bare run's (higher is better), *vs native* = meshgate µs/req ÷ the "
           "native filters' µs/req (below 1 = meshgate cheaper). The bare reference of a JSON or "
           "protobuf scenario is the same message sent as native gRPC; a two-worker run is compared "
           "with the two-worker bare run. *vs no-op* = meshgate µs/req ÷ the no-op wasm filter's "
           "(same workers, same round): the issue's pass-through goal is ≤ 1.15×; for the native "
           "module's rows, ÷ the no-op dynamic module's.", "",
           _table(["scenario", "configuration", "Envoy µs/req", "req/s", "p50 ms", "p99 ms",
                   "µs vs bare", "req/s vs bare", "vs native", "vs no-op"],
                  scenario_rows(results, scenarios)), "",
           "Scenarios: " + "; ".join(f"**{k}**: {v[0]}" for k, v in scenarios.items()) + ".", "",
           f"Module size: meshgate.wasm {w['meshgate']:,} bytes"
           + (f"; no-op wasm {w['noop']:,} bytes." if w.get("noop") else "."), "",
           "Envoy resident memory after the runs (MB; Δ vs bare ≈ what the wasm VMs and filter "
           "configs cost: one VM on the main thread + one per worker; a two-worker row is "
           "compared with the two-worker bare run, and its last column, its Δ minus the "
           "one-worker Δ (both right after the grpc scenario), is one more worker's VM):", "",
           _table(["configuration", "RSS MB (median)", "RSS MB (max)", "Δ vs bare MB",
                   "2nd worker's VM MB"],
                  memory_rows(results)), "", END]
    return "\n".join(out)


def write(path, text):
    old = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + text + rest.split(END, 1)[1]
    else:
        new = "# Benchmarks\n\nWritten by `make bench` (tests/bench/bench.py).\n\n" + text + "\n"
    with open(path, "w") as f:
        f.write(new)
