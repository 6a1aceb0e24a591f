//! The documentation cannot drift from the code:
//! - the reference tables of `docs/configuration.md` against the configuration the filter
//!   accepts: every documented key is accepted, and every accepted key is documented;
//! - every relative link in `README.md` and `docs/*.md` reaches a file (and heading);
//! - every gateway-file example (a `yaml` block whose keys are the configuration's) is accepted
//!   field for field, and the README's example is `envoy/gateway.yaml`, the file `make run` serves.
//!
//! How the accepted keys are found without a list kept by hand: the loader refuses unknown fields
//! (`deny_unknown_fields`), and serde's refusal names the fields it expected ("unknown field `x`,
//! expected one of `a`, `b`"). The test feeds an unknown key at every object it can reach and reads
//! that list. A new option therefore fails this test until it has its row.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use regex::Regex;
use serde_json::{json, Value};

const REFERENCE: &str = "docs/configuration.md";
/// Pages written on another branch: a link to them is not checked until they exist here
/// (remove an entry once the page is merged).
const PENDING_PAGES: &[&str] = &["docs/security.md"];
/// A key no configuration type has.
const PROBE: &str = "meshgate_docs_probe";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The filter's own loader; `Err` is its message.
fn load(doc: &Value) -> Result<(), String> {
    meshgate::config::compile_json(doc.to_string().as_bytes())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

// ---- Paths: `auth.providers[].jwks.remote.uri`, `upstreams.<name>.timeout_ms` ----

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Seg {
    Field(String),
    /// A key of a map (`<name>`).
    Key,
    /// An item of a list (`[]`).
    Item,
}

fn parse_path(text: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in text.split('.') {
        if part.starts_with('<') && part.ends_with('>') {
            out.push(Seg::Key);
        } else if let Some(name) = part.strip_suffix("[]") {
            out.push(Seg::Field(name.to_string()));
            out.push(Seg::Item);
        } else {
            out.push(Seg::Field(part.to_string()));
        }
    }
    out
}

fn show(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Field(f) if s.is_empty() => s.push_str(f),
            Seg::Field(f) => s.push_str(&format!(".{f}")),
            Seg::Key => s.push_str(".<name>"),
            Seg::Item => s.push_str("[]"),
        }
    }
    s
}

/// A document that has `leaf` at `path` and nothing else.
fn document(path: &[Seg], leaf: Value) -> Value {
    path.iter().rev().fold(leaf, |inner, seg| match seg {
        Seg::Field(f) => json!({ f.as_str(): inner }),
        Seg::Key => json!({ "x": inner }),
        Seg::Item => json!([inner]),
    })
}

// ---- What the loader accepts, found by probing ----

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Struct(Vec<String>),
    Enum(Vec<String>),
    List,
    Map,
    Leaf,
}

