//! The compiled operation matcher: one trie over path segments per HTTP method.
//!
//! Lookup walks the request's segments down the trie, trying at each node the literal child,
//! then the `*` child, then a `**` tail, and backtracking on a dead end. Each node is visited at
//! most once per reading of the path (a node's depth is the number of segments consumed; a path
//! ending in `:verb` has two readings, see `request_path`), so a lookup costs the path's depth
//! times an ordered-map search over literal children, not a scan of the operations; recursion
//! is bounded by the deepest template, not by the request.
//! Most specific wins, segment by segment from the left; the result never depends on
//! insertion order. The method's own trie is searched before the any-method (`*`) trie.

use std::collections::BTreeMap;

use super::bind::{bind, BadBinding, Match};
use super::request_path::RequestPath;
use super::template::{PathTemplate, Segment};
use super::unescape::UrlUnescapeSpec;

/// Method name that matches any request method (plain-HTTP routes).
pub const ANY_METHOD: &str = "*";

/// Compiled matcher from (method, path) to `T`.
#[derive(Debug)]
pub struct Matcher<T> {
    roots: BTreeMap<String, Node<T>>,
    len: usize,
}

/// A template ending at a node (or at a node's `**`), with its verb.
#[derive(Debug)]
struct Leaf<T> {
    method: String,
    source: String,
    template: PathTemplate,
    value: T,
}

#[derive(Debug)]
struct Node<T> {
    literals: BTreeMap<Box<str>, Node<T>>,
    wildcard: Option<Box<Node<T>>>,
    /// Templates that end here; at most one per verb (`None` = no verb).
    ends: Vec<Leaf<T>>,
    /// Templates whose `**` starts here; at most one per verb.
    tails: Vec<Leaf<T>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            literals: BTreeMap::new(),
            wildcard: None,
            ends: Vec::new(),
            tails: Vec::new(),
        }
    }
}

impl<T> Default for Matcher<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Matcher<T> {
    pub fn new() -> Self {
        Matcher {
            roots: BTreeMap::new(),
            len: 0,
        }
    }

    /// Add a binding. Err on a bad method or template, and on a binding identical to an
    /// existing one (same method, same template up to variable names, same verb).
    pub fn insert(&mut self, method: &str, template: &str, value: T) -> Result<(), String> {
        check_method(method)?;
        let parsed = PathTemplate::parse(template)?;
        let leaf = Leaf {
            method: method.to_string(),
            source: template.to_string(),
            template: parsed,
            value,
        };
        let root = self.roots.entry(method.to_string()).or_default();
        let node = root.descend_creating(leaf.template.segments());
        let slot = match leaf.template.segments().last() {
            Some(Segment::Tail) => &mut node.tails,
            _ => &mut node.ends,
        };
        if let Some(existing) = slot
            .iter()
            .find(|l| l.template.verb() == leaf.template.verb())
        {
            return Err(format!(
                "{method} {template:?} duplicates {} {:?} (same method and path pattern)",
                existing.method, existing.source
            ));
        }
        slot.push(leaf);
        self.len += 1;
        Ok(())
    }

    /// Find the operation for a request. `path` is the `:path` without the query string.
    /// `None`: no operation matches. `Some(Err)`: one matches but a path variable cannot be
    /// decoded (answer 400).
    pub fn lookup(
        &self,
        method: &str,
        path: &str,
        spec: UrlUnescapeSpec,
    ) -> Option<Result<Match<'_, T>, BadBinding<'_, T>>> {
        let request = RequestPath::split(path)?;
        let roots = [
            self.root(method),
            self.root(ANY_METHOD).filter(|_| method != ANY_METHOD),
        ];
        roots.into_iter().flatten().find_map(|root| {
            request.readings().find_map(|(parts, verb)| {
                let leaf = root.find(parts, verb)?;
                Some(bind(&leaf.value, &leaf.template, parts, spec))
            })
        })
    }

    /// Number of bindings inserted.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn root(&self, method: &str) -> Option<&Node<T>> {
        self.roots.get(method)
    }
}

impl<T> Node<T> {
    /// The node reached by `segments`, creating nodes on the way; a final `**` stays at the
    /// node before it (tails live in `Node::tails`).
    fn descend_creating(&mut self, segments: &[Segment]) -> &mut Node<T> {
        match segments.split_first() {
            None | Some((Segment::Tail, _)) => self,
            Some((Segment::Literal(text), rest)) => {
                let child = self.literals.entry(text.as_str().into()).or_default();
                child.descend_creating(rest)
            }
            Some((Segment::Wildcard, rest)) => {
                let child = self.wildcard.get_or_insert_with(Box::default);
                child.descend_creating(rest)
            }
        }
    }

    /// The most specific leaf matching `parts` and `verb` below this node.
    fn find(&self, parts: &[&str], verb: Option<&str>) -> Option<&Leaf<T>> {
        let Some((first, rest)) = parts.split_first() else {
            return with_verb(&self.ends, verb).or_else(|| with_verb(&self.tails, verb));
        };
        let literal = || self.literals.get(*first)?.find(rest, verb);
        // `*` needs a non-empty segment: `{id}` never binds "".
        let wildcard = || match (first.is_empty(), &self.wildcard) {
            (false, Some(child)) => child.find(rest, verb),
            _ => None,
        };
        literal()
            .or_else(wildcard)
            .or_else(|| with_verb(&self.tails, verb))
    }
}

fn with_verb<'a, T>(leaves: &'a [Leaf<T>], verb: Option<&str>) -> Option<&'a Leaf<T>> {
    leaves.iter().find(|leaf| leaf.template.verb() == verb)
}

/// An HTTP method is a token (RFC 9110); `*` means any method.
fn check_method(method: &str) -> Result<(), String> {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if method.is_empty() || !method.chars().all(is_token_char) {
        return Err(format!("invalid HTTP method {method:?}"));
    }
    Ok(())
}
