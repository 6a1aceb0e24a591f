//! Host-side test support, the one fake of the proxy: `FakeHost` (per-stream calls and the
//! root's `RootHost`), built with `FakeHost::new().with_header(..).with_property(..)`; the demo
//! configuration and gateway files compiled as the filter would; HS256 tokens (the shared
//! fixtures').
#![allow(dead_code)]

#[allow(unused_imports)]
pub use meshgate_fixtures::hs256;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use meshgate::host::{
    BodyKind, Headers, Host, HostError, HostResult, Level, MapKind, MetricId, MetricKind, RootHost,
};

/// A fake proxy: header maps and bodies you can set up and inspect, a recorded local reply,
/// metrics by name, logs, and switches that make the proxy refuse changes like Envoy does.
#[derive(Default)]
pub struct FakeHost {
    pub now: Option<SystemTime>,
    pub maps: HashMap<&'static str, Headers>,
    pub request_body: Vec<u8>,
    pub response_body: Vec<u8>,
    pub properties: HashMap<String, Vec<u8>>,
    pub local_reply: Option<(u16, Headers, Vec<u8>)>,
    pub logs: RefCell<Vec<(Level, String)>>,
    pub metrics: RefCell<HashMap<String, i64>>,
    pub metric_names: RefCell<Vec<String>>,
    pub http_calls: Vec<(String, Headers, Vec<u8>)>,
    /// The timeout of each side call, in the order of `http_calls`.
    pub http_call_timeouts: Vec<Duration>,
    /// Refuse body replacement (Envoy does outside the body/trailers callbacks).
    pub refuse_set_body: bool,
    /// The reply the next `on_http_call_response` reads: headers, body, trailers.
    pub call_reply: (Headers, Vec<u8>, Headers),
    /// How many times a call reply's body was read (copied into the VM).
    pub call_body_reads: Cell<usize>,
    /// The context the root made effective (`RootHost::set_effective_context`), in order.
    pub effective: Vec<u32>,
    /// Requests resumed (`resume_request`), by the context effective at the time.
    pub resumed: Vec<Option<u32>>,
    pub responses_resumed: usize,
    /// The VM's linear memory the fake reports (`Host::vm_memory_bytes`).
    pub memory_bytes: Option<u64>,
    /// How many times the clock was read (`Host::now`).
    pub clock_reads: Cell<usize>,
    /// Act as the native module: a body can be appended to a body-less request
    /// (`Host::can_append_request_body`). False: Proxy-Wasm.
    pub appends_request_body: bool,
    /// Act as the native module: a body can be added to a header-only response
    /// (`Host::can_add_response_body`). False: Proxy-Wasm.
    pub adds_response_body: bool,
    /// The names the server span was given (`Host::set_span_operation`), in order.
    pub span_operations: Vec<String>,
}

fn key(map: MapKind) -> &'static str {
    match map {
        MapKind::RequestHeaders => "request_headers",
        MapKind::RequestTrailers => "request_trailers",
        MapKind::ResponseHeaders => "response_headers",
        MapKind::ResponseTrailers => "response_trailers",
    }
}

impl FakeHost {
    pub fn new() -> FakeHost {
        FakeHost::default()
    }

    /// Add a request header (`:method`, `:path`, ... included).
    pub fn with_header(mut self, name: &str, value: &str) -> FakeHost {
        let map = self.maps.entry("request_headers").or_default();
        map.push((name.to_string(), value.to_string()));
        self
    }

    /// A property by its path joined with dots (`xds.route_name`).
    pub fn with_property(mut self, path: &str, value: &[u8]) -> FakeHost {
        self.properties.insert(path.to_string(), value.to_vec());
        self
    }

    pub fn with_request_body(mut self, body: &[u8]) -> FakeHost {
        self.request_body = body.to_vec();
        self
    }

    pub fn at(mut self, now: SystemTime) -> FakeHost {
        self.now = Some(now);
        self
    }