/// The backquoted names after `marker` in a serde message (up to serde_json's " at line").
fn quoted_after(message: &str, marker: &str) -> Option<Vec<String>> {
    let rest = &message[message.find(marker)? + marker.len()..];
    let rest = rest.split(" at line ").next().unwrap_or(rest);
    Some(
        rest.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}

/// What sits at `path`: feed it an object with an unknown key and read the refusal.
fn shape_at(path: &[Seg]) -> Shape {
    let message = match load(&document(path, json!({ PROBE: null }))) {
        Ok(()) => return Shape::Leaf,
        Err(m) => m,
    };
    if let Some(fields) = quoted_after(&message, &format!("unknown field `{PROBE}`")) {
        Shape::Struct(fields)
    } else if let Some(variants) = quoted_after(&message, &format!("unknown variant `{PROBE}`")) {
        Shape::Enum(variants)
    } else if message.contains("expected a sequence") {
        Shape::List
    } else if message.contains("invalid type: null") {
        // The probe became a map key, and its null value was refused.
        Shape::Map
    } else {
        Shape::Leaf
    }
}

/// Every path the loader accepts below `path`, with its shape.
fn explore(path: Vec<Seg>, out: &mut BTreeMap<Vec<Seg>, Shape>) {
    assert!(
        path.len() < 16,
        "configuration nested too deep at {}",
        show(&path)
    );
    let shape = shape_at(&path);
    let children: Vec<Vec<Seg>> = match &shape {
        Shape::Struct(fields) => {
            assert!(
                !fields.is_empty(),
                "no field list in the refusal of an unknown key at `{}`",
                show(&path)
            );
            fields
                .iter()
                .map(|f| [path.clone(), vec![Seg::Field(f.clone())]].concat())
                .collect()
        }
        Shape::List => vec![[path.clone(), vec![Seg::Item]].concat()],
        Shape::Map => vec![[path.clone(), vec![Seg::Key]].concat()],
        Shape::Enum(_) | Shape::Leaf => Vec::new(),
    };
    out.insert(path, shape);
    for child in children {
        explore(child, out);
    }
}

fn accepted() -> BTreeMap<Vec<Seg>, Shape> {
    let mut out = BTreeMap::new();
    explore(Vec::new(), &mut out);
    out
}

// ---- The reference tables ----

/// One row of a reference table: `| key | type | default | meaning |`.
#[derive(Debug, Clone)]
struct Row {
    key: String,
    /// The whole row, where enum values must be named.
    text: String,
    /// Types of this page (`<slo>`) the row's type refers to.
    types: Vec<String>,
}

fn cells(line: &str) -> Vec<String> {
    let line = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut escaped = false;
    for c in line.chars() {
        match c {
            '|' if !escaped => out.push(String::new()),
            _ => out.last_mut().unwrap().push(c),
        }
        escaped = c == '\\';
    }
    out.iter().map(|c| c.trim().to_string()).collect()
}

fn reference_rows(page: &str) -> Vec<Row> {
    let header = ["key", "type", "default", "meaning"];
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in page.lines() {
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let c = cells(line);
        if c == header {
            in_table = true;
            continue;
        }
        if !in_table || c.iter().all(|c| c.chars().all(|ch| ch == '-')) {
            continue;
        }
        assert_eq!(c.len(), 4, "{REFERENCE}: a row needs 4 cells: {line}");
        let key = c[0].strip_prefix('`').and_then(|k| k.strip_suffix('`'));
        let key = key.unwrap_or_else(|| panic!("{REFERENCE}: a row's key is one `path`: {line}"));
        let types = c[1]
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|t| t.starts_with('<') && t.ends_with('>'))
            .map(str::to_string)
            .collect();
        rows.push(Row {
            key: key.to_string(),
            text: line.to_string(),
            types,
        });
    }
    rows
}

/// Rows with their types written out: `services.<name>.slo` of type `<slo>` gives
/// `services.<name>.slo.availability` from the row `<slo>.availability`, and so on. Keyed by
/// the path; the value is the row's text with the text of the types it refers to.
fn documented(rows: &[Row]) -> BTreeMap<Vec<Seg>, (String, String)> {
    let is_type = |key: &str| key.starts_with('<');
    let type_name = |key: &str| key.split('.').next().unwrap_or(key).to_string();
    let defined: BTreeSet<String> = rows
        .iter()
        .filter(|r| is_type(&r.key))
        .map(|r| type_name(&r.key))
        .collect();
    let text_of = |row: &Row| {
        let mut text = row.text.clone();
        for t in &row.types {
            for def in rows.iter().filter(|r| r.key == *t) {
                text.push_str(&def.text);
            }
        }
        text
    };
    let mut out: BTreeMap<Vec<Seg>, (String, String)> = BTreeMap::new();
    let mut used = BTreeSet::new();
    let mut pending: Vec<(String, Row)> = rows
        .iter()
        .filter(|r| !is_type(&r.key))
        .map(|r| (r.key.clone(), r.clone()))
        .collect();
    while let Some((key, row)) = pending.pop() {
        assert!(
            key.len() < 300,
            "{REFERENCE}: types refer to each other: {key}"
        );
        let previous = out.insert(parse_path(&key), (key.clone(), text_of(&row)));
        assert!(
            previous.is_none(),
            "{REFERENCE}: `{key}` is documented twice (each key has one row)"
        );
        for t in row.types.iter().filter(|t| defined.contains(*t)) {
            used.insert(t.clone());
            for member in rows.iter().filter(|r| r.key.starts_with(&format!("{t}."))) {
                let full = format!("{key}{}", &member.key[t.len()..]);
                pending.push((full, member.clone()));
            }
        }
    }
    let unused: Vec<&String> = defined.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "{REFERENCE}: types defined but used by no row: {unused:?}"
    );
    out
}

