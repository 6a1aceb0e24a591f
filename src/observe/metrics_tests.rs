//! Tests of the metric names against a model of Envoy's tag extraction and Prometheus
//! exposition (see the module docs of `metrics` for the facts it models).

use super::*;
use crate::observe::slo::LatencySlo;
use regex::Regex;

const OP: &str = "meshgate.demo.v1.Payments.GetPayment";

/// What /stats/prometheus shows for a stat the filter defined as `name`: every tag regex runs
/// over the full `wasmcustom.` name; first groups are cut out, second groups become labels.
fn exposed(names: &MetricNames, name: &str) -> String {
    let full = format!("{WASM_NAMESPACE}.{name}");
    let mut cut: Vec<(usize, usize)> = Vec::new();
    let mut labels: Vec<(String, String)> = Vec::new();
    for (tag, regex) in names.stats_tags() {
        let re = Regex::new(&regex).unwrap();
        if let Some(c) = re.captures(&full) {
            let remove = c.get(1).unwrap();
            let value = c.get(2).unwrap_or(remove);
            cut.push((remove.start(), remove.end()));
            labels.push((tag, value.as_str().to_string()));
        }
    }
    let kept: String = full
        .char_indices()
        .filter(|(i, _)| !cut.iter().any(|(s, e)| i >= s && i < e))
        .map(|(_, c)| c)
        .collect();
    let bare = kept
        .strip_prefix(&format!("{WASM_NAMESPACE}."))
        .unwrap_or(&kept);
    let sanitized: String = bare
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    labels.sort();
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{sanitized}{{{}}}", labels.join(","))
}

fn names() -> MetricNames {
    MetricNames::new("meshgate").unwrap()
}

#[test]
fn request_counter_gets_clean_name_and_labels() {
    let n = names();
    assert_eq!(
        exposed(&n, &n.requests(OP, "ok")),
        format!("meshgate_requests_total{{operation=\"{OP}\",outcome=\"ok\"}}")
    );
}

#[test]
fn slo_counters_carry_objective_and_operation() {
    let n = names();
    assert_eq!(
        exposed(&n, &n.slo_events(OP, SloKind::Latency, None)),
        format!("meshgate_slo_events_total{{operation=\"{OP}\",policy=\"none\",slo=\"latency\"}}")
    );
    assert_eq!(
        exposed(&n, &n.slo_good_events(OP, SloKind::Availability, None)),
        format!("meshgate_slo_good_events_total{{operation=\"{OP}\",policy=\"none\",slo=\"availability\"}}")
    );
    // A policy's objective: its name as a word.
    assert_eq!(
        exposed(&n, &n.slo_events(OP, SloKind::Latency, Some("partner-api"))),
        format!("meshgate_slo_events_total{{operation=\"{OP}\",policy=\"partner_api\",slo=\"latency\"}}")
    );
}

#[test]
fn histogram_has_only_the_operation_label() {
    let n = names();
    assert_eq!(
        exposed(&n, &n.latency_histogram(OP)),
        format!("meshgate_request_duration_ms{{operation=\"{OP}\"}}")
    );
}

#[test]
fn auth_and_jwks_counters_get_their_labels() {
    let n = names();
    assert_eq!(
        exposed(&n, &n.auth_decisions(OP, AuthDecision::Denied, "expired")),
        format!(
            "meshgate_auth_decisions_total{{decision=\"denied\",operation=\"{OP}\",reason=\"expired\"}}"
        )
    );
    assert_eq!(
        exposed(&n, &n.jwks_fetches("corp.idp", false)),
        "meshgate_jwks_fetches_total{provider=\"corp.idp\",result=\"failure\"}"
    );
}

#[test]
fn operation_containing_key_words_is_not_confused() {
    let n = names();
    let op = "x.outcome.bad.operation.y";
    assert_eq!(
        exposed(&n, &n.requests(op, "5xx")),
        format!("meshgate_requests_total{{operation=\"{op}\",outcome=\"5xx\"}}")
    );
    assert_eq!(
        exposed(&n, &n.slo_events(op, SloKind::Availability, Some("slo"))),
        format!(
            "meshgate_slo_events_total{{operation=\"{op}\",policy=\"slo\",slo=\"availability\"}}"
        )
    );
}

