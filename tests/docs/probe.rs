//! What the loader accepts, found by probing: feed an unknown key at a path and read the
//! refusal.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{load, PROBE};

// ---- Paths: `auth.providers[].jwks.remote.uri`, `upstreams.<name>.timeout_ms` ----

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seg {
    Field(String),
    /// A key of a map (`<name>`).
    Key,
    /// An item of a list (`[]`).
    Item,
}

pub fn parse_path(text: &str) -> Vec<Seg> {
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

pub fn show(path: &[Seg]) -> String {
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
pub fn document(path: &[Seg], leaf: Value) -> Value {
    path.iter().rev().fold(leaf, |inner, seg| match seg {
        Seg::Field(f) => json!({ f.as_str(): inner }),
        Seg::Key => json!({ "x": inner }),
        Seg::Item => json!([inner]),
    })
}

// ---- What the loader accepts, found by probing ----

#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Struct(Vec<String>),
    Enum(Vec<String>),
    List,
    Map,
    Leaf,
}

/// The backquoted names after `marker` in a serde message (up to serde_json's " at line").
pub fn quoted_after(message: &str, marker: &str) -> Option<Vec<String>> {
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
pub fn shape_at(path: &[Seg]) -> Shape {
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
pub fn explore(path: Vec<Seg>, out: &mut BTreeMap<Vec<Seg>, Shape>) {
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

pub fn accepted() -> BTreeMap<Vec<Seg>, Shape> {
    let mut out = BTreeMap::new();
    explore(Vec::new(), &mut out);
    out
}
