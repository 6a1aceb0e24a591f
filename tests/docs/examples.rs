//! Gateway-file examples in the pages, and the README's example and request.

use serde_json::{json, Value};

use super::probe::{shape_at, Shape};
use super::{load, pages, read};

/// The loader refused the document's shape (a field, a type), not what compiling it found (an
/// example has no descriptor set, names operations of its own protos, ...).
fn refused_as_written(message: &str) -> bool {
    message.starts_with("invalid configuration JSON")
        || [
            "unknown field",
            "unknown variant",
            "invalid type",
            "missing field",
        ]
        .iter()
        .any(|m| message.contains(m))
}

fn yaml_blocks(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in page.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(block), l) if l.starts_with("```") => {
                out.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

#[test]
fn gateway_examples_use_only_keys_the_configuration_accepts() {
    let Shape::Struct(top) = shape_at(&[]) else {
        panic!("the configuration's top level is not an object")
    };
    let mut checked = 0;
    let mut problems = Vec::new();
    for page in pages() {
        for block in yaml_blocks(&read(&page)) {
            let value: Value = match serde_yaml_ng::from_str(&block) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(format!("{page}: a yaml block does not parse: {e}\n{block}"));
                    continue;
                }
            };
            let gateway = value
                .as_object()
                .is_some_and(|o| o.keys().any(|k| top.contains(k)));
            if !gateway {
                continue; // an Envoy or Istio example
            }
            checked += 1;
            if let Err(m) = load(&value) {
                if refused_as_written(&m) {
                    problems.push(format!("{page}: example refused: {m}\n{block}"));
                }
            }
        }
    }
    assert!(checked >= 5, "only {checked} gateway examples found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_readme_example_is_the_file_make_run_serves() {
    use meshgate::config::input::GatewayInput;
    let readme = yaml_blocks(&read("README.md"));
    let example = readme.first().expect("README.md has no yaml block");
    // Through JSON, as the command reads it (serde_yaml_ng alone wants `!provider` tags for
    // requirements written as maps).
    let parse = |text: &str| -> GatewayInput {
        serde_json::from_value(serde_yaml_ng::from_str::<serde_json::Value>(text).unwrap()).unwrap()
    };
    let shown = parse(example);
    let served = parse(&read("envoy/gateway.yaml"));
    assert_eq!(
        shown, served,
        "README.md's gateway.yaml and envoy/gateway.yaml differ: keep them the same"
    );
}

#[test]
fn the_readme_requests_are_ones_make_run_prints() {
    // `tests/kit/tests/make_run.rs` sends every request `tests/tools/run.sh` prints and checks
    // the answers, so a README request found there is checked end to end.
    let script = read("tests/tools/run.sh");
    let readme = read("README.md");
    let requests: Vec<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("$ curl "))
        .map(|l| format!("curl {}", l.replace("127.0.0.1:8080", "$LISTEN")))
        .collect();
    assert!(!requests.is_empty(), "README.md shows no `$ curl` request");
    for r in requests {
        assert!(
            script.contains(&r),
            "README.md's `{r}` is not among the requests tests/tools/run.sh prints"
        );
    }
}

#[test]
fn a_misspelt_example_is_told_from_one_that_only_fails_to_compile() {
    let misspelt = load(&json!({"auth": {"realms": "x"}})).unwrap_err();
    assert!(refused_as_written(&misspelt), "{misspelt}");
    let uncompiled = load(&json!({"auth": {"realm": "x"}})).unwrap_err();
    assert!(!refused_as_written(&uncompiled), "{uncompiled}");
}
