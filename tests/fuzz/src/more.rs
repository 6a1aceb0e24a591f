//! Fuzz entry points added for issue 16: the filter driven through a fake proxy with arbitrary
//! callback orders and inputs, the JWKS and OIDC discovery parsers, the stream renderers, gRPC
//! status and trailer parsing, and the trace headers. Like `entry.rs`, a target fails only by
//! panicking (an assertion on an invariant, or a panic inside meshgate).

use std::rc::Rc;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use meshgate::auth::input::{AuthInput, AuthLimits};
use meshgate::auth::keys::{parse_jwks, KeyRules, TableBudget};
use meshgate::auth::{AuthConfig, AuthState, FetchKind};
use meshgate::config::{Config, OpKind};
use meshgate::filter::{Scheduler, Stream, Vm};
use meshgate::host::{Action, Headers};
use meshgate::observe::{parse_cloud_trace, parse_trace, parse_traceparent};
use meshgate::status::BodyFormat;
use meshgate::transcode::{
    encode_frame, error_from_grpc, error_from_http, finish_stream, stream_messages, FrameDecoder,
    GrpcEnd, StreamFormat, StreamWriter,
};

#[path = "fuzz_host.rs"]
mod fuzz_host;
use fuzz_host::{FuzzHost, InCallback};

/// Reads the fuzz input as a script: bytes, and length-prefixed chunks.
struct Script<'a>(&'a [u8]);

impl<'a> Script<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    /// A chunk of at most 255 bytes (its length is the next byte), or the rest when `long`.
    fn chunk(&mut self, long: bool) -> &'a [u8] {
        let n = if long {
            // Two bytes of length: up to 64 KiB.
            let hi = usize::from(self.byte().unwrap_or(0));
            let lo = usize::from(self.byte().unwrap_or(0));
            hi << 8 | lo
        } else {
            usize::from(self.byte().unwrap_or(0))
        };
        let (chunk, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        chunk
    }
    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.chunk(false)).into_owned()
    }
}

fn pick<'a>(list: &[&'a str], b: u8) -> &'a str {
    list.get(usize::from(b) % list.len().max(1))
        .copied()
        .unwrap_or_default()
}

/// The demo gateway (envoy/gateway.yaml) compiled to the filter's JSON configuration, with
/// `edit` applied to its YAML first.
fn gateway_json(edit: &dyn Fn(String) -> String) -> Vec<u8> {
    let root = super::repo_root();
    let yaml = std::fs::read_to_string(root.join("envoy/gateway.yaml")).unwrap_or_default();
    let yaml = edit(yaml.replace(
        "include: [../proto]",
        &format!("include: [{}]", root.join("proto").display()),
    ));
    let dir = std::env::temp_dir().join(format!("meshgate-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("gateway-{}.yaml", yaml.len()));
    let _ = std::fs::write(&path, yaml);
    let json = meshgate::cli::compile_file(&path);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir(&dir);
    match json {
        Ok(json) => json.into_bytes(),
        Err(e) => panic!("the fuzz gateway does not compile: {e}"),
    }
}

/// The three configurations the `filter` target runs: the demo (transcoding through Envoy's
/// router, JSON array streams), the demo with side calls and SSE streams, and the demo with a
/// remote JWKS provider (discovery) required for the wallets.
fn filter_configs() -> &'static [Vec<u8>; 3] {
    static CONFIGS: OnceLock<[Vec<u8>; 3]> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        [
            gateway_json(&|y| y),
            gateway_json(&|y| {
                y.replace(
                    "transcoding:\n",
                    "transcoding:\n  upstream_calls: side_call\n  stream_format: sse\n",
                )
            }),
            gateway_json(&|y| {
                y.replace(
                    "    upstream: wallets\n    auth: none\n",
                    "    upstream: wallets\n    auth: {provider: idp}\n",
                )
                .replace(
                    "  providers:\n",
                    concat!(
                        "  providers:\n",
                        "    - name: idp\n",
                        "      issuer: https://idp.test\n",
                        "      audiences: [api]\n",
                        "      jwks:\n",
                        "        remote: {uri: 'https://idp.test', cluster: idp, discovery: true,",
                        " allow_symmetric_keys: true}\n",
                    ),
                )
            }),
        ]
    })
}

