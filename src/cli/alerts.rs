//! `meshgate alerts <gateway.yaml> [-o rules.yml]`: the Prometheus rules (SLO error-ratio
//! recording rules and multiwindow, multi-burn-rate alerts) for the objectives the filter will
//! enforce, compiled from the same configuration (operation > service > `observe.default_slo`),
//! under the configuration's `observe.metric_prefix`.

use std::path::Path;

use super::{compile_file, positional_and_output, write_output};
use crate::config::Config;
use crate::observe::{alert_rules, Objective};

/// One objective per operation that has any (operations without one are neither counted nor
/// alerted on), in configuration order, then one per route policy that has its own, by name.
pub fn objectives(config: &Config) -> Vec<Objective> {
    let operations = config
        .operations
        .iter()
        .filter(|op| !op.slo.is_empty())
        .map(|op| Objective::operation(&op.name, &op.service, op.slo.clone()));
    let mut policies: Vec<_> = config.policies.values().collect();
    policies.sort_by_key(|p| p.id);
    let policies = policies
        .into_iter()
        .filter_map(|p| Some(Objective::policy(&p.name, p.slo.clone()?)));
    operations.chain(policies).collect()
}

/// The rules file for a gateway YAML (or an already compiled filter JSON).
pub fn rules_for_file(path: &Path) -> Result<String, String> {
    let json = if path.extension().is_some_and(|e| e == "json") {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
    } else {
        compile_file(path).map_err(|e| e.to_string())?
    };
    let config = crate::config::compile_json(json.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(alert_rules(&objectives(&config), &config.observe.names))
}

pub fn cmd_alerts(args: &[String]) -> Result<(), String> {
    let (input, output) = positional_and_output(args)?;
    let rules = rules_for_file(&input)?;
    write_output(output.as_ref(), &rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gateway YAML with the demo protos and `extra` appended; returns its path.
    fn gateway(name: &str, extra: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("meshgate-alerts-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
        let yaml = format!(
            "descriptors:\n  files: [meshgate/demo/v1/payments.proto]\n  include: [{}]\n\
             upstreams: {{payments: {{}}, wallets: {{}}}}\n{extra}",
            proto.display()
        );
        let path = dir.join("gateway.yaml");
        std::fs::write(&path, yaml).unwrap();
        path
    }

    const SERVICES: &str = "services:\n  meshgate.demo.v1.Payments:\n    upstream: payments\n    auth: none\n    slo: {latency: {threshold_ms: 250, target: 99}}\n  meshgate.demo.v1.Wallets:\n    upstream: wallets\n    auth: none\n";

    #[test]
    fn objectives_come_from_every_layer_and_empty_ones_are_left_out() {
        let path = gateway(
            "layers",
            &format!(
                "{SERVICES}operations:\n  meshgate.demo.v1.Payments.GetPayment:\n    slo: {{availability: 99.95}}\n"
            ),
        );
        let rules = rules_for_file(&path).unwrap();
        assert!(rules.contains("slo=\"availability\"} > (14.4 * 0.0005)"));
        assert!(rules.contains("99% under 250 ms"));
        // Without a default objective, Wallets has none: no alert names it.
        assert!(!rules.contains("Wallets"));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn route_policies_with_objectives_get_their_own_alerts() {
        let path = gateway(
            "policies",
            &format!(
                "{SERVICES}policies:\n  partner:\n    slo: {{latency: {{threshold_ms: 50, target: 90}}}}\n  strict:\n    auth: none\n"
            ),
        );
        let rules = rules_for_file(&path).unwrap();
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
        assert!(rules.contains("{policy=\"partner\",slo=\"latency\"} > (14.4 * 0.1)"));
        assert!(rules.contains("policy: \"partner\""));
        // A policy without an objective of its own has no alerts (its requests are judged by
        // their operations' objectives).
        assert!(!rules.contains("strict"));
    }

    #[test]
    fn policy_names_that_share_a_metric_label_are_refused() {
        for (name, extra, field) in [
            (
                "collide",
                "policies:\n  a-b: {}\n  a_b: {}\n",
                "policies.a_b",
            ),
            ("none", "policies:\n  none: {}\n", "policies.none"),
        ] {
            let path = gateway(name, &format!("{SERVICES}{extra}"));
            let err = rules_for_file(&path).unwrap_err();
            let _ = std::fs::remove_dir_all(path.parent().unwrap());
            assert!(err.contains(&format!("{field}:")), "{name}: {err}");
        }
    }

    #[test]
    fn a_bad_value_is_reported_at_the_layer_that_holds_it() {
        let cases = [
            (
                "svc",
                "services:\n  meshgate.demo.v1.Payments:\n    upstream: payments\n    auth: none\n    slo: {availability: 150}\n".to_string(),
                "services.meshgate.demo.v1.Payments.slo.availability",
            ),
            (
                "default",
                format!("{SERVICES}observe:\n  default_slo: {{latency: {{threshold_ms: 0, target: 90}}}}\n"),
                "observe.default_slo.latency.threshold_ms",
            ),
            (
                // Shadowed everywhere by the service's latency objective, still refused.
                "shadowed",
                format!("{SERVICES}observe:\n  default_slo: {{latency: {{threshold_ms: 100, target: 100}}}}\n"),
                "observe.default_slo.latency.target",
            ),
            (
                "op",
                format!("{SERVICES}operations:\n  meshgate.demo.v1.Payments.GetPayment:\n    slo: {{error_codes: [NOPE]}}\n"),
                "operations.meshgate.demo.v1.Payments.GetPayment.slo.error_codes[0]",
            ),
            (
                "policy",
                format!("{SERVICES}policies:\n  p:\n    slo: {{availability: 0}}\n"),
                "policies.p.slo.availability",
            ),
        ];
        for (name, extra, field) in cases {
            let path = gateway(name, &extra);
            let err = rules_for_file(&path).unwrap_err();
            assert!(err.contains(&format!("{field}:")), "{name}: {err}");
            let _ = std::fs::remove_dir_all(path.parent().unwrap());
        }
    }
}
