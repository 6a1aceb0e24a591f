//! Fuzz entry points: one function per target, each feeding arbitrary bytes to one public entry
//! of the core. Shared by the cargo-fuzz targets (`tests/fuzz/fuzz_targets/*`) and by the main
//! crate's regression test (`tests/fuzz_regressions.rs`), which replays the committed corpus and
//! crash reproducers through exactly these functions.
//!
//! A target "fails" only by panicking (or by the sanitizer finding memory errors); every
//! `Err` is an accepted answer to bad input.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use meshgate::auth::input::{AuthInput, AuthLimits};
use meshgate::auth::{authenticate, AuthConfig, AuthState, Request};
use meshgate::config::{compile_json, Config, OpKind};
use meshgate::operation::{parse_query_with, split_path, PathTemplate, UrlUnescapeSpec};
use meshgate::transcode::{
    build_request, render_response, BodyKind, FrameDecoder, RequestOptions, ResponseFormat,
};

#[path = "crypto_diff.rs"]
mod crypto_diff;
pub use crypto_diff::crypto_diff;

#[path = "more.rs"]
mod more;
pub use more::{discovery, filter, filter_outcome, grpc_status, jwks, stream_render, traceparent};

/// The targets, by name (the file names under `fuzz_targets/` and `corpus/`).
pub const TARGETS: [&str; 13] = [
    "json_to_proto",
    "proto_to_json",
    "path_query",
    "jwt",
    "grpc_frames",
    "config",
    "crypto_diff",
    "filter",
    "jwks",
    "discovery",
    "stream_render",
    "grpc_status",
    "traceparent",
];

/// Run one target by name; `false` for an unknown name.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "json_to_proto" => json_to_proto(data),
        "proto_to_json" => proto_to_json(data),
        "path_query" => path_query(data),
        "jwt" => jwt(data),
        "grpc_frames" => grpc_frames(data),
        "config" => config(data),
        "crypto_diff" => crypto_diff(data),
        "filter" => filter(data),
        "jwks" => jwks(data),
        "discovery" => discovery(data),
        "stream_render" => stream_render(data),
        "grpc_status" => grpc_status(data),
        "traceparent" => traceparent(data),
        _ => return false,
    }
    true
}

/// The repository root: the first ancestor of this crate's manifest directory holding
/// `envoy/gateway.yaml` (the fuzz crate lives two levels below it).
pub fn repo_root() -> PathBuf {
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start
        .ancestors()
        .take(4)
        .find(|p| p.join("envoy/gateway.yaml").is_file())
        .map_or_else(|| start.to_path_buf(), Path::to_path_buf)
}

/// The demo configuration (`envoy/gateway.yaml`), compiled once per process.
fn demo() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let path = repo_root().join("envoy/gateway.yaml");
        let json = match meshgate::cli::compile_file(&path) {
            Ok(json) => json,
            Err(e) => panic!("the demo configuration does not compile: {e}"),
        };
        match compile_json(json.as_bytes()) {
            Ok(config) => config,
            Err(e) => panic!("the demo configuration is invalid: {e}"),
        }
    })
}

/// Every (operation, binding) of the demo API, in a stable order.
fn bindings() -> Vec<&'static meshgate::config::Binding> {
    demo()
        .operations
        .iter()
        .flat_map(|op| match &op.kind {
            OpKind::Grpc { bindings, .. } => bindings.iter().collect::<Vec<_>>(),
            OpKind::Rest => Vec::new(),
        })
        .collect()
}

/// `METHOD template` of every binding, in the order the targets' selector byte picks them
/// (for the seed corpus and its check).
pub fn binding_names() -> Vec<String> {
    bindings()
        .iter()
        .map(|b| format!("{} {}", b.method, b.template))
        .collect()
}

/// The [`json_to_proto`] input's verdict: `true` when the body builds a request (the valid
/// seeds must).
pub fn json_to_proto_accepts(data: &[u8]) -> bool {
    let Some((&selector, body)) = data.split_first() else {
        return false;
    };
    let all = bindings();
    let Some(binding) = all.get(usize::from(selector & 0x7f) % all.len().max(1)) else {
        return false;
    };
    let kind = if selector & 0x80 == 0 {
        BodyKind::Json
    } else {
        BodyKind::Protobuf
    };
    let opts = RequestOptions {
        max_depth: 64,
        ..RequestOptions::default()
    };
    build_request(&binding.request, &[], &[], body, kind, &opts).is_ok()
}

/// The [`proto_to_json`] input's verdict: `true` when the reply renders.
pub fn proto_to_json_accepts(data: &[u8]) -> bool {
    let Some((&selector, message)) = data.split_first() else {
        return false;
    };
    let all = bindings();
    let Some(binding) = all.get(usize::from(selector & 0x7f) % all.len().max(1)) else {
        return false;
    };
    let format = if selector & 0x80 == 0 {
        ResponseFormat::Json
    } else {
        ResponseFormat::Protobuf
    };
    let print = &demo().transcoding.print_options;
    render_response(&binding.response, message, format, print).is_ok()
}

/// First byte: which binding (and, bit 7, protobuf instead of JSON); the rest: the body.
pub fn json_to_proto(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let all = bindings();
    let Some(binding) = all.get(usize::from(selector & 0x7f) % all.len().max(1)) else {
        return;
    };
    let kind = if selector & 0x80 == 0 {
        BodyKind::Json
    } else {
        BodyKind::Protobuf
    };
    let opts = RequestOptions {
        max_depth: 64,
        ..RequestOptions::default()
    };
    let _ = build_request(&binding.request, &[], &[], body, kind, &opts);
}