    /// The reply of the next HTTP call the module reads.
    pub fn with_call_reply(mut self, headers: &[(&str, &str)], body: &[u8]) -> FakeHost {
        self.call_reply = (pairs(headers), body.to_vec(), Vec::new());
        self
    }

    pub fn with_request(method: &str, path: &str, extra: &[(&str, &str)]) -> FakeHost {
        let mut h = FakeHost::default();
        let mut headers: Headers = vec![
            (":method".into(), method.into()),
            (":path".into(), path.into()),
            (":authority".into(), "gateway.test".into()),
            (":scheme".into(), "http".into()),
        ];
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        h.maps.insert("request_headers", headers);
        h
    }

    pub fn get(&self, map: MapKind, name: &str) -> Option<String> {
        self.maps
            .get(key(map))?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// Response headers as the upstream sent them.
    pub fn set_response_headers(&mut self, headers: &[(&str, &str)]) {
        self.maps.insert("response_headers", pairs(headers));
    }

    /// A log line containing `needle`, if any.
    pub fn logged(&self, needle: &str) -> Option<String> {
        self.logs
            .borrow()
            .iter()
            .find(|(_, m)| m.contains(needle))
            .map(|(_, m)| m.clone())
    }

    pub fn counter(&self, name: &str) -> i64 {
        self.metrics.borrow().get(name).copied().unwrap_or(0)
    }

    pub fn reply_json(&self) -> (u16, serde_json::Value) {
        let (status, _, body) = self.local_reply.as_ref().expect("no local reply");
        (
            *status,
            serde_json::from_slice(body).expect("reply is not JSON"),
        )
    }
}

impl Host for FakeHost {
    fn now(&self) -> SystemTime {
        self.clock_reads.set(self.clock_reads.get() + 1);
        self.now
            .unwrap_or(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000))
    }
    fn headers(&self, map: MapKind) -> Headers {
        self.maps.get(key(map)).cloned().unwrap_or_default()
    }
    fn header(&self, map: MapKind, name: &str) -> Option<String> {
        self.get(map, name)
    }
    fn set_header(&mut self, map: MapKind, name: &str, value: Option<&str>) -> HostResult<()> {
        let m = self.maps.entry(key(map)).or_default();
        m.retain(|(k, _)| k != name);
        if let Some(v) = value {
            m.push((name.to_string(), v.to_string()));
        }
        Ok(())
    }
    fn add_header(&mut self, map: MapKind, name: &str, value: &str) -> HostResult<()> {
        self.maps
            .entry(key(map))
            .or_default()
            .push((name.to_string(), value.to_string()));
        Ok(())
    }
    fn set_headers(&mut self, map: MapKind, headers: &[(String, String)]) -> HostResult<()> {
        self.maps.insert(key(map), headers.to_vec());
        Ok(())
    }
    fn body(&self, kind: BodyKind, start: usize, size: usize) -> Option<Vec<u8>> {
        let b = match kind {
            BodyKind::Request => &self.request_body,
            BodyKind::Response => &self.response_body,
        };
        b.get(start..(start + size).min(b.len()))
            .map(<[u8]>::to_vec)
    }
    fn set_body(&mut self, kind: BodyKind, bytes: &[u8]) -> HostResult<()> {
        if self.refuse_set_body {
            return Err(HostError("BadArgument".into()));
        }
        match kind {
            BodyKind::Request => self.request_body = bytes.to_vec(),
            BodyKind::Response => self.response_body = bytes.to_vec(),
        }
        Ok(())
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.properties.get(&path.join(".")).cloned()
    }
    fn set_property(&mut self, path: &[&str], value: &[u8]) -> HostResult<()> {
        self.properties.insert(path.join("."), value.to_vec());
        Ok(())
    }
    fn send_response(
        &mut self,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> HostResult<()> {
        self.local_reply = Some((status, headers.to_vec(), body.to_vec()));
        Ok(())
    }
    fn resume_request(&mut self) {
        self.resumed.push(self.effective.last().copied());
    }
    fn resume_response(&mut self) {
        self.responses_resumed += 1;
    }
    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }
    fn increment_metric(&self, id: MetricId, delta: i64) {
        let name = self
            .metric_names
            .borrow()
            .get(id.0 as usize)
            .cloned()
            .unwrap_or_default();
        *self.metrics.borrow_mut().entry(name).or_default() += delta;
    }
    fn record_metric(&self, id: MetricId, value: u64) {
        let name = self
            .metric_names
            .borrow()
            .get(id.0 as usize)
            .cloned()
            .unwrap_or_default();
        self.metrics.borrow_mut().insert(name, value as i64);
    }
    fn define_metric(&self, _kind: MetricKind, name: &str) -> HostResult<MetricId> {
        let mut names = self.metric_names.borrow_mut();
        names.push(name.to_string());
        Ok(MetricId((names.len() - 1) as u32))
    }
    fn http_call(
        &mut self,
        cluster: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> HostResult<u32> {
        self.http_call_timeouts.push(timeout);
        self.http_calls.push((
            cluster.to_string(),
            headers.to_vec(),
            body.unwrap_or_default().to_vec(),
        ));
        Ok(self.http_calls.len() as u32)
    }
    fn call_response_headers(&self) -> Headers {
        self.call_reply.0.clone()
    }
    fn call_response_body(&self, size: usize) -> Option<Vec<u8>> {
        self.call_body_reads.set(self.call_body_reads.get() + 1);
        let b = &self.call_reply.1;
        b.get(..size.min(b.len())).map(<[u8]>::to_vec)
    }
    fn call_response_trailers(&self) -> Headers {
        self.call_reply.2.clone()
    }
    fn vm_memory_bytes(&self) -> Option<u64> {
        self.memory_bytes
    }
    fn can_append_request_body(&self) -> bool {
        self.appends_request_body
    }
    fn can_add_response_body(&self) -> bool {
        self.adds_response_body
    }
    fn set_span_operation(&mut self, name: &str) {
        self.span_operations.push(name.to_string());
    }
}

impl RootHost for FakeHost {
    fn set_effective_context(&mut self, context_id: u32) -> HostResult<()> {
        self.effective.push(context_id);
        Ok(())
    }
}

pub fn find(headers: &[(String, String)], name: &str) -> Option<String> {
    meshgate::host::find_header(headers, name).map(str::to_string)
}

pub fn pairs(list: &[(&str, &str)]) -> Headers {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A gateway file (YAML, `descriptors.include` relative to the repository's `proto/`)
/// compiled as `meshgate compile` and the filter's `on_configure` would.
pub fn compile_yaml(yaml: &str) -> meshgate::config::Config {
    let json = gateway_json(yaml);
    meshgate::config::compile_json(json.as_bytes()).expect("configuration is valid")
}

/// A gateway file compiled to the filter's JSON configuration (what `on_configure` receives).
pub fn gateway_json(yaml: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let yaml = yaml.replace(
        "include: [../proto]",
        &format!("include: [{}]", root.join("proto").display()),
    );
    // One file per call: tests run in parallel threads.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("meshgate-flow-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, yaml).expect("write gateway.yaml");
    let json = meshgate::cli::compile_file(&path);
    let _ = std::fs::remove_dir_all(&dir);
    json.expect("gateway file compiles")
}

/// The demo gateway file (envoy/gateway.yaml) as text, to be edited by a test.
pub fn demo_yaml() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy/gateway.yaml");
    std::fs::read_to_string(path).expect("envoy/gateway.yaml")
}

/// The demo gateway configuration (envoy/gateway.yaml), compiled as the filter would.
pub fn demo_config() -> meshgate::config::Config {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy/gateway.yaml");
    let json = meshgate::cli::compile_file(&path).expect("demo config compiles");
    meshgate::config::compile_json(json.as_bytes()).expect("demo config is valid")
}
