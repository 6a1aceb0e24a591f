//! OpenTelemetry traces: the connection manager traces requests with Envoy's OpenTelemetry
//! tracer and sends the spans over OTLP/gRPC to a collector (its own cluster). The gateway's
//! server span is named after the API operation, not the path: its name is the filter state
//! meshgate writes as soon as it has matched the operation (`wasm.meshgate.operation`), read
//! when the span ends; the operation, upstream, outcome and SLO verdicts are its attributes
//! (meshgate writes the last three when the response ends, before Envoy formats the tags).
//! The router's call to the backend is a child span (`spawn_upstream_span`); meshgate's own
//! calls get theirs from meshgate (`observe::span_export`), which learns the server span from
//! a header a `header_mutation` filter sets in front of it (`%TRACE_ID%`, `%SPAN_ID%`).
//! W3C `traceparent` comes in and goes on; B3 (`x-b3-*`) comes in as a `traceparent` made by
//! an early header mutation, before the tracer reads the request. docs/tracing.md.

use std::collections::BTreeMap;

use super::types::{
    Any, Cluster, ClusterLoadAssignment, CustomTag, DiscoveryType, EarlyHeaderMutation, EarlyRule,
    EnvoyGrpc, ExplicitHttpConfig, GrpcService, HcmTracing, HeaderMutation, HeaderMutationRule,
    HeaderValue, HeaderValueOption, Http2ProtocolOptions, HttpProtocolOptions, Mutations,
    NamedFilter, OpenTelemetryConfig, Percent,
};
use super::{parse_addr, HTTP_PROTOCOL_OPTIONS};
use crate::observe::span_export::SPAN_HEADER;

/// The collector's cluster (meshgate's own spans go there too).
pub use crate::observe::span_export::OTLP_CLUSTER;

/// Filter state meshgate sets (`filter::span`: the first two once it has matched the
/// operation, the others when the response ends), and the span attribute of each.
pub const SPAN_ATTRIBUTES: [(&str, &str); 5] = [
    ("meshgate.operation", "wasm.meshgate.operation"),
    ("meshgate.upstream", "wasm.meshgate.upstream"),
    ("meshgate.outcome", "wasm.meshgate.outcome"),
    (
        "meshgate.slo.availability",
        "wasm.meshgate.slo.availability",
    ),
    ("meshgate.slo.latency", "wasm.meshgate.slo.latency"),
];

#[derive(Debug, Clone, PartialEq)]
pub struct Tracing {
    pub collector_address: String,
    pub collector_port: u16,
    /// Percent of requests without an incoming sampling decision that are traced.
    pub sampling_percent: f64,
    pub service_name: String,
}

fn filter_state(key: &str) -> String {
    format!("%FILTER_STATE({key}:PLAIN)%")
}

/// The connection manager's `tracing`.
pub fn hcm_tracing(t: &Tracing) -> HcmTracing {
    HcmTracing {
        provider: NamedFilter {
            name: "envoy.tracers.opentelemetry".into(),
            typed_config: Any::OpenTelemetryConfig(OpenTelemetryConfig {
                grpc_service: GrpcService {
                    envoy_grpc: EnvoyGrpc {
                        cluster_name: OTLP_CLUSTER.into(),
                    },
                    timeout: Some("1s".into()),
                },
                service_name: t.service_name.clone(),
            }),
        },
        random_sampling: Percent {
            value: t.sampling_percent,
        },
        operation: filter_state("wasm.meshgate.operation"),
        upstream_operation: format!("{} upstream", filter_state("wasm.meshgate.upstream")),
        spawn_upstream_span: true,
        custom_tags: SPAN_ATTRIBUTES
            .iter()
            .map(|(tag, key)| CustomTag {
                tag: tag.to_string(),
                value: filter_state(key),
            })
            .collect(),
    }
}

fn append(key: &str, value: String, action: &str) -> HeaderMutationRule {
    HeaderMutationRule {
        append: HeaderValueOption {
            header: HeaderValue {
                key: key.into(),
                value,
            },
            append_action: action.into(),
        },
    }
}

/// The gateway span's context for meshgate's own calls: `{trace id}-{span id}-{service}`
/// in [`SPAN_HEADER`], set over whatever a client sent (the first HTTP filter: the server
/// span exists by then). meshgate removes it from the request.
pub fn span_context_filter(t: &Tracing) -> NamedFilter {
    let service = t.service_name.replace('%', "%%");
    NamedFilter {
        name: "meshgate.span_context".into(),
        typed_config: Any::HeaderMutation(HeaderMutation {
            mutations: Mutations {
                request_mutations: vec![append(
                    SPAN_HEADER,
                    format!("%TRACE_ID%-%SPAN_ID%-{service}"),
                    "OVERWRITE_IF_EXISTS_OR_ADD",
                )],
            },
        }),
    }
}

