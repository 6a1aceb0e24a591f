//! The reference tables of `docs/configuration.md` against what the loader accepts.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::probe::{accepted, document, parse_path, shape_at, show, Seg, Shape};
use super::{load, read, REFERENCE};

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
}
