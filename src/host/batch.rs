//! Several scalar properties in one host call: Envoy's `expr_evaluate` foreign function
//! evaluates a CEL list of them (`[has(request.duration) ? request.duration : '', ...]`; a
//! longer path has each of its steps guarded: `has(a.b) && has(a.b.c) ? a.b.c : ''`) and
//! returns it serialized as a Proxy-Wasm pair list (count, sizes, then each element in the
//! bytes `get_property` would have returned, with an empty partner). [`decode`] takes it
//! apart. An absent property is the empty string (Envoy serializes no null), so in a batch an
//! absent and an empty value both read as `None`.
//!
//! Pure functions, tested on the host; `crate::wasm` does the calls and falls back to one read
//! per path whenever Envoy has no CEL (`expr_create` fails) or one evaluation fails.

/// The CEL list expression for `paths`; `None` when a path is not a chain of identifiers (no
/// batch: read those one by one).
pub fn expression(paths: &[&[&str]]) -> Option<String> {
    let mut out = String::from("[");
    for (i, path) in paths.iter().enumerate() {
        if path.len() < 2 || !path.iter().all(|s| is_identifier(s)) {
            return None;
        }
        let select = path.join(".");
        if i > 0 {
            out.push_str(", ");
        }
        // Each step of a longer path guarded too (a map without the key is an error in CEL,
        // which would fail the whole list; `&&` stops at the first false).
        let guards: Vec<String> = (2..=path.len())
            .filter_map(|n| path.get(..n))
            .map(|prefix| format!("has({})", prefix.join(".")))
            .collect();
        out.push_str(&format!("{} ? {select} : ''", guards.join(" && ")));
    }
    out.push(']');
    Some(out)
}

fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Envoy's serialized list of `expected` values -> each as a property read returns it (`None`
/// for an empty one). `None` when the bytes are not such a list.
pub fn decode(bytes: &[u8], expected: usize) -> Option<Vec<Option<Vec<u8>>>> {
    let u32_at = |at: usize| -> Option<usize> {
        let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(b)).ok()
    };
    let count = u32_at(0)?;
    if count != expected {
        return None;
    }
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let (len, partner) = (u32_at(4 + i * 8)?, u32_at(8 + i * 8)?);
        let value = bytes.get(data..data.checked_add(len)?)?;
        // Each element and its (empty) partner end with a NUL.
        data = data
            .checked_add(len)?
            .checked_add(partner)?
            .checked_add(2)?;
        out.push((!value.is_empty()).then(|| value.to_vec()));
    }
    (data == bytes.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Envoy's `marshalPairs` of `values`, each with an empty partner.
    fn pairs(values: &[&[u8]]) -> Vec<u8> {
        let mut out = (values.len() as u32).to_le_bytes().to_vec();
        for v in values {
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
        }
        for v in values {
            out.extend_from_slice(v);
            out.extend_from_slice(&[0, 0]);
        }
        out
    }

    #[test]
    fn the_expression_guards_each_path_with_has() {
        let e = expression(&[&["request", "duration"], &["source", "address"]]).unwrap();
        assert_eq!(
            e,
            "[has(request.duration) ? request.duration : '', \
             has(source.address) ? source.address : '']"
        );
    }

    #[test]
    fn each_step_of_a_longer_path_is_guarded() {
        let e = expression(&[
            &[
                "xds",
                "route_metadata",
                "filter_metadata",
                "meshgate",
                "policy",
            ],
            &["connection", "mtls"],
        ])
        .unwrap();
        assert_eq!(
            e,
            "[has(xds.route_metadata) && has(xds.route_metadata.filter_metadata) && \
             has(xds.route_metadata.filter_metadata.meshgate) && \
             has(xds.route_metadata.filter_metadata.meshgate.policy) ? \
             xds.route_metadata.filter_metadata.meshgate.policy : '', \
             has(connection.mtls) ? connection.mtls : '']"
        );
    }

    #[test]
    fn paths_that_are_not_identifier_chains_are_not_batched() {
        assert!(expression(&[&["xds", "route_metadata", "filter-metadata"]]).is_none());
        assert!(expression(&[&["request"]]).is_none());
        assert!(expression(&[&["a", "b) || true"]]).is_none());
    }

    #[test]
    fn a_list_decodes_to_what_property_reads_return() {
        let code = 200i64.to_le_bytes();
        let list = pairs(&[&code, b"10.0.0.7:5555", b"", &[1]]);
        let got = decode(&list, 4).unwrap();
        assert_eq!(got[0].as_deref(), Some(&code[..]));
        assert_eq!(got[1].as_deref(), Some(&b"10.0.0.7:5555"[..]));
        assert_eq!(got[2], None, "absent (the empty string)");
        assert_eq!(got[3], Some(vec![1]));
    }

    #[test]
    fn a_list_of_the_wrong_length_or_shape_is_refused() {
        let list = pairs(&[b"abc", b"de"]);
        assert!(decode(&list, 3).is_none(), "another count");
        assert!(decode(&list[..list.len() - 1], 2).is_none(), "truncated");
        let mut longer = list.clone();
        longer.push(0);
        assert!(decode(&longer, 2).is_none(), "trailing bytes");
        assert!(decode(&[1, 0], 1).is_none(), "no count");
        let mut huge = pairs(&[b"abc"]);
        huge[4] = 0xff;
        assert!(decode(&huge, 1).is_none(), "an element past the end");
    }
}
