use super::*;

fn section() -> CorsInput {
    CorsInput {
        allow_origins: vec!["http://127.0.0.1:8088".into()],
        allow_origin_patterns: vec!["https://*.example.com".into()],
        allow_credentials: true,
        ..CorsInput::default()
    }
}

#[test]
fn defaults_cover_json_bearer_tokens_and_grpc_web() {
    let c = Cors::compile(&section()).unwrap();
    assert_eq!(c.allow_methods, DEFAULT_ALLOW_METHODS.map(String::from));
    for h in [
        "authorization",
        "content-type",
        "x-grpc-web",
        "x-user-agent",
    ] {
        assert!(c.allow_headers.iter().any(|x| x == h), "{h}");
    }
    for h in [
        "grpc-status",
        "grpc-message",
        "x-request-id",
        "www-authenticate",
    ] {
        assert!(c.expose_headers.iter().any(|x| x == h), "{h}");
    }
}

#[test]
fn exposed_headers_add_to_the_ones_clients_always_need() {
    let mut s = section();
    s.expose_headers = vec!["X-Page-Token".into(), "grpc-status".into()];
    let c = Cors::compile(&s).unwrap();
    assert_eq!(c.expose_headers.len(), ALWAYS_EXPOSED.len() + 1);
    assert_eq!(
        c.expose_headers.last().map(String::as_str),
        Some("x-page-token")
    );
}

#[test]
fn patterns_match_one_label_and_nothing_else() {
    let c = Cors::compile(&section()).unwrap();
    assert!(c.allows_origin("https://app.example.com"));
    assert!(c.allows_origin("http://127.0.0.1:8088"));
    assert!(!c.allows_origin("https://example.com"));
    assert!(!c.allows_origin("https://evil.com/.example.com"));
    assert!(!c.allows_origin("https://app.example.com.evil.net"));
    assert!(!c.allows_origin("http://app.example.com"));
    assert!(!c.allows_origin("http://127.0.0.1:8089"));
    assert_eq!(
        pattern_regex("https://*.example.com"),
        r"^https://[a-z0-9-]+\.example\.com$"
    );
}

#[test]
fn bad_origins_name_their_field() {
    for (origins, patterns, field) in [
        (vec!["127.0.0.1:8088"], vec![], "cors.allow_origins[0]"),
        (vec!["http://a.com/"], vec![], "cors.allow_origins[0]"),
        (vec!["http://*.a.com"], vec![], "cors.allow_origins[0]"),
        (vec!["http://A.com"], vec![], "cors.allow_origins[0]"),
        (
            vec![],
            vec!["https://a.com"],
            "cors.allow_origin_patterns[0]",
        ),
    ] {
        let s = CorsInput {
            allow_origins: origins.into_iter().map(String::from).collect(),
            allow_origin_patterns: patterns.into_iter().map(String::from).collect(),
            ..CorsInput::default()
        };
        let err = Cors::compile(&s).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
    let s = CorsInput {
        allow_methods: vec!["get".into()],
        ..CorsInput::default()
    };
    assert_eq!(
        Cors::compile(&s).unwrap_err().field,
        "cors.allow_methods[0]"
    );
}

#[test]
fn a_policy_narrows_and_cannot_widen() {
    let c = Cors::compile(&section()).unwrap();
    let narrow = PolicyCorsInput {
        allow_origins: Some(vec!["https://admin.example.com".into()]),
        allow_methods: Some(vec!["GET".into()]),
        allow_credentials: Some(false),
        ..PolicyCorsInput::default()
    };
    let PolicyCors::On(t) = c.tighten(&narrow, "policies.p.cors").unwrap() else {
        panic!("expected a policy");
    };
    assert_eq!(
        t.origins,
        vec![Origin::Exact("https://admin.example.com".into())]
    );
    assert_eq!(t.allow_methods, vec!["GET".to_string()]);
    assert!(!t.allow_credentials);

    let wider = PolicyCorsInput {
        allow_origins: Some(vec!["https://evil.net".into()]),
        ..PolicyCorsInput::default()
    };
    let err = c.tighten(&wider, "policies.p.cors").unwrap_err();
    assert_eq!(err.field, "policies.p.cors.allow_origins[0]");
    let more_methods = PolicyCorsInput {
        allow_methods: Some(vec!["OPTIONS".into()]),
        ..PolicyCorsInput::default()
    };
    let err = c.tighten(&more_methods, "policies.p.cors").unwrap_err();
    assert_eq!(err.field, "policies.p.cors.allow_methods");
    let off = PolicyCorsInput {
        enabled: Some(false),
        ..PolicyCorsInput::default()
    };
    assert_eq!(c.tighten(&off, "x").unwrap(), PolicyCors::Off);
}

#[test]
fn credentials_cannot_be_granted_by_a_policy() {
    let mut s = section();
    s.allow_credentials = false;
    let c = Cors::compile(&s).unwrap();
    let p = PolicyCorsInput {
        allow_credentials: Some(true),
        ..PolicyCorsInput::default()
    };
    assert_eq!(
        c.tighten(&p, "policies.p.cors").unwrap_err().field,
        "policies.p.cors.allow_credentials"
    );
}

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_preflight_is_options_with_origin_and_requested_method() {
    let pre = h(&[
        ("origin", "http://a"),
        ("access-control-request-method", "POST"),
    ]);
    assert!(is_preflight("OPTIONS", &pre));
    assert!(!is_preflight("POST", &pre));
    assert!(!is_preflight("OPTIONS", &h(&[("origin", "http://a")])));
}

#[test]
fn grpc_web_is_told_from_the_marker_then_the_client_header() {
    assert!(is_grpc_web(&h(&[(
        CLIENT_CONTENT_TYPE_HEADER,
        "application/grpc-web-text"
    )])));
    assert!(is_grpc_web(&h(&[(
        CLIENT_CONTENT_TYPE_HEADER,
        "application/grpc-web+proto"
    )])));
    // The marker wins over a client's claim: a native gRPC client sending x-grpc-web.
    assert!(!is_grpc_web(&h(&[
        (CLIENT_CONTENT_TYPE_HEADER, "application/grpc"),
        ("x-grpc-web", "1")
    ])));
    assert!(is_grpc_web(&h(&[("x-grpc-web", "1")])));
    assert!(!is_grpc_web(&h(&[("content-type", "application/grpc")])));
}
