//! A request path taken apart for matching: segments, and the custom verb it may end with.
//!
//! Rules (Envoy's transcoder, except where noted):
//! - the path must start with `/` (anything else, like `OPTIONS *`, matches nothing);
//! - trailing empty segments are dropped, so `/v1/payments/` is `/v1/payments` (it never
//!   matches `/v1/payments/{id}`: a variable does not bind an empty segment);
//! - empty segments inside the path (`/v1//payments`) are kept and match only `**`;
//! - a `:` after the last `/` may start a custom verb: `/v1/payments/p1:cancel` is tried first
//!   as segments `[v1, payments, p1]` with verb `cancel`, then (if nothing matched) as plain
//!   segments with `p1:cancel` last, which is what the http.proto grammar says for templates
//!   without a verb. Envoy tries only the first reading when `cancel` is a configured verb.

/// The readings of one request path to try, in order.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestPath<'p> {
    /// Segments with the verb split off, and the verb; `None` when there is no `:` to split.
    pub with_verb: Option<(Vec<&'p str>, &'p str)>,
    /// Segments as they are, `:` included.
    pub plain: Vec<&'p str>,
}

impl<'p> RequestPath<'p> {
    /// `path` is the `:path` without its query string.
    pub fn split(path: &'p str) -> Option<Self> {
        let body = path.strip_prefix('/')?;
        let mut plain: Vec<&str> = body.split('/').collect();
        drop_trailing_empty(&mut plain);
        let with_verb = split_verb(&plain);
        Some(RequestPath { with_verb, plain })
    }

    /// The readings in the order to try them.
    pub fn readings(&self) -> impl Iterator<Item = (&[&'p str], Option<&'p str>)> {
        let verb_reading = self
            .with_verb
            .as_ref()
            .map(|(parts, verb)| (parts.as_slice(), Some(*verb)));
        verb_reading
            .into_iter()
            .chain(std::iter::once((self.plain.as_slice(), None)))
    }
}

fn drop_trailing_empty(parts: &mut Vec<&str>) {
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
}

fn split_verb<'p>(plain: &[&'p str]) -> Option<(Vec<&'p str>, &'p str)> {
    let (last, before) = plain.split_last()?;
    let (stem, verb) = last.rsplit_once(':')?;
    if verb.is_empty() {
        return None;
    }
    let mut parts = before.to_vec();
    parts.push(stem);
    drop_trailing_empty(&mut parts);
    Some((parts, verb))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readings(path: &str) -> Vec<(Vec<&str>, Option<&str>)> {
        let parsed = RequestPath::split(path);
        let parsed = parsed.as_ref();
        parsed
            .map(|p| p.readings().map(|(s, v)| (s.to_vec(), v)).collect())
            .unwrap_or_default()
    }

    #[test]
    fn plain_path_has_one_reading() {
        assert_eq!(
            readings("/v1/payments"),
            vec![(vec!["v1", "payments"], None)]
        );
    }

    #[test]
    fn root_has_no_segments() {
        assert_eq!(readings("/"), vec![(vec![], None)]);
    }

    #[test]
    fn trailing_slashes_are_dropped_but_inner_empty_segments_are_kept() {
        assert_eq!(
            readings("/v1/payments//"),
            vec![(vec!["v1", "payments"], None)]
        );
        assert_eq!(
            readings("/v1//payments"),
            vec![(vec!["v1", "", "payments"], None)]
        );
    }

    #[test]
    fn verb_reading_comes_first() {
        assert_eq!(
            readings("/v1/payments/p1:cancel"),
            vec![
                (vec!["v1", "payments", "p1"], Some("cancel")),
                (vec!["v1", "payments", "p1:cancel"], None),
            ]
        );
    }

    #[test]
    fn only_the_last_colon_of_the_last_segment_is_a_verb() {
        let r = readings("/v1/a:b/c:d:e");
        assert_eq!(r.first(), Some(&(vec!["v1", "a:b", "c:d"], Some("e"))));
        assert_eq!(readings("/v1/a:b/c"), vec![(vec!["v1", "a:b", "c"], None)]);
    }

    #[test]
    fn empty_verb_is_not_a_verb() {
        assert_eq!(readings("/v1/x:"), vec![(vec!["v1", "x:"], None)]);
    }

    #[test]
    fn path_without_leading_slash_matches_nothing() {
        assert_eq!(RequestPath::split("*"), None);
        assert_eq!(RequestPath::split(""), None);
        assert_eq!(RequestPath::split("v1/x"), None);
    }
}
