"""The native module's rows (issue 22): meshgate as an Envoy dynamic module
(build/libmeshgate_native.so, docs/native.md) beside the wasm module, in the same run and the
same rounds, so every pair (native module vs bare, vs Envoy's native filters, vs the wasm
module) is taken within one round. It runs wherever the wasm meshgate configuration runs, with
the same filter configuration; the goals of issue 22 are checked against the results in a table
of their own."""
import os

import report

# Configuration name -> what the report calls it.
CONFIGS = {
    "meshgate-native": "meshgate native module (token cache on)",
    "meshgate-native-nocache": "meshgate native module, token cache off",
}
# The no-op dynamic module (tests/bench/noop-native): every hook continues, no callback into
# Envoy. What any dynamic-module filter costs here, the floor the native rows stand on, as the
# no-op wasm filter is for the wasm rows. It runs beside the no-op wasm filter.
NOOP = "noop-native"
NOOP_NAME = "no-op native module"
# The wasm configuration each native one mirrors (same filter configuration).
TWIN = {"meshgate": "meshgate-native", "meshgate-nocache": "meshgate-native-nocache"}
# The Envoy native filters each is compared with, per scenario kind (JWT or not), as the wasm
# rows are (report.NATIVE_PEER).
PEERS = {("meshgate-native", True): "native-cache", ("meshgate-native", False): "native",
         ("meshgate-native-nocache", True): "native",
         ("meshgate-native-nocache", False): "native"}


def dynamic_module_filter(so_path, configuration):
    """The filter `meshgate envoy --native` renders (src/cli/envoy/native.rs)."""
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3."
                     "DynamicModuleFilter",
            "dynamic_module_config": {"module": {"local": {"filename": so_path}},
                                      "do_not_close": True},
            "filter_name": "meshgate",
            "filter_config": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                              "value": configuration},
        },
    }


def add_filters(filters, so_path, noop_path=None):
    """Add the native configurations (the wasm ones' filter configuration in the dynamic-modules
    filter) when the module exists, and the no-op module's when it exists; returns their
    names."""
    added = []
    if noop_path and os.path.exists(noop_path):
        filters[NOOP] = [dynamic_module_filter(os.path.abspath(noop_path), "")]
        added.append(NOOP)
        report.CONFIG_NAMES[NOOP] = NOOP_NAME
    if not so_path or not os.path.exists(so_path):
        return added
    for wasm, native in TWIN.items():
        if wasm not in filters:
            continue
        config = filters[wasm][0]["typed_config"]["config"]["configuration"]["value"]
        filters[native] = [dynamic_module_filter(os.path.abspath(so_path), config)]
        added.append(native)
    report.CONFIG_NAMES.update(CONFIGS)
    report.NATIVE_PEER.update(PEERS)
    return added


def add_rows(scenarios, filters):
    """Every scenario the wasm configuration runs in also runs on its native twin; the no-op
    module wherever the no-op wasm filter runs."""
    for _, (_, _, cfgs, _) in scenarios.items():
        if NOOP in filters and "noop-wasm" in cfgs and NOOP not in cfgs:
            cfgs.insert(cfgs.index("noop-wasm") + 1, NOOP)
        for wasm, native in TWIN.items():
            if wasm in cfgs and native in filters and native not in cfgs:
                cfgs.insert(cfgs.index(wasm) + 1, native)


# (goal, scenario, configuration, reference scenario, reference configuration, bound)
GOALS = [
    ("gRPC pass-through ÷ bare Envoy", "grpc", "bare", "grpc", 1.10),
    ("JSON unary ÷ Envoy's native filters", "json", "native", "json", 0.8),
    ("JSON 10 KB ÷ Envoy's native filters", "json-10k", "native", "json-10k", 0.8),
    ("JSON over HTTP/1.1 ÷ Envoy's native filters", "json-h1", "native", "json-h1", 0.8),
    ("JSON GET ÷ Envoy's native filters", "json-get", "native", "json-get", 0.8),
    ("JWT RS256 ÷ native, both caches on", "jwt-rs256", "native-cache", "jwt-rs256", 0.8),
    ("JWT ES256 ÷ native, both caches on", "jwt-es256", "native-cache", "jwt-es256", 0.8),
    ("uncached RS256 ÷ native (no cache)", "jwt-rs256", "native", "jwt-rs256", 1.0),
    ("uncached ES256 ÷ native (no cache)", "jwt-es256", "native", "jwt-es256", 1.0),
]
RSS_GOAL_MB = 10.0


def _cpu_ratio(idx, scenario, config, ref_scenario, ref_config):
    return report._ratios(idx, scenario, config, ref_scenario, ref_config, "cpu_us")


def _rss_delta(results, config):
    by = {}
    for r in results:
        if "rss_kb" in r:
            by.setdefault(r["config"], []).append(r["rss_kb"] / 1024)
    if config not in by or "bare" not in by:
        return None
    return report._mid(by[config]) - report._mid(by["bare"])


def goals_rows(results):
    idx = report._index(results)
    rows = []
    for goal, scenario, ref_c, ref_s, bound in GOALS:
        uncached = goal.startswith("uncached")
        native = "meshgate-native-nocache" if uncached else "meshgate-native"
        wasm = "meshgate-nocache" if uncached else "meshgate"
        got = _cpu_ratio(idx, scenario, native, ref_s, ref_c)
        was = _cpu_ratio(idx, scenario, wasm, ref_s, ref_c)
        met = "–" if not got else ("yes" if report._mid(got) <= bound else "no")
        rows.append([goal, f"≤ {bound:.2f}×", report._fmt(got, 2, "×"), report._fmt(was, 2, "×"),
                     met])
    native, wasm = _rss_delta(results, "meshgate-native"), _rss_delta(results, "meshgate")
    fmt = lambda d: f"{d:+.1f} MB" if d is not None else "–"  # noqa: E731
    met = "–" if native is None else ("yes" if native <= RSS_GOAL_MB else "no")
    rows.append(["Envoy RSS Δ vs bare", f"≤ +{RSS_GOAL_MB:.0f} MB", fmt(native), fmt(wasm), met])
    return rows


def with_goals(text, results, so_path):
    """The report with the native module's goals table before its end marker (when it ran)."""
    if not any(r.get("config") in CONFIGS for r in results):
        return text
    size = os.path.getsize(so_path) if so_path and os.path.exists(so_path) else None
    section = "\n".join([
        "Issue 22's goals for the native module (Envoy CPU µs/req ratios, median (min–max) "
        "across rounds, each pair within one round; the wasm module's ratio from the same run "
        "beside it):", "",
        report._table(["goal", "bound", "native module", "wasm module", "met"],
                      goals_rows(results)), "",
        f"Native module size: libmeshgate_native.so {size:,} bytes." if size else "", ""])
    return text.replace(report.END, section + report.END, 1)