/// `word` appears in `text` as a whole word (`none`, not `nonempty`).
fn names(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// Rows of `page` that name no key the configuration accepts.
fn extra_rows(page: &str, accepted: &BTreeMap<Vec<Seg>, Shape>) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, (key, _)) in documented(&reference_rows(page)) {
        if let Err(message) = load(&document(&path, Value::Null)) {
            if message.contains("unknown field") || message.contains("unknown variant") {
                problems.push(format!("`{key}`: the loader refuses it: {message}"));
                continue;
            }
        }
        if !accepted.contains_key(&path) {
            problems.push(format!(
                "`{key}`: no such key in the configuration (read as `{}`)",
                show(&path)
            ));
        }
    }
    problems
}

/// Keys the configuration accepts that `page` has no row for, and enum values its rows do not
/// name.
fn missing_rows(page: &str, accepted: &BTreeMap<Vec<Seg>, Shape>) -> Vec<String> {
    let docs = documented(&reference_rows(page));
    let mut problems = Vec::new();
    for (path, shape) in accepted {
        // Containers' items (`http[]`, `upstreams.<name>`) have no row of their own.
        if !matches!(path.last(), Some(Seg::Field(_))) {
            continue;
        }
        let Some((key, text)) = docs.get(path) else {
            problems.push(format!("`{}` is not documented: add its row", show(path)));
            continue;
        };
        if let Shape::Enum(values) = shape {
            for v in values.iter().filter(|v| !names(text, v)) {
                problems.push(format!("`{key}`: the value `{v}` is not named in its row"));
            }
        }
    }
    problems
}