thread_local! {
    /// Each configuration compiled once per thread (compiling the descriptor set takes far
    /// longer than a run): the VMs are reused, their key state reset before every run.
    static VMS: std::cell::RefCell<Vec<Option<Rc<Vm>>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The VM of configuration `which`, with fresh key state (as after `on_configure`).
fn filter_vm(which: usize) -> Rc<Vm> {
    VMS.with(|vms| {
        let mut vms = vms.borrow_mut();
        if vms.len() <= which {
            vms.resize(which + 1, None);
        }
        let slot = vms.get_mut(which);
        let vm = match slot {
            Some(Some(vm)) => vm.clone(),
            Some(slot) => {
                let bytes = filter_configs()
                    .get(which)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let config = match meshgate::config::compile_json(bytes) {
                    Ok(c) => c,
                    Err(e) => panic!("the fuzz configuration was refused: {e}"),
                };
                let vm = Rc::new(Vm::new(config));
                *slot = Some(vm.clone());
                vm
            }
            None => panic!("no slot for configuration {which}"),
        };
        *vm.auth.borrow_mut() = AuthState::new(&vm.config.auth);
        vm
    })
}

/// Requests of the demo API (method, path, content-type), and one path taken from the input.
const REQUESTS: [(&str, &str, &str); 16] = [
    ("GET", "/v1/payments/p-1", ""),
    ("GET", "/v1/payments?page_size=2&states=PENDING", ""),
    ("GET", "/v1/merchants/acme/payments", ""),
    ("POST", "/v1/payments?request_id=r-1", "application/json"),
    ("PATCH", "/v1/payments/p-1", "application/json"),
    ("POST", "/v1/payments/p-1:cancel", "application/x-protobuf"),
    ("DELETE", "/v1/payments/p-1", ""),
    ("GET", "/v1/payments/p-1/status", ""),
    ("GET", "/v1/payments/p-1/receipt?format=text", ""),
    ("POST", "/v1/payments/p-1/attachments", "image/png"),
    ("GET", "/v1/merchants/acme/payments:watch?max_events=3", ""),
    ("GET", "/v1/documents/a/b/c.txt", ""),
    ("GET", "/v1/wallets/w-1", ""),
    ("POST", "/v1/wallets/w-1:topUp", "application/json"),
    (
        "POST",
        "/meshgate.demo.v1.Payments/GetPayment",
        "application/grpc",
    ),
    ("GET", "/v1/wallets/w-1/entries/e-1", ""),
];

const STATUSES: [&str; 8] = ["200", "200", "404", "503", "500", "204", "502", "x"];
const CONTENT_TYPES: [&str; 6] = [
    "application/grpc",
    "application/grpc+proto",
    "text/html",
    "application/json",
    "",
    "application/grpc-web",
];
const GRPC_STATUSES: [&str; 8] = ["0", "0", "5", "14", "3", "16", "", "99999999999"];

fn request_headers(s: &mut Script<'_>) -> Headers {
    let which = s.byte().unwrap_or(0);
    let idx = usize::from(which & 0x0f) % REQUESTS.len();
    let (method, mut path, ctype) = REQUESTS.get(idx).copied().unwrap_or(("GET", "/", ""));
    let own;
    if which & 0x10 != 0 {
        own = s.text();
        path = &own;
    }
    let mut h: Headers = vec![
        (":method".into(), method.into()),
        (":path".into(), path.into()),
        (":authority".into(), "gw.test".into()),
        (":scheme".into(), "http".into()),
    ];
    if !ctype.is_empty() {
        h.push(("content-type".into(), ctype.into()));
    }
    if which & 0x20 != 0 {
        h.push(("accept".into(), "application/x-protobuf".into()));
    }
    if which & 0x40 != 0 {
        h.push(("authorization".into(), format!("Bearer {}", s.text())));
    }
    if which & 0x80 != 0 {
        let name = pick(
            &[
                "traceparent",
                "x-cloud-trace-context",
                "te",
                "x-meshgate-upstream",
                "content-length",
                "grpc-timeout",
            ],
            s.byte().unwrap_or(0),
        );
        h.push((name.into(), s.text()));
    }
    h
}

/// A body chunk: raw bytes, or (flag) the bytes in one gRPC frame.
fn body_chunk(s: &mut Script<'_>, framed: bool) -> Vec<u8> {
    let raw = s.chunk(true);
    if framed {
        encode_frame(raw)
    } else {
        raw.to_vec()
    }
}

/// Checks a local reply: a real status, and a body of its declared kind.
fn check_reply(status: u16, headers: &Headers, body: &[u8]) {
    assert!(
        (200..=599).contains(&status),
        "local reply with status {status}"
    );
    let ctype = meshgate::host::find_header(headers, "content-type").unwrap_or_default();
    if ctype.starts_with("application/json") && status >= 400 {
        let v: serde_json::Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => panic!(
                "error reply is not JSON ({e}): {:?}",
                String::from_utf8_lossy(body)
            ),
        };
        assert!(v.get("code").is_some(), "error reply without a code: {v}");
        assert!(
            v.get("message").is_some(),
            "error reply without a message: {v}"
        );
    }
}

