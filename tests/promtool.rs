//! The generated Prometheus rules, checked by the real `promtool`:
//! - `tests/promtool/rules.yml` is what `alert_rules` (`meshgate alerts`) makes of a sample objective set (below);
//!   a test regenerates it and fails on any drift (`MESHGATE_UPDATE_RULES=1` rewrites it);
//! - `promtool check rules` accepts it;
//! - `promtool test rules` runs the unit tests in `tests/promtool/*_test.yml` (fast burn
//!   pages within minutes, slow burns only ticket, healthy series never alert);
//! - the series in those tests are the names Envoy's /stats/prometheus shows for our stat
//!   names and `stats_tags`, so the rules work on real scrapes.
//!
//! promtool comes from the Debian `prometheus` package (`make setup` installs it). A missing
//! promtool fails these tests: they are the proof the rules work.
#![cfg(not(target_arch = "wasm32"))]
// A test crate: its helpers may panic (clippy allows this only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Command;

use meshgate::cli::alerts::alert_rules;
use meshgate::observe::input::{LatencySloInput, SloInput};
use meshgate::observe::{MetricNames, Objective, Slo, SloKind, WASM_NAMESPACE};
use regex::Regex;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promtool")
}

fn slo_input(avail: Option<f64>, latency: Option<(u64, f64)>) -> SloInput {
    SloInput {
        availability: avail,
        latency: latency.map(|(threshold_ms, target)| LatencySloInput {
            threshold_ms,
            target,
        }),
        error_codes: None,
    }
}

/// A sample configuration's objectives, merged the way the configuration compiler does
/// (operation > service > `observe.default_slo`):
/// - default: availability 99.9;
/// - service `meshgate.demo.v1.Payments`: latency 95% under 300 ms;
/// - operation `CreatePayment`: availability 99.5, latency 99% under 1000 ms;
/// - `Wallets.GetWallet`: only the default;
/// - requests without an operation (`_unmatched`): the default's availability;
/// - route policy `partner`: latency 90% under 50 ms (judges the requests its routes select,
///   whatever their operation).
fn sample_objectives() -> Vec<Objective> {
    let default = slo_input(Some(99.9), None);
    let payments = slo_input(None, Some((300, 95.0)));
    let create = slo_input(Some(99.5), Some((1000, 99.0)));
    let cases = [
        (
            "meshgate.demo.v1.Payments",
            "GetPayment",
            None,
            Some(&payments),
        ),
        (
            "meshgate.demo.v1.Payments",
            "CreatePayment",
            Some(&create),
            Some(&payments),
        ),
        ("meshgate.demo.v1.Wallets", "GetWallet", None, None),
    ];
    let partner = slo_input(None, Some((50, 90.0)));
    cases
        .into_iter()
        .map(|(service, method, op, svc)| {
            Objective::operation(
                &format!("{service}.{method}"),
                service,
                Slo::compile(&[op, svc, Some(&default)]).unwrap(),
            )
        })
        // Requests without an operation: the default's availability (`_unmatched`).
        .chain([Objective::operation(
            meshgate::observe::UNMATCHED_OPERATION,
            meshgate::cli::alerts::UNMATCHED_SERVICE,
            Slo::unmatched(Some(&default)).unwrap(),
        )])
        .chain([Objective::policy(
            "partner",
            Slo::compile(&[Some(&partner), Some(&default)]).unwrap(),
        )])
        .collect()
}

fn names() -> MetricNames {
    MetricNames::new("meshgate").unwrap()
}