#[test]
fn every_documented_key_is_accepted_by_the_configuration() {
    let page = read(REFERENCE);
    assert!(
        reference_rows(&page).len() > 50,
        "{REFERENCE}: reference tables not found"
    );
    let problems = extra_rows(&page, &accepted());
    assert!(
        problems.is_empty(),
        "{REFERENCE} documents keys the configuration does not have:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_accepted_key_is_documented_with_its_values() {
    let accepted = accepted();
    assert!(accepted.len() > 50, "only {} keys found", accepted.len());
    let problems = missing_rows(&read(REFERENCE), &accepted);
    assert!(
        problems.is_empty(),
        "{REFERENCE} is missing what the configuration accepts:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn a_removed_row_an_unknown_row_and_an_unnamed_value_are_reported() {
    let page = read(REFERENCE);
    let accepted = accepted();
    let without = |needle: &str| -> String {
        let mut lines: Vec<&str> = page.lines().collect();
        let before = lines.len();
        lines.retain(|l| !l.starts_with(needle));
        assert_eq!(lines.len() + 1, before, "one row starts with {needle}");
        lines.join("\n")
    };
    let missing = missing_rows(&without("| `limits.max_jwks_bytes` |"), &accepted);
    assert_eq!(
        missing,
        ["`limits.max_jwks_bytes` is not documented: add its row"]
    );
    // A row of a type is a row under every key of that type.
    let missing = missing_rows(&without("| `<slo>.error_codes` |"), &accepted);
    assert_eq!(missing.len(), 5, "{missing:?}");
    assert!(missing
        .iter()
        .any(|m| m.contains("`observe.default_slo.error_codes`")));
    let missing = missing_rows(&page.replace("`CONSTANT_ADDRESS`", "constant"), &accepted);
    assert!(missing
        .iter()
        .any(|m| m.contains("the value `CONSTANT_ADDRESS`")));

    let extra_row = "| `limits.max_everything` | bytes | | |\n| `limits.max_header_bytes` |";
    let extra = extra_rows(
        &page.replace("| `limits.max_header_bytes` |", extra_row),
        &accepted,
    );
    assert_eq!(extra.len(), 1, "{extra:?}");
    assert!(extra[0].starts_with("`limits.max_everything`: the loader refuses it: "));
}

#[test]
fn the_probe_reads_the_loaders_refusals() {
    // The mechanism the two tests above rest on, on keys whose shape is known.
    let Shape::Struct(root) = shape_at(&[]) else {
        panic!("the configuration's top level is not an object")
    };
    assert!(root.contains(&"auth".to_string()) && root.contains(&"limits".to_string()));
    assert_eq!(shape_at(&parse_path("http_operations")), Shape::List);
    assert_eq!(shape_at(&parse_path("upstreams")), Shape::Map);
    assert_eq!(
        shape_at(&parse_path("limits.max_request_bytes")),
        Shape::Leaf
    );
    let Shape::Enum(kinds) = shape_at(&parse_path("auth.default")) else {
        panic!("auth.default is not an enum")
    };
    assert!(kinds.contains(&"allow_missing".to_string()));
    // A misspelt example is told from one that only fails to compile.
    let misspelt = load(&json!({"auth": {"realms": "x"}})).unwrap_err();
    assert!(refused_as_written(&misspelt), "{misspelt}");
    let uncompiled = load(&json!({"auth": {"realm": "x"}})).unwrap_err();
    assert!(!refused_as_written(&uncompiled), "{uncompiled}");
}

// ---- Links ----

fn pages() -> Vec<String> {
    let mut out = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    out.extend(docs);
    out
}

/// The page without fenced code blocks (links and headings in them are not links or headings).
fn prose(page: &str) -> Vec<&str> {
    let mut fenced = false;
    page.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// GitHub's heading anchors: lower case, punctuation dropped, spaces as `-`, repeats numbered.
fn anchors(page: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in prose(page) {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let slug: String = title
            .trim_start_matches('#')
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn relative_links_reach_a_file_and_a_heading() {
    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let code = Regex::new(r"`[^`]*`").unwrap();
    let mut problems = Vec::new();
    for page in pages() {
        let text = read(&page);
        let dir = Path::new(&page).parent().unwrap().to_path_buf();
        for line in prose(&text) {
            let line = code.replace_all(line, "");
            for target in link.captures_iter(&line).map(|c| c[1].to_string()) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (file, anchor) = match target.split_once('#') {
                    Some((f, a)) => (f, Some(a)),
                    None => (target.as_str(), None),
                };
                let rel = if file.is_empty() {
                    PathBuf::from(&page)
                } else {
                    normalize(&dir.join(file))
                };
                let rel_str = rel.to_string_lossy().into_owned();
                if !root().join(&rel).exists() {
                    if !PENDING_PAGES.contains(&rel_str.as_str()) {
                        problems.push(format!("{page}: `{target}`: no file {rel_str}"));
                    }
                    continue;
                }
                if let Some(anchor) = anchor {
                    if !rel_str.ends_with(".md") || !anchors(&read(&rel_str)).contains(anchor) {
                        problems.push(format!("{page}: `{target}`: no heading #{anchor}"));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn anchors_follow_githubs_rules() {
    let page = "# A `b`: c/d\n```\n# not a heading\n```\n## Same\n## Same\n";
    let got: Vec<String> = anchors(page).into_iter().collect();
    assert_eq!(got, vec!["a-b-cd", "same", "same-1"]);
}

// ---- Gateway-file examples ----

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
    let shown: GatewayInput = serde_yaml_ng::from_str(example).unwrap();
    let served: GatewayInput = serde_yaml_ng::from_str(&read("envoy/gateway.yaml")).unwrap();
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