/// A per-request UUID the single-`b3` rules read for `b3: 0` (CEL in Envoy 1.40 has no
/// random source and no string conversion); set over any client copy, removed after use.
pub const B3_SEED_HEADER: &str = "x-meshgate-b3-seed";

/// The single `b3` header (`{trace}-{span}[-{sampled}[-{parent}]]`) as a `traceparent`:
/// Envoy 1.40's CEL in formatters has no string functions (`substring`, `split`), no `+` on
/// strings and no `string()`, but it has the regex extension: `re.extract`'s rewrite assembles
/// the result. A trace id of 16 hex digits is padded to 32; sampled `0` gives the flags `00`,
/// `1`, `d` or none `01` (as for the multi-header form). `b3: 0` alone (deny, no ids) becomes
/// an unsampled `traceparent` whose ids come from [`B3_SEED_HEADER`], so neither Envoy nor the
/// backend traces the request. Anything else formats empty (no header).
/// Cost: `matches` with a constant pattern is compiled once, with the configuration;
/// `re.extract` compiles its pattern on every call (about 12 µs here), so the form is checked
/// with `matches` only and a request pays one `re.extract`, only when it sends `b3`. Envoy
/// refuses a regex over its CEL program size (`[0-9a-f]{32}` and `[0-9a-f]{16}` in one is
/// over), hence a `matches` per part.
fn b3_single() -> String {
    const B: &str = "request.headers['b3']";
    const HAS: &str = "'b3' in request.headers";
    let short = format!("{B}.matches('^[0-9a-f]{{16}}-')");
    let ids = format!(
        "{HAS} && {B}.matches('^[0-9a-f]+-[0-9a-f]+(-[01d](-[0-9a-f]+)?)?$') && \
         ({short} || {B}.matches('^[0-9a-f]{{32}}-')) && \
         {B}.matches('^[0-9a-f]+-[0-9a-f]{{16}}(-|$)')"
    );
    let ids_as =
        |pad: &str| format!("re.extract({B}, '^([0-9a-f]+)-([0-9a-f]+)', '00-{pad}\\\\1-\\\\2')");
    let pad = "0".repeat(16);
    let deny = format!(
        "re.extract(request.headers['{B3_SEED_HEADER}'], \
         '^([0-9a-f]+)-([0-9a-f]+)-([0-9a-f]+)-([0-9a-f]+)-([0-9a-f]+)$', \
         '00-\\\\1\\\\2\\\\3\\\\4\\\\5-\\\\4\\\\5-00')"
    );
    format!(
        "%CEL({ids} ? ({short} ? {} : {}) : {HAS} && {B} == '0' ? {deny} : '')%\
         %CEL({ids} ? ({B}.matches('^[0-9a-f]+-[0-9a-f]+-0') ? '-00' : '-01') : '')%",
        ids_as(&pad),
        ids_as("")
    )
}

/// B3's multi-header form (`x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled`) as a `traceparent`
/// (a 64-bit trace id padded to 128; `x-b3-sampled: 0|false` not sampled, any other value or
/// none sampled). Without the headers the value formats empty.
fn b3_multi() -> String {
    const B3: &str = "'x-b3-traceid' in request.headers";
    format!(
        "%CEL({B3} ? '00-' : '')%\
         %CEL({B3} && size(request.headers['x-b3-traceid']) == 16 ? '0000000000000000' : '')%\
         %REQ(x-b3-traceid)%%CEL({B3} ? '-' : '')%%REQ(x-b3-spanid)%\
         %CEL(!({B3}) ? '' : ('x-b3-sampled' in request.headers && \
         request.headers['x-b3-sampled'] in ['0', 'false']) ? '-00' : '-01')%"
    )
}

