"""Envoy bootstraps for each benchmarked configuration. All share one listener, one route to
the demo backend's cluster and the router; only the HTTP filters in front of the router differ."""
import json
import os
import subprocess

from jwt import AUDIENCE, ISSUERS

SERVICE = "meshgate.demo.v1.Payments"
PROVIDERS = {"RS256": "rs", "ES256": "es"}


def gateway_yaml(proto_dir, jwks, cache, access_log=False):
    """The meshgate gateway: the same operations, keys and requirement as the native config."""
    providers = [
        {"name": PROVIDERS[alg], "issuer": ISSUERS[alg], "audiences": [AUDIENCE],
         "jwks": {"inline": json.dumps({"keys": [jwks[alg]["jwk"]]})}}
        for alg in ("RS256", "ES256")
    ]
    # The requirement in the map form the loader reads (the same shape as the filter JSON).
    requirement = "{any: [{provider: rs}, {provider: es}, allow_missing]}"
    doc = {
        "descriptors": {"files": ["meshgate/demo/v1/payments.proto"], "include": [proto_dir],
                        "services": [SERVICE]},
        "upstreams": {"payments": {}},
        "services": {SERVICE: {"upstream": "payments", "auth": "REQUIREMENT"}},
        "auth": {"providers": providers, "cache": {"enabled": cache}},
        "observe": {"access_log": access_log},
    }
    return json.dumps(doc, indent=1).replace('"REQUIREMENT"', requirement)  # JSON is YAML


def compile_gateway(meshgate_bin, workdir, name, proto_dir, jwks, cache):
    path = os.path.join(workdir, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(gateway_yaml(proto_dir, jwks, cache))
    return subprocess.run([meshgate_bin, "compile", path], capture_output=True, check=True,
                          text=True).stdout


def wasm_filter(vm_id, wasm_path, configuration):
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": vm_id, "root_id": vm_id,
                "vm_config": {"vm_id": vm_id, "runtime": "envoy.wasm.runtime.v8",
                              "code": {"local": {"filename": wasm_path}}},
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                  "value": configuration},
                "failure_policy": "FAIL_RELOAD",
                "allow_on_headers_stop_iteration": True,
            },
        },
    }


def jwt_authn(jwks, cache):
    providers = {}
    for alg in ("RS256", "ES256"):
        p = {"issuer": ISSUERS[alg], "audiences": [AUDIENCE],
             "local_jwks": {"inline_string": json.dumps({"keys": [jwks[alg]["jwk"]]})}}
        if cache:
            p["jwt_cache_config"] = {"jwt_cache_size": 4096}
        providers[PROVIDERS[alg]] = p
    requires = {"requires_any": {"requirements": [
        {"provider_name": "rs"}, {"provider_name": "es"}, {"allow_missing": {}}]}}
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": providers,
            "rules": [{"match": {"prefix": "/"}, "requires": requires}],
        },
    }


def transcoder(descriptor_set_b64):
    return {
        "name": "envoy.filters.http.grpc_json_transcoder",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
            "proto_descriptor_bin": descriptor_set_b64,
            "services": [SERVICE],
            "print_options": {"always_print_primitive_fields": False,
                              "preserve_proto_field_names": False},
        },
    }


# What `meshgate envoy` renders by default (`--release-free-memory-bytes`, 16 MiB a second):
# tcmalloc's free pages go back to the system, as in the bootstraps users run. Every row gets
# it, so the RSS deltas are the ones users see. BENCH_RELEASE_BYTES=0 runs without it (Envoy's
# default, the bench before issue 20's parity change).
RELEASE_FREE_MEMORY_BYTES = int(os.environ.get("BENCH_RELEASE_BYTES", 16 << 20))


def bootstrap(filters, listen_port, admin_port, backend_port,
              release_bytes=RELEASE_FREE_MEMORY_BYTES):
    router = {"name": "envoy.filters.http.router",
              "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "bench",
        "codec_type": "AUTO",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"name": "payments", "match": {"prefix": "/"},
             "route": {"cluster": "payments", "timeout": "15s"}}]}]},
        "http_filters": filters + [router],
    }
    sock = lambda port: {"socket_address": {"address": "127.0.0.1", "port_value": port}}  # noqa: E731
    boot = {
        "admin": {"address": sock(admin_port)},
        "static_resources": {
            "listeners": [{"name": "bench", "address": sock(listen_port), "filter_chains": [
                {"filters": [{"name": "envoy.filters.network.http_connection_manager",
                              "typed_config": hcm}]}]}],
            "clusters": [{
                "name": "payments", "type": "STATIC", "connect_timeout": "2s",
                "load_assignment": {"cluster_name": "payments", "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": sock(backend_port)}}]}]},
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": {"http2_protocol_options": {}}}},
            }],
        },
    }
    if release_bytes > 0:
        boot["memory_allocator_manager"] = {"bytes_to_release": str(release_bytes),
                                            "memory_release_interval": "1s"}
    return boot


def all_filters(ctx):
    """{config name: list of HTTP filters}. ctx: meshgate_bin, workdir, proto_dir, jwks,
    meshgate_wasm, noop_wasm."""
    on = compile_gateway(ctx["meshgate_bin"], ctx["workdir"], "gw-cache", ctx["proto_dir"],
                         ctx["jwks"], True)
    off = compile_gateway(ctx["meshgate_bin"], ctx["workdir"], "gw-nocache", ctx["proto_dir"],
                          ctx["jwks"], False)
    descriptors = json.loads(on)["descriptors"]["descriptor_set"]
    out = {
        "bare": [],
        "native": [jwt_authn(ctx["jwks"], False), transcoder(descriptors)],
        "native-cache": [jwt_authn(ctx["jwks"], True), transcoder(descriptors)],
        "meshgate": [wasm_filter("meshgate", ctx["meshgate_wasm"], on)],
        "meshgate-nocache": [wasm_filter("meshgate", ctx["meshgate_wasm"], off)],
    }
    if ctx.get("noop_wasm"):
        out["noop-wasm"] = [wasm_filter("noop", ctx["noop_wasm"], "")]
    # The same filters in an Envoy with two workers (`--concurrency 2`, bench.workers): one
    # more wasm VM each, so the difference to the one-worker row is one VM's cost.
    for c in ("bare", "noop-wasm", "meshgate"):
        if c in out:
            out[c + W2] = out[c]
    return out


# Suffix of the configurations run with two Envoy workers.
W2 = "-w2"


def workers(config):
    return 2 if config.endswith(W2) else 1