/// The filter through the VM's scheduler (as the wasm glue drives it), one stream (or two,
/// interleaved), with callbacks in the order the input says: request headers and body chunks,
/// response headers, body chunks and trailers, side-call and fetch replies, root ticks, log.
/// Every local reply must be well formed; nothing may panic.
pub fn filter(data: &[u8]) {
    let _ = filter_outcome(data);
}

/// What [`filter`] saw: the local replies' statuses, the HTTP calls made, and the response
/// body the client would get (for the valid seeds' check).
pub struct FilterOutcome {
    pub replies: Vec<u16>,
    pub calls: usize,
    pub response_body: Vec<u8>,
}

pub fn filter_outcome(data: &[u8]) -> Option<FilterOutcome> {
    let mut s = Script(data);
    let first = s.byte()?;
    let mut host = FuzzHost::default();
    let scheduler = Rc::new(Scheduler::new(filter_vm(usize::from(first % 3))));
    // As `on_configure` does: the first key fetches go out at once.
    scheduler.on_tick(&mut host);
    let streams: Vec<Stream> = vec![scheduler.stream(2), scheduler.stream(3)];
    let mut paused_request = [false; 2];
    let mut paused_response = [false; 2];
    let mut steps = 0;
    while let Some(op) = s.byte() {
        steps += 1;
        if steps > 64 {
            break;
        }
        let i = usize::from(op >> 7);
        let Some(stream) = streams.get(i) else {
            continue;
        };
        let eos = op & 0x40 != 0;
        let action = match op & 0x0f {
            0 => {
                host.request_headers = request_headers(&mut s);
                host.callback = InCallback::Other;
                Some(stream.on_request_headers(&mut host, eos))
            }
            1 | 2 => {
                let chunk = body_chunk(&mut s, op & 0x0f == 2);
                if !paused_request.get(i).copied().unwrap_or(false) {
                    host.request_body.clear();
                }
                host.request_body.extend(chunk);
                host.callback = InCallback::RequestBody;
                let n = host.request_body.len();
                let a = stream.on_request_body(&mut host, n, eos);
                if let Some(p) = paused_request.get_mut(i) {
                    *p = a == Action::Pause;
                }
                Some(a)
            }
            3 => {
                let b = s.byte().unwrap_or(0);
                let mut h: Headers = vec![(":status".into(), pick(&STATUSES, b).into())];
                let ctype = pick(&CONTENT_TYPES, b >> 3);
                if !ctype.is_empty() {
                    h.push(("content-type".into(), ctype.into()));
                }
                if b & 0x40 != 0 {
                    h.push(("grpc-status".into(), pick(&GRPC_STATUSES, b).into()));
                    h.push(("grpc-message".into(), s.text()));
                }
                if b & 0x80 != 0 {
                    h.push(("grpc-encoding".into(), "gzip".into()));
                }
                host.response_headers = h;
                host.callback = InCallback::ResponseHeaders;
                Some(stream.on_response_headers(&mut host, eos))
            }
            4 | 5 => {
                let chunk = body_chunk(&mut s, op & 0x0f == 5);
                if !paused_response.get(i).copied().unwrap_or(false) {
                    host.response_body.clear();
                }
                host.response_body.extend(chunk);
                host.callback = InCallback::ResponseBody;
                let n = host.response_body.len();
                let a = stream.on_response_body(&mut host, n, eos);
                if let Some(p) = paused_response.get_mut(i) {
                    *p = a == Action::Pause;
                }
                Some(a)
            }
            6 => {
                let b = s.byte().unwrap_or(0);
                let mut t: Headers = vec![("grpc-status".into(), pick(&GRPC_STATUSES, b).into())];
                if b & 0x08 != 0 {
                    t.push(("grpc-message".into(), s.text()));
                }
                if b & 0x10 != 0 {
                    t.push((
                        "grpc-status-details-bin".into(),
                        STANDARD.encode(s.chunk(false)),
                    ));
                }
                if b & 0x20 != 0 {
                    t.clear();
                }
                host.response_trailers = t;
                host.callback = InCallback::ResponseTrailers;
                Some(stream.on_response_trailers(&mut host))
            }
            7 | 8 => {
                // The reply to the latest HTTP call (a side call or a key fetch).
                let token = u32::try_from(host.calls.len()).unwrap_or(0);
                if token == 0 {
                    continue;
                }
                let b = s.byte().unwrap_or(0);
                let body = body_chunk(&mut s, op & 0x0f == 7);
                let mut h: Headers = vec![(":status".into(), pick(&STATUSES, b).into())];
                let ctype = pick(&CONTENT_TYPES, b >> 3);
                if !ctype.is_empty() {
                    h.push(("content-type".into(), ctype.into()));
                }
                let t: Headers = if b & 0x80 != 0 {
                    Vec::new()
                } else {
                    vec![("grpc-status".into(), pick(&GRPC_STATUSES, b >> 4).into())]
                };
                let n = body.len();
                host.call_reply = (h, body, t);
                host.callback = InCallback::Other;
                if b & 0x40 != 0 {
                    scheduler.on_http_call_response(&mut host, token, 2, n);
                } else {
                    stream.on_http_call_response(&mut host, token, 2, n);
                }
                None
            }
            9 => {
                host.now_secs += u64::from(s.byte().unwrap_or(1));
                host.callback = InCallback::Other;
                scheduler.on_tick(&mut host);
                None
            }
            10 => {
                host.callback = InCallback::Other;
                stream.on_log(&mut host);
                None
            }
            _ => None,
        };
        let _ = action;
    }
    host.callback = InCallback::Other;
    for stream in &streams {
        stream.on_log(&mut host);
    }
    for (status, headers, body) in &host.replies {
        check_reply(*status, headers, body);
    }
    Some(FilterOutcome {
        replies: host.replies.iter().map(|r| r.0).collect(),
        calls: host.calls.len(),
        response_body: host.response_body,
    })
}

