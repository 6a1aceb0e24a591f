//! Behaviour of the compiled matcher as the gateway uses it: the demo payments API, precedence,
//! verbs, duplicates, 1000 operations, and hostile paths.

use super::*;

const DEFAULT: UrlUnescapeSpec = UrlUnescapeSpec::AllCharactersExceptReserved;

/// The `google.api.http` rules of proto/meshgate/demo/v1/payments.proto (with the one
/// additional binding of ListPayments).
const DEMO: &[(&str, &str, &str)] = &[
    ("GET", "/v1/payments/{id}", "GetPayment"),
    ("GET", "/v1/payments", "ListPayments"),
    ("GET", "/v1/{parent=merchants/*}/payments", "ListPayments"),
    ("POST", "/v1/payments", "CreatePayment"),
    ("PATCH", "/v1/payments/{payment.id}", "UpdatePayment"),
    ("POST", "/v1/payments/{id}:cancel", "CancelPayment"),
    ("DELETE", "/v1/payments/{id}", "DeletePayment"),
    ("GET", "/v1/payments/{id}/status", "GetPaymentStatus"),
    ("GET", "/v1/payments/{id}/receipt", "GetReceipt"),
    (
        "POST",
        "/v1/payments/{payment_id}/attachments",
        "UploadAttachment",
    ),
    (
        "GET",
        "/v1/{parent=merchants/*}/payments:watch",
        "WatchPayments",
    ),
    ("GET", "/v1/documents/{path=**}", "GetDocument"),
    ("GET", "/v1/wallets/{wallet_id}", "GetWallet"),
    ("GET", "/v1/{name=wallets/*/entries/*}", "GetEntry"),
    ("POST", "/v1/wallets/{wallet_id}:topUp", "TopUp"),
];