/// B3 in: Envoy 1.40's OpenTelemetry tracer reads only W3C trace context (its configuration
/// has no propagator option), so a request with B3 and no `traceparent` gets the equivalent
/// `traceparent` from an early header mutation, before the tracer reads the request: the
/// single `b3` header first ([`b3_single`]), else the multi-header form ([`b3_multi`]).
/// The client's decision to sample is honoured: Envoy 1.40 exports the server span only when
/// the connection manager decided to trace (random sampling), even under a sampled parent, so
/// a sampled `traceparent` (the client's or one made here) and `b3: 1` or `b3: d` alone (sample,
/// no ids) add `x-client-trace-id`, which makes the connection manager trace the request
/// (`client_sampling`, 100%). A request without B3 or a sampled `traceparent` gets nothing
/// (the values format empty, and Envoy adds no empty header) but the seed header, added and
/// removed. docs/tracing.md says what else was tried.
pub fn b3_in() -> Vec<NamedFilter> {
    let forced = "%CEL(('b3' in request.headers && request.headers['b3'] in ['1', 'd']) || \
         ('traceparent' in request.headers && request.headers['traceparent']\
         .matches('^[0-9a-f]+-[0-9a-f]+-[0-9a-f]+-[0-9a-f][13579bdf]$')) ? 'sampled' : '')%";
    vec![NamedFilter {
        name: "envoy.http.early_header_mutation.header_mutation".into(),
        typed_config: Any::EarlyHeaderMutation(EarlyHeaderMutation {
            mutations: vec![
                EarlyRule::Append(append(
                    B3_SEED_HEADER,
                    "%UNIQUE_ID%".into(),
                    "OVERWRITE_IF_EXISTS_OR_ADD",
                )),
                EarlyRule::Append(append("traceparent", b3_single(), "ADD_IF_ABSENT")),
                EarlyRule::Append(append("traceparent", b3_multi(), "ADD_IF_ABSENT")),
                EarlyRule::Append(append("x-client-trace-id", forced.into(), "ADD_IF_ABSENT")),
                EarlyRule::Remove {
                    remove: B3_SEED_HEADER.into(),
                },
            ],
        }),
    }]
}

/// The filter's configuration with `tracing.spans` on when the bootstrap traces (it then has
/// the span header and the collector's cluster meshgate's own spans need); as given otherwise.
pub fn filter_json(json: &str, traced: bool) -> String {
    if !traced {
        return json.to_string();
    }
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(json) else {
        return json.to_string();
    };
    let Some(root) = doc.as_object_mut() else {
        return json.to_string();
    };
    root.insert(
        "tracing".into(),
        serde_json::to_value(crate::config::tracing::TracingInput { spans: true })
            .unwrap_or_default(),
    );
    serde_json::to_string(&doc).unwrap_or_else(|_| json.to_string())
}

/// The collector's cluster (HTTP/2, for gRPC).
pub fn otlp_cluster(t: &Tracing) -> Cluster {
    let mut options = BTreeMap::new();
    options.insert(
        HTTP_PROTOCOL_OPTIONS.to_string(),
        Any::HttpProtocolOptions(HttpProtocolOptions {
            explicit_http_config: ExplicitHttpConfig {
                http2_protocol_options: Http2ProtocolOptions {},
            },
        }),
    );
    let literal = t.collector_address.parse::<std::net::IpAddr>().is_ok();
    Cluster {
        name: OTLP_CLUSTER.into(),
        kind: if literal {
            DiscoveryType::Static
        } else {
            DiscoveryType::LogicalDns
        },
        connect_timeout: "2s".into(),
        load_assignment: ClusterLoadAssignment::single(
            OTLP_CLUSTER,
            &t.collector_address,
            t.collector_port,
        ),
        typed_extension_protocol_options: options,
        transport_socket: None,
        health_checks: Vec::new(),
        outlier_detection: None,
    }
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("`{s}`: a percentage is 0 to 100"))
    }
}

/// `meshgate envoy`'s tracing options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TracingArgs {
    /// Send OpenTelemetry traces (OTLP/gRPC) to this collector.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_addr)]
    pub otlp: Option<(String, u16)>,
    /// Percent of requests traced when the client sent no sampling decision (a sampled
    /// `traceparent` or B3 is always traced) [default: 100].
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub trace_sampling: Option<f64>,
    /// The service name of the gateway's spans.
    #[arg(long, value_name = "NAME", default_value = "meshgate")]
    pub trace_service_name: String,
}