#[test]
fn committed_rules_match_the_generator() {
    let generated = alert_rules(&sample_objectives(), &names()).unwrap();
    let committed_path = dir().join("rules.yml");
    if std::env::var_os("MESHGATE_UPDATE_RULES").is_some() {
        std::fs::write(&committed_path, &generated).unwrap();
    }
    let tmp = std::env::temp_dir().join(format!("meshgate-rules-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let fresh = tmp.join("rules.yml");
    std::fs::write(&fresh, &generated).unwrap();
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    let regenerated = std::fs::read_to_string(&fresh).unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        committed == regenerated,
        "tests/promtool/rules.yml is stale; regenerate with \
         MESHGATE_UPDATE_RULES=1 cargo test --test promtool"
    );
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir())
        .output()
        .unwrap_or_else(|e| panic!("promtool not runnable ({e}); install the prometheus package"));
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_rules() {
    promtool(&["check", "rules", "rules.yml"]);
}

fn test_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("_test.yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn promtool_unit_tests_pass() {
    let files = test_files();
    assert!(
        files.len() >= 2,
        "expected availability and latency tests: {files:?}"
    );
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    promtool(&args);
}

/// What Envoy's /stats/prometheus shows for a stat the filter defines (tag extraction as
/// Envoy does it: first groups cut out, second groups become labels).
fn exposed(names: &MetricNames, stat: &str) -> (String, Vec<(String, String)>) {
    let full = format!("{WASM_NAMESPACE}.{stat}");
    let mut cut = Vec::new();
    let mut labels = Vec::new();
    for (tag, regex) in names.stats_tags() {
        if let Some(c) = Regex::new(&regex).unwrap().captures(&full) {
            let remove = c.get(1).unwrap();
            cut.push(remove.range());
            labels.push((tag, c.get(2).unwrap_or(remove).as_str().to_string()));
        }
    }
    let kept: String = full
        .char_indices()
        .filter(|(i, _)| !cut.iter().any(|r| r.contains(i)))
        .map(|(_, c)| c)
        .collect();
    let bare = kept.trim_start_matches("wasmcustom.").replace('.', "_");
    labels.sort();
    (bare, labels)
}

#[test]
fn test_series_are_what_envoy_exposes() {
    let names = names();
    let series_re = Regex::new(r#"series: '([a-z_:]+)\{([^}]*)\}'"#).unwrap();
    let label_re = Regex::new(r#"(\w+)="([^"]*)""#).unwrap();
    let mut seen = 0;
    for file in test_files() {
        let text = std::fs::read_to_string(dir().join(&file)).unwrap();
        for c in series_re.captures_iter(&text) {
            // Envoy's own counters (reload_test.yml) are not meshgate's: their names are
            // checked against a real Envoy by tests/kit/tests/e2e_reliability_reload.rs.
            if c[1].starts_with("envoy_") {
                continue;
            }
            let mut labels: Vec<(String, String)> = label_re
                .captures_iter(&c[2])
                .map(|l| (l[1].to_string(), l[2].to_string()))
                .filter(|(k, _)| k != "job" && k != "instance") // added by the scrape
                .collect();
            labels.sort();
            let get = |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            // The request counter (health_test.yml: health answers counted outside objectives).
            if c[1] == names.family(meshgate::observe::Family::Requests) {
                let (op, outcome) = (get("operation").unwrap(), get("outcome").unwrap());
                let stat = names.requests(&op, &outcome);
                assert_eq!(exposed(&names, &stat), (c[1].to_string(), labels), "{file}");
                seen += 1;
                continue;
            }
            let (op, slo) = (get("operation").unwrap(), get("slo").unwrap());
            let policy = get("policy").unwrap();
            let policy = (policy != meshgate::observe::OWN_OBJECTIVE).then_some(policy.as_str());
            let kind = match slo.as_str() {
                "availability" => SloKind::Availability,
                "latency" => SloKind::Latency,
                other => panic!("{file}: unknown slo {other}"),
            };
            let stat = if c[1].contains("good") {
                names.slo_good_events(&op, kind, policy)
            } else {
                names.slo_events(&op, kind, policy)
            };
            assert_eq!(exposed(&names, &stat), (c[1].to_string(), labels), "{file}");
            seen += 1;
        }
    }
    assert!(seen >= 8, "only {seen} series found");
}

#[test]
fn promtool_accepts_rules_for_odd_names_and_prefixes() {
    let slo = slo_input(Some(99.95), Some((250, 99.0)));
    let objectives = vec![
        Objective::operation("we\"ird\\op", "s: x", Slo::compile(&[Some(&slo)]).unwrap()),
        Objective::operation("a b/c {d} #e", "- y", Slo::compile(&[Some(&slo)]).unwrap()),
        Objective::policy("odd: {x}", Slo::compile(&[Some(&slo)]).unwrap()),
    ];
    let yaml = alert_rules(&objectives, &MetricNames::new("gw_2").unwrap()).unwrap();
    let tmp = std::env::temp_dir().join(format!("meshgate-odd-rules-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let file = tmp.join("odd.yml");
    std::fs::write(&file, yaml).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("promtool not runnable ({e}); install the prometheus package"));
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `meshgate alerts` on the demo gateway YAML: the rules carry the objectives the
/// configuration compiles to (Payments: availability 99.9 and latency 95% under 300 ms, from
/// the service; Wallets: availability 99.5, no latency objective), promtool accepts them, and
/// a promtool unit test on the command's own output shows a 16x burn of Wallets' 0.5% budget
/// pages within minutes while a healthy Payments series stays silent.
#[test]
fn meshgate_alerts_renders_the_configured_objectives_for_promtool() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = std::env::temp_dir().join(format!("meshgate-alerts-cmd-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let rules = tmp.join("rules.yml");
    let out = Command::new(env!("CARGO_BIN_EXE_meshgate"))
        .arg("alerts")
        .arg(root.join("envoy/gateway.yaml"))
        .arg("-o")
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&rules).unwrap();
    let file: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    let all = file["groups"][0]["rules"].as_array().unwrap();
    let alerts: Vec<&serde_json::Value> = all.iter().filter(|r| r.get("alert").is_some()).collect();
    let exprs: Vec<&str> = alerts.iter().filter_map(|r| r["expr"].as_str()).collect();
    let wallet = "meshgate.demo.v1.Wallets.GetWallet";
    let payment = "meshgate.demo.v1.Payments.GetPayment";
    for needle in [
        format!(
            r#"rate1h{{operation="{wallet}",policy="none",slo="availability"}} > (14.4 * 0.005)"#
        ),
        format!(
            r#"rate1h{{operation="{payment}",policy="none",slo="availability"}} > (14.4 * 0.001)"#
        ),
        format!(r#"rate3d{{operation="{payment}",policy="none",slo="latency"}} > (1 * 0.05)"#),
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(&needle)),
            "missing {needle}"
        );
    }
    let payment_latency = alerts
        .iter()
        .find(|r| r["labels"]["operation"] == payment && r["labels"]["slo"] == "latency")
        .unwrap();
    let summary = payment_latency["annotations"]["summary"].as_str().unwrap();
    assert!(summary.contains("95% under 300 ms"), "{summary}");
    assert!(
        !alerts
            .iter()
            .any(|r| r["labels"]["operation"] == wallet && r["labels"]["slo"] == "latency"),
        "Wallets has no latency objective"
    );

    let check = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap_or_else(|e| panic!("promtool not runnable ({e}); install the prometheus package"));
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let series = |family: &str, op: &str, values: &str| {
        format!(
            "      - series: '{family}{{job=\"envoy\",instance=\"gw:9901\",operation=\"{op}\",policy=\"none\",slo=\"availability\"}}'\n        values: '{values}'\n"
        )
    };
    let unit = format!(
        "rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{}{}{}{}    alert_rule_test:\n      - eval_time: 0m\n        alertname: MeshgateErrorBudgetBurn\n        exp_alerts: []\n      - eval_time: 6m\n        alertname: MeshgateErrorBudgetBurn\n        exp_alerts:\n          - exp_labels: {{severity: page, slo: availability, policy: none, operation: {wallet}, service: meshgate.demo.v1.Wallets}}\n            exp_annotations:\n              summary: {wallet} is burning the error budget of its availability objective 99.5% too fast (page)\n          - exp_labels: {{severity: ticket, slo: availability, policy: none, operation: {wallet}, service: meshgate.demo.v1.Wallets}}\n            exp_annotations:\n              summary: {wallet} is burning the error budget of its availability objective 99.5% too fast (ticket)\n",
        // 8% errors: a 16x burn of a 0.5% budget.
        series("meshgate_slo_events_total", wallet, "0+1000x60"),
        series("meshgate_slo_good_events_total", wallet, "0+920x60"),
        // 0.05% errors: half of Payments' 0.1% budget.
        series("meshgate_slo_events_total", payment, "0+2000x60"),
        series("meshgate_slo_good_events_total", payment, "0+1999x60"),
    );
    std::fs::write(tmp.join("demo_test.yml"), unit).unwrap();
    let test = Command::new("promtool")
        .args(["test", "rules", "demo_test.yml"])
        .current_dir(&tmp)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        test.status.success(),
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
}