/// JWKS documents: parsed with the limits of the defaults (symmetric keys allowed on an odd
/// first byte), then parsed again with the first result as the key set in use (material reuse).
pub fn jwks(data: &[u8]) {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let tables = TableBudget::new(1 << 20);
    let rules = KeyRules {
        max_keys: 64,
        allow_symmetric: selector & 1 == 1,
        tables: &tables,
        previous: None,
    };
    let Ok((set, _skipped)) = parse_jwks(text, &rules) else {
        return;
    };
    let again = KeyRules {
        previous: Some(&set),
        ..rules
    };
    let reparsed = parse_jwks(text, &again);
    assert!(
        reparsed.is_ok(),
        "a JWKS accepted once is refused the second time"
    );
    assert!(tables.used() <= 1 << 20, "key tables above their budget");
}

fn discovery_auth() -> &'static AuthConfig {
    static AUTH: OnceLock<AuthConfig> = OnceLock::new();
    AUTH.get_or_init(|| {
        let input = serde_json::json!({
            "providers": [{
                "name": "idp", "issuer": "https://idp.test", "audiences": ["api"],
                "jwks": {"remote": {"uri": "https://idp.test", "cluster": "idp",
                                    "discovery": true, "allow_symmetric_keys": true}}
            }],
            "default": {"provider": "idp"}
        });
        let built = serde_json::from_value::<AuthInput>(input)
            .map_err(|e| e.to_string())
            .and_then(|i| {
                AuthConfig::compile(&i, &AuthLimits::default()).map_err(|e| e.to_string())
            });
        match built {
            Ok(cfg) => cfg,
            Err(e) => panic!("the fuzz discovery configuration is invalid: {e}"),
        }
    })
}

