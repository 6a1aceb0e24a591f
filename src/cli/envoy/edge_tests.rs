#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use clap::Parser;

use super::edge::*;
use super::types::*;
use super::*;

fn hcm(b: &Bootstrap) -> &HttpConnectionManager {
    match &b.static_resources.listeners[0].filter_chains[0].filters[0].typed_config {
        Any::HttpConnectionManager(h) => h,
        other => panic!("not a connection manager: {other:?}"),
    }
}

fn rendered(edge: Edge) -> Bootstrap {
    let mut o = EnvoyOptions::new("{}".into(), "/m.wasm".into());
    o.edge = edge;
    // Below every window: the windows below are the flags' own (see the fitting test).
    o.buffer_limit_bytes = Some(32 << 10);
    bootstrap(&o)
}

/// `meshgate envoy`'s edge flags as the command line parses them.
#[derive(Debug, Parser)]
struct Cmd {
    #[command(flatten)]
    edge: EdgeArgs,
}

fn parse(args: &[&str]) -> Result<Edge, String> {
    let argv = std::iter::once("meshgate-envoy").chain(args.iter().copied());
    Cmd::try_parse_from(argv)
        .map(|c| c.edge.edge())
        .map_err(|e| e.to_string())
}

fn monitor<'a>(b: &'a Bootstrap, name: &str) -> &'a Any {
    let m = b.overload_manager.resource_monitors.iter();
    &m.clone()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no monitor {name}"))
        .typed_config
}

fn action<'a>(b: &'a Bootstrap, name: &str) -> &'a Trigger {
    let a = b.overload_manager.actions.iter().find(|a| a.name == name);
    let a = a.unwrap_or_else(|| panic!("no action {name}"));
    assert_eq!(a.triggers.len(), 1);
    &a.triggers[0]
}

fn runtime(b: &Bootstrap, key: &str) -> u64 {
    b.layered_runtime.layers[0].static_layer[key]
}

#[test]
fn the_bootstrap_carries_every_edge_protection_with_its_default() {
    let b = rendered(Edge::default());
    let h = hcm(&b);
    assert_eq!(h.request_headers_timeout.as_deref(), Some("10s"));
    assert_eq!(h.request_timeout.as_deref(), Some("300s"));
    assert_eq!(h.stream_idle_timeout.as_deref(), Some("300s"));
    assert_eq!(h.max_request_headers_kb, Some(60));
    let common = h.common_http_protocol_options.as_ref().unwrap();
    assert_eq!(common.max_headers_count, 100);
    assert_eq!(common.idle_timeout, "3600s");
    let h2 = h.http2_protocol_options.as_ref().unwrap();
    assert_eq!(h2.max_concurrent_streams, 100);
    assert_eq!(h2.initial_stream_window_size, 65_536);
    assert_eq!(h2.initial_connection_window_size, 1_048_576);

    assert_eq!(
        runtime(&b, "overload.premature_reset_total_stream_count"),
        500
    );
    assert_eq!(
        runtime(&b, "overload.premature_reset_min_stream_lifetime_seconds"),
        1
    );
    assert_eq!(runtime(&b, "http.max_requests_per_io_cycle"), 1);

    assert_eq!(
        monitor(
            &b,
            "envoy.resource_monitors.global_downstream_max_connections"
        ),
        &Any::DownstreamConnectionsConfig(DownstreamConnectionsConfig {
            max_active_downstream_connections: 50_000
        })
    );
    assert_eq!(
        monitor(&b, "envoy.resource_monitors.fixed_heap"),
        &Any::FixedHeapConfig(FixedHeapConfig {
            max_heap_size_bytes: 2 << 30
        })
    );
    for (name, at) in [
        ("envoy.overload_actions.shrink_heap", 0.95),
        ("envoy.overload_actions.stop_accepting_requests", 0.98),
    ] {
        let t = action(&b, name);
        assert_eq!(t.name, "envoy.resource_monitors.fixed_heap");
        assert_eq!(
            t.kind,
            TriggerKind::Threshold(ThresholdTrigger { value: at })
        );
    }
    let reset = action(&b, "envoy.overload_actions.reset_high_memory_stream");
    assert_eq!(reset.name, "envoy.resource_monitors.fixed_heap");
    assert!(matches!(reset.kind, TriggerKind::Scaled(_)), "{reset:?}");
    // Without buffer accounting `reset_high_memory_stream` has no stream to pick.
    assert_eq!(
        b.overload_manager
            .buffer_factory_config
            .minimum_account_to_track_power_of_two,
        20
    );
}

#[test]
fn no_flag_means_the_defaults() {
    assert_eq!(parse(&[]).unwrap(), Edge::default());
}