impl TracingArgs {
    pub fn tracing(&self) -> Result<Option<Tracing>, String> {
        let Some((address, port)) = self.otlp.clone() else {
            return match self.trace_sampling {
                Some(_) => Err("--trace-sampling needs --otlp".into()),
                None => Ok(None),
            };
        };
        Ok(Some(Tracing {
            collector_address: address,
            collector_port: port,
            sampling_percent: self.trace_sampling.unwrap_or(100.0),
            service_name: self.trace_service_name.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        tracing: TracingArgs,
    }

    fn parse(args: &[&str]) -> Result<Option<Tracing>, String> {
        let argv = std::iter::once("x").chain(args.iter().copied());
        Cmd::try_parse_from(argv)
            .map_err(|e| e.to_string())
            .and_then(|c| c.tracing.tracing())
    }

    #[test]
    fn otlp_renders_the_tracer_its_cluster_and_the_sampling() {
        let t = parse(&["--otlp", "127.0.0.1:4317", "--trace-sampling", "5"])
            .unwrap()
            .unwrap();
        let v = serde_json::to_value(hcm_tracing(&t)).unwrap();
        assert_eq!(v["random_sampling"]["value"], 5.0);
        assert_eq!(
            v["operation"],
            "%FILTER_STATE(wasm.meshgate.operation:PLAIN)%"
        );
        assert_eq!(v["spawn_upstream_span"], true);
        let provider = &v["provider"]["typed_config"];
        assert_eq!(
            provider["grpc_service"]["envoy_grpc"]["cluster_name"],
            OTLP_CLUSTER
        );
        assert_eq!(provider["service_name"], "meshgate");
        let c = serde_json::to_value(otlp_cluster(&t)).unwrap();
        assert_eq!(c["name"], OTLP_CLUSTER);
        assert!(c["typed_extension_protocol_options"][HTTP_PROTOCOL_OPTIONS].is_object());
        assert_eq!(parse(&[]).unwrap(), None);
        assert!(parse(&["--trace-sampling", "5"]).is_err());
        assert!(parse(&["--otlp", "a:1", "--trace-sampling", "101"]).is_err());
        let all = parse(&["--otlp", "collector:4317"]).unwrap().unwrap();
        assert_eq!(all.sampling_percent, 100.0);
        let tags: Vec<&str> = v["custom_tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tag"].as_str().unwrap())
            .collect();
        for tag in [
            "meshgate.outcome",
            "meshgate.slo.availability",
            "meshgate.slo.latency",
        ] {
            assert!(tags.contains(&tag), "{tags:?}");
        }
    }

    #[test]
    fn the_filter_makes_spans_only_in_a_traced_bootstrap() {
        let json = r#"{"observe":{"access_log":false}}"#;
        assert_eq!(filter_json(json, false), json);
        let traced: serde_json::Value = serde_json::from_str(&filter_json(json, true)).unwrap();
        assert_eq!(traced["tracing"]["spans"], true);
        assert_eq!(traced["observe"]["access_log"], false);
        let input: crate::config::input::GatewayInput = serde_json::from_value(traced).unwrap();
        assert!(input.tracing.spans);
    }

    #[test]
    fn the_span_context_header_is_set_over_the_clients_and_b3_becomes_a_traceparent() {
        let t = parse(&["--otlp", "127.0.0.1:4317", "--trace-service-name", "gw%1"])
            .unwrap()
            .unwrap();
        let f = serde_json::to_value(span_context_filter(&t)).unwrap();
        let rule = &f["typed_config"]["mutations"]["request_mutations"][0]["append"];
        assert_eq!(rule["header"]["key"], SPAN_HEADER);
        assert_eq!(rule["header"]["value"], "%TRACE_ID%-%SPAN_ID%-gw%%1");
        assert_eq!(rule["append_action"], "OVERWRITE_IF_EXISTS_OR_ADD");
        let b3 = serde_json::to_value(b3_in()).unwrap();
        let rules = b3[0]["typed_config"]["mutations"].as_array().unwrap();
        let added: Vec<(&str, &str)> = rules
            .iter()
            .filter_map(|r| {
                let a = &r["append"];
                Some((a["header"]["key"].as_str()?, a["append_action"].as_str()?))
            })
            .collect();
        assert_eq!(
            added,
            [
                (B3_SEED_HEADER, "OVERWRITE_IF_EXISTS_OR_ADD"),
                ("traceparent", "ADD_IF_ABSENT"),
                ("traceparent", "ADD_IF_ABSENT"),
                ("x-client-trace-id", "ADD_IF_ABSENT"),
            ]
        );
        // The seed is removed last, after the rules that read it.
        assert_eq!(rules.last().unwrap()["remove"], B3_SEED_HEADER);
        let single = rules[1]["append"]["header"]["value"].as_str().unwrap();
        assert!(single.contains("request.headers['b3']"), "{single}");
        assert!(single.contains("re.extract("), "{single}");
        // `re.extract` compiles its pattern per call: one per request, in one of two branches
        // (padded or not); one more for `b3: 0`. Validation is by `matches` (precompiled).
        assert_eq!(single.matches("re.extract(").count(), 3, "{single}");
        let multi = rules[2]["append"]["header"]["value"].as_str().unwrap();
        assert!(multi.contains("%REQ(x-b3-traceid)%"), "{multi}");
        assert!(multi.contains("%REQ(x-b3-spanid)%"), "{multi}");
    }
}