fn build(rules: &[(&str, &str, &'static str)]) -> Matcher<&'static str> {
    let mut matcher = Matcher::new();
    for (method, template, name) in rules {
        if let Err(e) = matcher.insert(method, template, *name) {
            panic!("{method} {template}: {e}");
        }
    }
    matcher
}

/// (operation, bindings) or a short description of why not.
fn find(
    m: &Matcher<&'static str>,
    method: &str,
    path: &str,
) -> Result<(String, Vec<(String, String)>), String> {
    match m.lookup(method, path, DEFAULT) {
        None => Err("no match".into()),
        Some(Err(bad)) => Err(format!("{}: {bad}", bad.value)),
        Some(Ok(found)) => Ok((found.value.to_string(), found.bindings)),
    }
}

fn ok(name: &str, bindings: &[(&str, &str)]) -> Result<(String, Vec<(String, String)>), String> {
    Ok((
        name.to_string(),
        bindings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ))
}

#[test]
fn demo_api_requests_reach_their_operations() {
    let m = build(DEMO);
    assert_eq!(m.len(), DEMO.len());
    let cases = [
        ("GET", "/v1/payments/p1", ok("GetPayment", &[("id", "p1")])),
        ("GET", "/v1/payments", ok("ListPayments", &[])),
        (
            "GET",
            "/v1/merchants/m1/payments",
            ok("ListPayments", &[("parent", "merchants/m1")]),
        ),
        ("POST", "/v1/payments", ok("CreatePayment", &[])),
        (
            "PATCH",
            "/v1/payments/p1",
            ok("UpdatePayment", &[("payment.id", "p1")]),
        ),
        (
            "POST",
            "/v1/payments/p1:cancel",
            ok("CancelPayment", &[("id", "p1")]),
        ),
        (
            "DELETE",
            "/v1/payments/p1",
            ok("DeletePayment", &[("id", "p1")]),
        ),
        (
            "GET",
            "/v1/payments/p1/status",
            ok("GetPaymentStatus", &[("id", "p1")]),
        ),
        (
            "GET",
            "/v1/payments/p1/receipt",
            ok("GetReceipt", &[("id", "p1")]),
        ),
        (
            "POST",
            "/v1/payments/p1/attachments",
            ok("UploadAttachment", &[("payment_id", "p1")]),
        ),
        (
            "GET",
            "/v1/merchants/m1/payments:watch",
            ok("WatchPayments", &[("parent", "merchants/m1")]),
        ),
        (
            "GET",
            "/v1/documents/a/b/c.txt",
            ok("GetDocument", &[("path", "a/b/c.txt")]),
        ),
        (
            "GET",
            "/v1/wallets/w1",
            ok("GetWallet", &[("wallet_id", "w1")]),
        ),
        (
            "GET",
            "/v1/wallets/w1/entries/e1",
            ok("GetEntry", &[("name", "wallets/w1/entries/e1")]),
        ),
        (
            "POST",
            "/v1/wallets/w1:topUp",
            ok("TopUp", &[("wallet_id", "w1")]),
        ),
    ];
    for (method, path, expected) in cases {
        assert_eq!(find(&m, method, path), expected, "{method} {path}");
    }
}

#[test]
fn wrong_method_or_unknown_path_matches_nothing() {
    let m = build(DEMO);
    for (method, path) in [
        ("PUT", "/v1/payments/p1"),
        ("POST", "/v1/payments/p1"),
        ("GET", "/v1/payments/p1/unknown"),
        ("GET", "/v2/payments"),
        ("GET", "/v1/merchants/payments"),
        ("GET", "/v1/wallets/w1/entries"),
        ("GET", "/"),
        ("get", "/v1/payments"),
    ] {
        assert_eq!(
            find(&m, method, path),
            Err("no match".into()),
            "{method} {path}"
        );
    }
}

#[test]
fn verb_is_needed_for_a_verb_route() {
    let m = build(DEMO);
    assert_eq!(
        find(&m, "POST", "/v1/payments/p1:refund"),
        Err("no match".into())
    );
    assert_eq!(
        find(&m, "POST", "/v1/wallets/w1:cancel"),
        Err("no match".into())
    );
}

#[test]
fn colon_in_last_segment_is_literal_for_templates_without_verb() {
    let m = build(DEMO);
    assert_eq!(
        find(&m, "GET", "/v1/payments/p1:x"),
        ok("GetPayment", &[("id", "p1:x")])
    );
    // `cancel` is a verb of POST only: for GET the segment is an id like any other.
    assert_eq!(
        find(&m, "GET", "/v1/payments/p1:cancel"),
        ok("GetPayment", &[("id", "p1:cancel")])
    );
}

#[test]
fn verb_route_wins_over_plain_route_for_the_same_method() {
    let m = build(&[
        ("POST", "/v1/{name=**}", "Plain"),
        ("POST", "/v1/payments/{id}:cancel", "Cancel"),
    ]);
    assert_eq!(
        find(&m, "POST", "/v1/payments/p1:cancel"),
        ok("Cancel", &[("id", "p1")])
    );
    assert_eq!(
        find(&m, "POST", "/v1/payments/p1:other"),
        ok("Plain", &[("name", "payments/p1:other")])
    );
}

#[test]
fn verb_after_tail_variable() {
    let m = build(&[("GET", "/v1/{name=files/**}:download", "Download")]);
    assert_eq!(
        find(&m, "GET", "/v1/files/a/b:download"),
        ok("Download", &[("name", "files/a/b")])
    );
    assert_eq!(
        find(&m, "GET", "/v1/files:download"),
        ok("Download", &[("name", "files")])
    );
    assert_eq!(find(&m, "GET", "/v1/files/a/b"), Err("no match".into()));
}

#[test]
fn literal_beats_wildcard_beats_tail_whatever_the_insertion_order() {
    let rules = [
        ("GET", "/v1/{rest=**}", "Tail"),
        ("GET", "/v1/{id}", "Wildcard"),
        ("GET", "/v1/special", "Literal"),
    ];
    let mut reversed = rules;
    reversed.reverse();
    for m in [build(&rules), build(&reversed)] {
        assert_eq!(find(&m, "GET", "/v1/special"), ok("Literal", &[]));
        assert_eq!(
            find(&m, "GET", "/v1/other"),
            ok("Wildcard", &[("id", "other")])
        );
        assert_eq!(find(&m, "GET", "/v1/a/b"), ok("Tail", &[("rest", "a/b")]));
        assert_eq!(find(&m, "GET", "/v1"), ok("Tail", &[("rest", "")]));
    }
}

#[test]
fn a_dead_end_literal_branch_backtracks_to_the_wildcard() {
    let m = build(&[("GET", "/v1/x/{id}/a", "XA"), ("GET", "/v1/{p}/y/b", "PB")]);
    assert_eq!(find(&m, "GET", "/v1/x/y/b"), ok("PB", &[("p", "x")]));
    assert_eq!(find(&m, "GET", "/v1/x/y/a"), ok("XA", &[("id", "y")]));
}

#[test]
fn trailing_slash_is_ignored_and_never_binds_an_empty_variable() {
    let m = build(DEMO);
    assert_eq!(find(&m, "GET", "/v1/payments/"), ok("ListPayments", &[]));
    assert_eq!(
        find(&m, "GET", "/v1/payments/p1/"),
        ok("GetPayment", &[("id", "p1")])
    );
    assert_eq!(find(&m, "DELETE", "/v1/payments/"), Err("no match".into()));
}

#[test]
fn empty_inner_segments_match_only_a_tail() {
    let m = build(DEMO);
    assert_eq!(find(&m, "GET", "/v1//payments"), Err("no match".into()));
    assert_eq!(
        find(&m, "GET", "/v1/payments//status"),
        Err("no match".into())
    );
    assert_eq!(
        find(&m, "GET", "/v1/documents/a//b"),
        ok("GetDocument", &[("path", "a//b")])
    );
}

#[test]
fn any_method_routes_serve_every_method_after_specific_ones() {
    let mut rules = DEMO.to_vec();
    rules.push(("*", "/legacy/{rest=**}", "Legacy"));
    rules.push(("*", "/v1/payments/{id}", "AnyPayment"));
    let m = build(&rules);
    assert_eq!(
        find(&m, "OPTIONS", "/legacy/a/b"),
        ok("Legacy", &[("rest", "a/b")])
    );
    assert_eq!(find(&m, "GET", "/legacy"), ok("Legacy", &[("rest", "")]));
    assert_eq!(
        find(&m, "GET", "/v1/payments/p1"),
        ok("GetPayment", &[("id", "p1")])
    );
    assert_eq!(
        find(&m, "PUT", "/v1/payments/p1"),
        ok("AnyPayment", &[("id", "p1")])
    );
}

#[test]
fn root_template_matches_the_root_path() {
    let m = build(&[("GET", "/", "Root")]);
    assert_eq!(find(&m, "GET", "/"), ok("Root", &[]));
    assert_eq!(find(&m, "GET", "//"), ok("Root", &[]));
    assert_eq!(find(&m, "GET", "/x"), Err("no match".into()));
}

#[test]
fn identical_bindings_are_refused_naming_both() {
    let mut m = build(DEMO);
    let e = m
        .insert("GET", "/v1/payments/{payment_id}", "Other")
        .err()
        .unwrap_or_default();
    assert_eq!(
        e,
        "GET \"/v1/payments/{payment_id}\" duplicates GET \"/v1/payments/{id}\" (same method and path pattern)"
    );
    let e = m
        .insert("GET", "/v1/documents/{other=**}", "Other")
        .err()
        .unwrap_or_default();
    assert!(
        e.contains("duplicates GET \"/v1/documents/{path=**}\""),
        "{e}"
    );
    assert_eq!(m.len(), DEMO.len(), "a refused binding is not counted");
    assert_eq!(
        find(&m, "GET", "/v1/payments/p1"),
        ok("GetPayment", &[("id", "p1")])
    );
}

#[test]
fn same_path_with_another_method_or_verb_is_not_a_duplicate() {
    let mut m = build(DEMO);
    assert_eq!(m.insert("PUT", "/v1/payments/{id}", "Replace"), Ok(()));
    assert_eq!(
        m.insert("POST", "/v1/payments/{id}:refund", "Refund"),
        Ok(())
    );
    assert_eq!(m.insert("POST", "/v1/payments/{id}", "PostPayment"), Ok(()));
    assert_eq!(
        find(&m, "POST", "/v1/payments/p1:refund"),
        ok("Refund", &[("id", "p1")])
    );
    assert_eq!(
        find(&m, "POST", "/v1/payments/p1"),
        ok("PostPayment", &[("id", "p1")])
    );
}

#[test]
fn bad_method_or_template_is_refused() {
    let mut m: Matcher<()> = Matcher::new();
    assert!(m
        .insert("", "/v1/x", ())
        .is_err_and(|e| e.contains("invalid HTTP method")));
    assert!(m
        .insert("GE T", "/v1/x", ())
        .is_err_and(|e| e.contains("invalid HTTP method")));
    assert!(m
        .insert("GET", "/v1/{x", ())
        .is_err_and(|e| e.contains("invalid path template")));
    assert!(m.is_empty());
}

#[test]
fn bad_escape_in_a_variable_is_an_error_that_names_the_operation() {
    let m = build(DEMO);
    let result = m.lookup("GET", "/v1/payments/p%zz", DEFAULT);
    match result {
        Some(Err(bad)) => {
            assert_eq!(*bad.value, "GetPayment");
            assert_eq!(bad.field_path, "id");
        }
        other => panic!("expected a bad binding, got {other:?}"),
    }
    // A bad escape in a literal position just fails to match that literal.
    assert_eq!(find(&m, "GET", "/v1/pay%zzments"), Err("no match".into()));
}

#[test]
fn spec_applies_to_multi_segment_variables_only() {
    let m = build(DEMO);
    let lookup = |path, spec| {
        m.lookup("GET", path, spec)
            .and_then(Result::ok)
            .map(|f| f.bindings)
    };
    let doc = |v: &str| Some(vec![("path".to_string(), v.to_string())]);
    assert_eq!(lookup("/v1/documents/a%2Fb%3Fc", DEFAULT), doc("a%2Fb%3Fc"));
    assert_eq!(
        lookup(
            "/v1/documents/a%2Fb%3Fc",
            UrlUnescapeSpec::AllCharactersExceptSlash
        ),
        doc("a%2Fb?c")
    );
    assert_eq!(
        lookup("/v1/documents/a%2Fb%3Fc", UrlUnescapeSpec::AllCharacters),
        doc("a/b?c")
    );
    let id = Some(vec![("id".to_string(), "a/b?c".to_string())]);
    assert_eq!(lookup("/v1/payments/a%2Fb%3Fc", DEFAULT), id);
}

#[test]
fn match_exposes_the_template_that_matched() {
    let m = build(DEMO);
    let found = m
        .lookup("GET", "/v1/merchants/m1/payments", DEFAULT)
        .and_then(Result::ok);
    let template = found.map(|f| f.template.to_string());
    assert_eq!(
        template.as_deref(),
        Some("/v1/{parent=merchants/*}/payments")
    );
}

/// 1000 operations of mixed shapes; each is found from a concrete path, with its bindings.
#[test]
fn a_thousand_operations_are_each_found() {
    let methods = ["GET", "POST", "PATCH", "DELETE"];
    // (method, template, a path it matches, the expected bindings)
    let shape = |i: usize| -> (&str, String, String, Vec<(String, String)>) {
        let method = methods.get(i % 4).copied().unwrap_or("GET");
        let (template, path, bindings) = match i % 5 {
            0 => (
                format!("/v1/svc{i}/items"),
                format!("/v1/svc{i}/items"),
                vec![],
            ),
            1 => (
                format!("/v1/svc{i}/items/{{id}}"),
                format!("/v1/svc{i}/items/x{i}"),
                vec![("id".into(), format!("x{i}"))],
            ),
            2 => (
                format!("/v1/svc{i}/items/{{id}}:run"),
                format!("/v1/svc{i}/items/x{i}:run"),
                vec![("id".into(), format!("x{i}"))],
            ),
            3 => (
                format!("/v{}/{{name=svc{i}/*/parts/*}}", i % 3),
                format!("/v{}/svc{i}/a/parts/b", i % 3),
                vec![("name".into(), format!("svc{i}/a/parts/b"))],
            ),
            _ => (
                format!("/files/svc{i}/{{path=**}}"),
                format!("/files/svc{i}/d/e"),
                vec![("path".into(), "d/e".into())],
            ),
        };
        (method, template, path, bindings)
    };
    let mut m = Matcher::new();
    for i in 0..1000 {
        let (method, template, _, _) = shape(i);
        assert_eq!(m.insert(method, &template, i), Ok(()), "{template}");
    }
    assert_eq!(m.len(), 1000);
    for i in 0..1000 {
        let (method, _, path, bindings) = shape(i);
        let found = m.lookup(method, &path, DEFAULT).and_then(Result::ok);
        assert_eq!(
            found.map(|f| (*f.value, f.bindings)),
            Some((i, bindings)),
            "{method} {path}"
        );
    }
    assert!(m.lookup("GET", "/v1/svc1000/items", DEFAULT).is_none());
}

/// Deterministic pseudo-random paths and templates over a hostile alphabet: nothing panics,
/// and every lookup answer is consistent (a match only for paths that start with '/').
#[test]
fn hostile_paths_and_templates_never_panic() {
    let m = build(DEMO);
    let alphabet: Vec<char> = "/:%{}*=?a1FéZ.".chars().collect();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 12) as usize;
        let text: String = (0..len)
            .filter_map(|_| alphabet.get((next() % alphabet.len() as u64) as usize))
            .collect();
        let answer = m.lookup("GET", &text, DEFAULT);
        assert!(answer.is_none() || text.starts_with('/'), "{text:?}");
        let _ = PathTemplate::parse(&text);
        let _ = parse_query(&text);
        let mut scratch: Matcher<()> = Matcher::new();
        let _ = scratch.insert("GET", &text, ());
        let _ = scratch.lookup("GET", &text, DEFAULT);
    }
}