/// A remote provider with OIDC discovery, as the VM runs it: the discovery document (the input
/// up to the first NUL) is the reply to the first fetch; when it names a JWKS, the rest of the
/// input is the reply to that fetch.
pub fn discovery(data: &[u8]) {
    let (doc, keys) = match data.iter().position(|&b| b == 0) {
        Some(at) => (
            data.get(..at).unwrap_or_default(),
            data.get(at + 1..).unwrap_or_default(),
        ),
        None => (data, &[][..]),
    };
    let cfg = discovery_auth();
    let mut state = AuthState::new(cfg);
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let first = state.due_fetches(now);
    assert_eq!(first.len(), 1, "one discovery fetch first");
    let _ = state.on_fetch_response(cfg, 0, FetchKind::Discovery, Some(200), doc, now);
    let later = now + Duration::from_millis(1);
    for fetch in state.due_fetches(later) {
        let _ = state.on_fetch_response(cfg, 0, fetch.kind, Some(200), keys, later);
    }
    let _ = state.has_keys(0);
    let _ = state.last_fetch_error(0);
}

fn demo() -> &'static Config {
    super::demo()
}

/// The server stream renderers: the input's gRPC byte stream (chunked as the first byte says)
/// through `stream_messages` for WatchPayments in each stream format, ended by `finish_stream`
/// with a grpc-status from the input. A json_array body must be one JSON array; ndjson lines
/// and SSE `data:` lines must each be JSON.
pub fn stream_render(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let config = demo();
    let Some(plan) = config.operations.iter().find_map(|op| match &op.kind {
        OpKind::Grpc {
            server_streaming: true,
            bindings,
            ..
        } => bindings.first().map(|b| &b.response),
        _ => None,
    }) else {
        panic!("the demo API has no server stream");
    };
    let format = match selector % 3 {
        0 => StreamFormat::JsonArray,
        1 => StreamFormat::Ndjson,
        _ => StreamFormat::Sse,
    };
    let status = pick(&GRPC_STATUSES, selector >> 2);
    let chunk = usize::from(selector >> 5) * 7 + 1;
    let end = GrpcEnd {
        status: (selector & 0x10 == 0).then_some(status),
        message: Some("fuzz"),
        details_bin: None,
    };
    let opts = &config.transcoding.print_options;
    let mut decoder = FrameDecoder::new(config.limits.max_response_bytes);
    let mut writer = StreamWriter::new(format);
    let mut body = Vec::new();
    let mut failure = None;
    for part in rest.chunks(chunk) {
        decoder.push(part);
        let (bytes, error) = stream_messages(plan, &mut decoder, &mut writer, opts);
        body.extend(bytes);
        if error.is_some() {
            failure = error;
            break;
        }
    }
    body.extend(finish_stream(
        &config.pool,
        &decoder,
        &mut writer,
        &end,
        failure.as_ref(),
    ));
    // Finishing twice writes nothing more.
    assert!(
        writer.finish(None).is_empty(),
        "a second finish wrote bytes"
    );
    let text = match String::from_utf8(body) {
        Ok(t) => t,
        Err(e) => panic!("stream body is not UTF-8: {e}"),
    };
    match format {
        StreamFormat::JsonArray => {
            let v: serde_json::Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => panic!("json_array body is not JSON ({e}): {text}"),
            };
            assert!(v.is_array(), "json_array body is not an array: {text}");
        }
        StreamFormat::Ndjson => {
            for line in text.lines().filter(|l| !l.is_empty()) {
                assert!(
                    serde_json::from_str::<serde_json::Value>(line).is_ok(),
                    "ndjson line is not JSON: {line}"
                );
            }
        }
        StreamFormat::Sse => {
            for line in text.lines() {
                if let Some(d) = line.strip_prefix("data:") {
                    assert!(
                        serde_json::from_str::<serde_json::Value>(d.trim()).is_ok(),
                        "SSE data is not JSON: {line}"
                    );
                }
            }
        }
    }
}