#[test]
fn every_family_and_outcome_exposes_a_fixed_name() {
    let n = MetricNames::new("gw_1").unwrap();
    for outcome in crate::observe::classify::OUTCOME_LABELS {
        let e = exposed(&n, &n.requests(OP, outcome));
        assert!(e.starts_with("gw_1_requests_total{"), "{e}");
        assert!(e.contains(&format!("outcome=\"{outcome}\"")), "{e}");
    }
}

#[test]
fn odd_values_are_made_safe() {
    let n = names();
    assert_eq!(
        n.requests("a..b c.", "we ird"),
        "meshgate_requests_total.outcome.we_ird.operation.a_.b_c_"
    );
    assert_eq!(
        n.requests("", ""),
        "meshgate_requests_total.outcome.none.operation._"
    );
    assert_eq!(
        exposed(&n, &n.auth_decisions("op", AuthDecision::Allowed, "")),
        "meshgate_auth_decisions_total{decision=\"allowed\",operation=\"op\",reason=\"none\"}"
    );
}

#[test]
fn each_tag_name_is_given_once() {
    let tags = names().stats_tags();
    let mut seen: Vec<&str> = tags.iter().map(|(t, _)| t.as_str()).collect();
    let total = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), total);
    assert_eq!(total, 9);
}

#[test]
fn client_requests_carry_client_outcome_and_operation() {
    let n = names();
    assert_eq!(
        exposed(&n, &n.client_requests(OP, "acme-corp", "4xx")),
        format!("meshgate_client_requests_total{{client=\"acme_corp\",operation=\"{OP}\",outcome=\"4xx\"}}")
    );
}

#[test]
fn tag_regexes_avoid_lookaround_and_lazy_quantifiers() {
    for (_, regex) in names().stats_tags() {
        assert!(!regex.contains("(?="), "{regex}");
        assert!(!regex.contains("(?!"), "{regex}");
        assert!(!regex.contains("(?<"), "{regex}");
        assert!(!regex.contains("?)") && !regex.contains("+?"), "{regex}");
        assert!(regex.starts_with(r"^wasmcustom\."), "{regex}");
    }
}

#[test]
fn other_stats_get_no_meshgate_tags() {
    let n = names();
    for other in [
        "wasmcustom.other_requests_total.outcome.ok.operation.x",
        "cluster.payments.upstream_rq_200",
        "http.ingress.downstream_rq_5xx",
    ] {
        for (tag, regex) in n.stats_tags() {
            assert!(
                !Regex::new(&regex).unwrap().is_match(other),
                "{tag} {other}"
            );
        }
    }
}

#[test]
fn bad_prefixes_are_refused() {
    for bad in ["", "mesh.gate", "1gw", "gw-1", "gw{x}"] {
        let e = MetricNames::new(bad).unwrap_err();
        assert_eq!(e.field, "observe.metric_prefix", "{bad}");
    }
    assert!(MetricNames::new("_gw1").is_ok());
}

#[test]
fn latency_histogram_regex_matches_full_names_only() {
    let n = names();
    let re = Regex::new(&format!("^(?:{})$", n.latency_histogram_regex())).unwrap();
    assert!(re.is_match(&format!("wasmcustom.{}", n.latency_histogram(OP))));
    assert!(!re.is_match(&format!("wasmcustom.{}", n.requests(OP, "ok"))));
}

#[test]
fn buckets_include_every_threshold_once() {
    let a = Slo {
        latency: Some(LatencySlo {
            threshold_ms: 300,
            target: 95.0,
        }),
        ..Slo::default()
    };
    let b = Slo {
        latency: Some(LatencySlo {
            threshold_ms: 100,
            target: 99.0,
        }),
        ..Slo::default()
    };
    let buckets = histogram_buckets(&[&a, &b, &Slo::default()], &[50, 100, 1000]);
    assert_eq!(buckets, vec![50.0, 100.0, 300.0, 1000.0]);
    let defaults = histogram_buckets(&[&a], &[]);
    assert!(defaults.contains(&300.0) && defaults.contains(&0.5));
    assert!(defaults.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn family_names_take_the_exposition_prefix() {
    let mut n = names();
    assert_eq!(n.family(Family::Requests), "meshgate_requests_total");
    n.exposition_prefix = "envoy_".into();
    assert_eq!(
        n.family(Family::SloEvents),
        "envoy_meshgate_slo_events_total"
    );
}