#[test]
fn each_edge_flag_changes_its_protection() {
    let e = parse(&[
        "--request-headers-timeout=3",
        "--request-timeout=30",
        "--stream-idle-timeout=40",
        "--connection-idle-timeout=50",
        "--max-headers-count=20",
        "--max-request-headers-kb=16",
        "--max-concurrent-streams=10",
        "--initial-stream-window-size=131072",
        "--initial-connection-window-size=262144",
        "--max-requests-per-io-cycle=4",
        "--premature-reset-total-stream-count=50",
        "--premature-reset-min-stream-lifetime=2",
        "--max-connections=64",
        "--max-heap-bytes=67108864",
    ])
    .unwrap();
    let b = rendered(e);
    let h = hcm(&b);
    assert_eq!(h.request_headers_timeout.as_deref(), Some("3s"));
    assert_eq!(h.request_timeout.as_deref(), Some("30s"));
    assert_eq!(h.stream_idle_timeout.as_deref(), Some("40s"));
    assert_eq!(h.max_request_headers_kb, Some(16));
    assert_eq!(
        h.common_http_protocol_options,
        Some(CommonHttpProtocolOptions {
            idle_timeout: "50s".into(),
            max_headers_count: 20
        })
    );
    assert_eq!(
        h.http2_protocol_options,
        Some(Http2Limits {
            max_concurrent_streams: 10,
            initial_stream_window_size: 131_072,
            initial_connection_window_size: 262_144,
        })
    );
    assert_eq!(runtime(&b, "http.max_requests_per_io_cycle"), 4);
    assert_eq!(
        runtime(&b, "overload.premature_reset_total_stream_count"),
        50
    );
    assert_eq!(
        runtime(&b, "overload.premature_reset_min_stream_lifetime_seconds"),
        2
    );
    assert_eq!(
        monitor(
            &b,
            "envoy.resource_monitors.global_downstream_max_connections"
        ),
        &Any::DownstreamConnectionsConfig(DownstreamConnectionsConfig {
            max_active_downstream_connections: 64
        })
    );
    assert_eq!(
        monitor(&b, "envoy.resource_monitors.fixed_heap"),
        &Any::FixedHeapConfig(FixedHeapConfig {
            max_heap_size_bytes: 64 << 20
        })
    );
}

#[test]
fn edge_flags_outside_envoys_ranges_are_refused() {
    for bad in [
        "--max-request-headers-kb=8193",
        "--max-request-headers-kb=0",
        "--initial-stream-window-size=1000",
        "--initial-connection-window-size=2147483648",
        "--max-concurrent-streams=0",
        "--request-headers-timeout=0",
        "--max-connections=0",
        "--max-heap-bytes=-1",
    ] {
        assert!(parse(&[bad]).is_err(), "{bad} was accepted");
    }
}

#[test]
fn the_edge_sections_serialize_as_envoy_reads_them() {
    let b = serde_json::to_value(rendered(Edge::default())).unwrap();
    let om = &b["overload_manager"];
    assert_eq!(om["refresh_interval"], "0.25s");
    assert_eq!(
        om["resource_monitors"][1]["typed_config"]["@type"],
        "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"
    );
    assert_eq!(om["actions"][0]["triggers"][0]["threshold"]["value"], 0.95);
    assert_eq!(
        om["actions"][2]["triggers"][0]["scaled"]["saturation_threshold"],
        0.95
    );
    assert_eq!(
        b["layered_runtime"]["layers"][0]["static_layer"]
            ["overload.premature_reset_total_stream_count"],
        500
    );
}

/// The windows are raised to a buffer above them, kept when above it, and capped at HTTP/2's
/// largest window.
#[test]
fn the_windows_are_fitted_to_the_buffer() {
    let e = Edge::default();
    let fitted = e.fitted_to_buffer(16 << 20);
    assert_eq!(fitted.initial_stream_window_size, 16 << 20);
    assert_eq!(fitted.initial_connection_window_size, 16 << 20);
    assert_eq!(
        Edge {
            max_concurrent_streams: 7,
            ..e.clone()
        }
        .fitted_to_buffer(1)
        .max_concurrent_streams,
        7
    );
    assert_eq!(e.fitted_to_buffer(1024), e);
    // Through the renderer: a listener without a limit has Envoy's 1 MiB.
    let o = EnvoyOptions::new("{}".into(), "/m.wasm".into());
    let b = bootstrap(&o);
    let h2 = hcm(&b).http2_protocol_options.as_ref().unwrap();
    assert_eq!(h2.initial_stream_window_size, 1 << 20);
    let unlimited = e.fitted_to_buffer(u32::MAX);
    assert_eq!(unlimited.initial_stream_window_size, (1 << 31) - 1);
    assert_eq!(unlimited.initial_connection_window_size, (1 << 31) - 1);
}

#[test]
fn free_heap_goes_back_to_the_system_unless_turned_off() {
    let b = serde_json::to_value(rendered(Edge::default())).unwrap();
    let m = &b["memory_allocator_manager"];
    assert_eq!(m["bytes_to_release"], 16 << 20);
    assert_eq!(m["memory_release_interval"], "1s");
    let e = parse(&["--release-free-memory-bytes=1048576"]).unwrap();
    let b = serde_json::to_value(rendered(e)).unwrap();
    assert_eq!(b["memory_allocator_manager"]["bytes_to_release"], 1 << 20);
    let off = parse(&["--release-free-memory-bytes=0"]).unwrap();
    let b = serde_json::to_value(rendered(off)).unwrap();
    assert!(b.get("memory_allocator_manager").is_none(), "{b}");
}