/// gRPC status and trailers: `grpc-status`, `grpc-message` (percent-encoded) and
/// `grpc-status-details-bin` (base64 of a google.rpc.Status) from the input (NUL-separated; the
/// details part is base64-encoded here unless the first byte is odd, then used as text), and a
/// plain HTTP error (status and body) as Envoy's router makes them. Every error must render as
/// a Status in each body format with a real HTTP status.
pub fn grpc_status(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(3, |&b| b == 0);
    let status = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let message = parts
        .next()
        .map(|m| String::from_utf8_lossy(m).into_owned());
    let details = parts.next().map(|d| {
        if selector & 1 == 1 {
            String::from_utf8_lossy(d).into_owned()
        } else {
            STANDARD.encode(d)
        }
    });
    let pool = &demo().pool;
    let end = GrpcEnd {
        status: Some(&status),
        message: message.as_deref(),
        details_bin: details.as_deref(),
    };
    let mut errors = Vec::new();
    errors.extend(end.error(pool));
    errors.push(error_from_grpc(
        pool,
        &status,
        message.as_deref(),
        details.as_deref(),
    ));
    let http = u16::from_le_bytes([selector, rest.first().copied().unwrap_or(0)]);
    let ctype = (selector & 2 == 2).then_some("application/json");
    errors.push(error_from_http(http, rest, ctype));
    for error in errors {
        for format in [BodyFormat::Json, BodyFormat::Protobuf, BodyFormat::Grpc] {
            let (code, headers, body) = error.to_response(format);
            assert!((200..=599).contains(&code), "error status {code}");
            if format == BodyFormat::Json {
                let v: serde_json::Value = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => panic!("Status body is not JSON: {e}"),
                };
                assert!(v.get("code").is_some(), "Status without code: {v}");
            }
            for (name, value) in &headers {
                assert!(
                    !name.contains(['\r', '\n']) && !value.contains(['\r', '\n']),
                    "header with a line break: {name}: {value:?}"
                );
            }
        }
    }
}

/// `traceparent` and `x-cloud-trace-context` (the input is the header value; the first byte
/// picks which, or both). A parsed context has a 32-hex-digit trace id and a 16-digit span id.
pub fn traceparent(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let value = String::from_utf8_lossy(rest);
    let parsed = match selector % 3 {
        0 => parse_traceparent(&value),
        1 => parse_cloud_trace(&value),
        _ => parse_trace(&[
            ("traceparent".to_string(), value.to_string()),
            ("x-cloud-trace-context".to_string(), value.to_string()),
        ]),
    };
    if let Some(t) = parsed {
        assert!(
            t.trace_id.len() == 32 && t.trace_id.bytes().all(|b| b.is_ascii_hexdigit()),
            "bad trace id {:?}",
            t.trace_id
        );
        assert!(
            t.trace_id.bytes().any(|b| b != b'0'),
            "all-zero trace id accepted"
        );
        if let Some(span) = &t.span_id {
            assert!(
                span.len() == 16 && span.bytes().all(|b| b.is_ascii_hexdigit()),
                "bad span id {span:?}"
            );
        }
    }
}