/// First byte: which binding's reply type (bit 7: protobuf output); the rest: the reply.
pub fn proto_to_json(data: &[u8]) {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    let all = bindings();
    let Some(binding) = all.get(usize::from(selector & 0x7f) % all.len().max(1)) else {
        return;
    };
    let format = if selector & 0x80 == 0 {
        ResponseFormat::Json
    } else {
        ResponseFormat::Protobuf
    };
    let print = &demo().transcoding.print_options;
    let _ = render_response(&binding.response, message, format, print);
}

/// Text: `METHOD path?query` (the method is the first word). Exercises the query parser, the
/// template parser (the path is parsed as a template too), the matcher, and the whole request
/// build for what matched.
pub fn path_query(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (method, target) = text.split_once(' ').unwrap_or(("GET", &text));
    let _ = PathTemplate::parse(target);
    let (path, query) = split_path(target);
    let plus = data.first().is_some_and(|b| b & 1 == 1);
    let query = query.map(|q| parse_query_with(q, plus));
    for spec in [
        UrlUnescapeSpec::AllCharactersExceptReserved,
        UrlUnescapeSpec::AllCharactersExceptSlash,
        UrlUnescapeSpec::AllCharacters,
    ] {
        let config = demo();
        let Some(Ok(found)) = config.http.lookup(method, path, spec) else {
            continue;
        };
        let Some(op) = config.operations.get(found.value.op) else {
            continue;
        };
        let OpKind::Grpc { bindings, .. } = &op.kind else {
            continue;
        };
        let Some(binding) = bindings.get(found.value.binding) else {
            continue;
        };
        let params = match &query {
            Some(Ok(params)) => params.clone(),
            _ => Vec::new(),
        };
        let _ = build_request(
            &binding.request,
            &found.bindings,
            &params,
            b"",
            BodyKind::Json,
            &RequestOptions::default(),
        );
    }
}

/// The HMAC secret of the fuzz JWKS (kid `hmac`): lets [`jwt`] sign what it is given, so that
/// the claim checks are reached, not only the signature check.
const HMAC_SECRET: &[u8] = b"meshgate-fuzz-hmac-secret-0123456789abcdef-0123456789abcdef-xx";

/// Verification time: fixed, so that runs are reproducible.
fn fuzz_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn auth() -> &'static AuthConfig {
    static AUTH: OnceLock<AuthConfig> = OnceLock::new();
    AUTH.get_or_init(|| {
        let jwks = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": URL_SAFE_NO_PAD.encode(HMAC_SECRET)}
        ]});
        let input = serde_json::json!({
            "providers": [{
                "name": "main", "issuer": "https://issuer.test", "audiences": ["api"],
                "jwks": {"inline": jwks.to_string()},
                "claim_to_headers": [{"claim": "sub", "header": "x-sub"},
                                     {"claim": "realm.roles", "header": "x-roles"}],
                "forward_payload_header": "x-payload"
            }],
            "default": {"provider": "main"}
        });
        let built = serde_json::from_value::<AuthInput>(input)
            .map_err(|e| e.to_string())
            .and_then(|i| {
                AuthConfig::compile(&i, &AuthLimits::default()).map_err(|e| e.to_string())
            });
        match built {
            Ok(cfg) => cfg,
            Err(e) => panic!("the fuzz auth configuration is invalid: {e}"),
        }
    })
}

/// First byte even: the rest is the bearer token as is. Odd: the rest is `header.payload`
/// (JSON, `\n`-separated), base64url-encoded and HS256-signed with the fuzz key.
pub fn jwt(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let token = if selector & 1 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        sign_hs256(rest)
    };
    let cfg = auth();
    let mut state = AuthState::new(cfg);
    let headers = vec![
        (":path".to_string(), "/v1/payments/1".to_string()),
        ("authorization".to_string(), format!("Bearer {token}")),
    ];
    let request = Request {
        headers: &headers,
        query: None,
        client_cert: None,
    };
    let _ = authenticate(
        cfg,
        &mut state,
        cfg.default_requirement(),
        &request,
        fuzz_now(),
    );
}

fn sign_hs256(parts: &[u8]) -> String {
    use jwt_compact::alg::{Hs256, Hs256Key};
    use jwt_compact::{Algorithm, AlgorithmSignature};
    let text = String::from_utf8_lossy(parts);
    let (header, payload) = text.split_once('\n').unwrap_or((&text, "{}"));
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = Hs256.sign(&Hs256Key::new(HMAC_SECRET), signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig.as_bytes()))
}

/// First byte: the limit (x 16 bytes) and the chunk size; the rest: the byte stream, pushed in
/// chunks as Envoy would deliver it, messages drained after each chunk.
pub fn grpc_frames(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let max = usize::from(selector) * 16;
    let chunk = usize::from(selector % 13) + 1;
    let mut decoder = FrameDecoder::new(max);
    for part in stream.chunks(chunk) {
        decoder.push(part);
        // Each message takes at least its 5-byte prefix, so this bounds the drain loop.
        for _ in 0..=stream.len() {
            match decoder.next_message() {
                Ok(Some(message)) => assert!(message.len() <= max, "message above the limit"),
                Ok(None) | Err(_) => break,
            }
        }
    }
    let _ = decoder.finish();
}

/// The bytes as the filter's JSON configuration.
pub fn config(data: &[u8]) {
    let _ = compile_json(data);
}

/// The [`config`] input's verdict: `true` when the configuration compiles.
pub fn config_accepts(data: &[u8]) -> bool {
    compile_json(data).is_ok()
}
