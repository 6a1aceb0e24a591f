//! OpenTelemetry traces: the connection manager traces requests with Envoy's OpenTelemetry
//! tracer and sends the spans over OTLP/gRPC to a collector (its own cluster). The gateway's
//! server span is named after the API operation, not the path: its name is the filter state
//! meshgate writes as soon as it has matched the operation (`wasm.meshgate.operation`), read
//! when the span ends; the operation and upstream are its attributes. The router's call to the
//! backend is a child span (`spawn_upstream_span`). W3C `traceparent` comes in and goes on.
//! Not (yet) attributes: the outcome and SLO verdicts, which meshgate decides in its log
//! callback, after Envoy has formatted the span's tags. docs/tracing.md.

use std::collections::BTreeMap;

use super::types::{
    Any, Cluster, ClusterLoadAssignment, CustomTag, DiscoveryType, EnvoyGrpc, ExplicitHttpConfig,
    GrpcService, HcmTracing, Http2ProtocolOptions, HttpProtocolOptions, NamedFilter,
    OpenTelemetryConfig, Percent,
};
use super::{parse_addr, HTTP_PROTOCOL_OPTIONS};

/// The collector's cluster.
pub const OTLP_CLUSTER: &str = "meshgate_otlp";

/// Filter state meshgate sets once it has matched the operation (`filter::span`), and the span
/// attribute of each.
pub const SPAN_ATTRIBUTES: [(&str, &str); 2] = [
    ("meshgate.operation", "wasm.meshgate.operation"),
    ("meshgate.upstream", "wasm.meshgate.upstream"),
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
    /// `traceparent` is always traced) [default: 100].
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
    }
}
