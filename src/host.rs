//! The only seam between meshgate's core and the proxy.
//!
//! Everything the proxy provides (headers, bodies, properties, the clock, HTTP calls, local
//! replies, metrics, logs) goes through [`Host`]. The wasm module implements it over the
//! Proxy-Wasm ABI (`crate::wasm`); host-side tests implement it with a recording fake. The core
//! never names `proxy_wasm`.
//!
//! Calls that the proxy may refuse (Envoy refuses header changes after headers continued, and
//! body replacement outside the body callbacks) return `Result`, never panic: a refusal is an
//! error the core turns into a response or a log line, not a trapped VM.

use std::time::{Duration, SystemTime};

pub mod batch;

/// A header map as the proxy hands it over: lower-case names, in order, duplicates kept.
pub type Headers = Vec<(String, String)>;

/// Which header map of the stream a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    RequestHeaders,
    RequestTrailers,
    ResponseHeaders,
    ResponseTrailers,
}

/// Which body buffer of the stream a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Request,
    Response,
}

/// The proxy said no (the status it returned), or the call is not possible in this phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError(pub String);

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostError {}

pub type HostResult<T> = Result<T, HostError>;

/// Log levels the proxy knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// What the stream does after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Hold the headers (or buffer the body) until a later callback continues.
    Pause,
}

/// A metric the module defined once per VM; the value is the proxy's id for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricId(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// Per-stream access to the proxy.
pub trait Host {
    /// Wall clock, as the proxy sees it.
    fn now(&self) -> SystemTime;

    /// Whole header map in one host call (cheaper than one call per header).
    fn headers(&self, map: MapKind) -> Headers;
    fn header(&self, map: MapKind, name: &str) -> Option<String>;
    /// Replace (or add) a header; `None` removes it.
    fn set_header(&mut self, map: MapKind, name: &str, value: Option<&str>) -> HostResult<()>;
    /// Add a header value without replacing existing ones.
    fn add_header(&mut self, map: MapKind, name: &str, value: &str) -> HostResult<()>;
    /// Replace a whole map.
    fn set_headers(&mut self, map: MapKind, headers: &[(String, String)]) -> HostResult<()>;

    /// The buffered body bytes (`size` bytes from `start`; the whole buffer when `size` is the
    /// buffered length).
    fn body(&self, kind: BodyKind, start: usize, size: usize) -> Option<Vec<u8>>;
    /// Replace the whole buffered body.
    fn set_body(&mut self, kind: BodyKind, bytes: &[u8]) -> HostResult<()>;
    /// Whether the proxy lets the filter add a body to a request that arrived without one
    /// (Proxy-Wasm cannot: proxy-wasm/spec#86). When true, `set_body(BodyKind::Request, ..)`
    /// during the request headers callback appends the body and the router forwards it.
    fn can_append_request_body(&self) -> bool {
        false
    }
    /// Whether the proxy lets the filter add a body to a response that has none, from the
    /// response headers callback (a trailers-only gRPC reply, or the router's own error ending
    /// on its headers) or the trailers callback (headers and trailers without data): Envoy's
    /// `addEncodedData`, which a dynamic module reaches through `set_body(BodyKind::Response,
    /// ..)`. When true the core renders such replies in place and every encoder filter (CORS,
    /// header_mutation) still runs on them; when false (Proxy-Wasm, proxy-wasm/spec#86) it
    /// answers them with a local reply, which Envoy sends past those filters.
    fn can_add_response_body(&self) -> bool {
        false
    }
    /// Name the proxy's server span for this request (the API operation); a no-op where
    /// the proxy offers no span access.
    fn set_span_operation(&mut self, _name: &str) {}

    /// A property by path (`["xds", "route_name"]`), raw bytes.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// Several scalar properties (see [`batch`]), each as [`Host::property`] returns it, in
    /// `paths`' order (an empty value may read as `None`). One call each by default; the wasm
    /// host reads them in one host call where Envoy evaluates CEL.
    fn properties(&self, paths: &[&[&str]]) -> Vec<Option<Vec<u8>>> {
        paths.iter().map(|p| self.property(p)).collect()
    }
    /// Set a property (filter state) for the access log of the proxy.
    fn set_property(&mut self, path: &[&str], value: &[u8]) -> HostResult<()>;

    /// Answer the client directly; the upstream (if any) is abandoned.
    fn send_response(
        &mut self,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> HostResult<()>;

    /// Resume a paused request or response.
    fn resume_request(&mut self);
    fn resume_response(&mut self);

    fn log(&self, level: Level, message: &str);

    fn increment_metric(&self, id: MetricId, delta: i64);
    fn record_metric(&self, id: MetricId, value: u64);
    fn define_metric(&self, kind: MetricKind, name: &str) -> HostResult<MetricId>;

    /// Dispatch an HTTP call to an Envoy cluster from this stream; the reply comes back to this
    /// stream's `on_http_call_response`.
    fn http_call(
        &mut self,
        cluster: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> HostResult<u32>;

    /// The reply of an HTTP call, in the `on_http_call_response` callback that announced it
    /// (with its header count and body size): read only what the core decided to read.
    fn call_response_headers(&self) -> Headers;
    /// `size` bytes of the reply's body (the size the callback reported).
    fn call_response_body(&self, size: usize) -> Option<Vec<u8>>;
    fn call_response_trailers(&self) -> Headers;

    /// The VM's linear memory, bytes (wasm pages x 64 KiB); None where there is no VM (host
    /// tests, unless a fake says otherwise).
    fn vm_memory_bytes(&self) -> Option<u64> {
        None
    }

    /// The proxy's shared data under `key` (one store for all VMs of the plugin's `vm_id` in
    /// the process) and its CAS token; None when there is none. Defaults: nothing stored.
    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        let _ = key;
        None
    }

    /// Store `value` under `key` if its CAS token is still `cas` (0: unconditionally); another
    /// VM's write in between is an error (read again and retry).
    fn set_shared_data(&mut self, key: &str, value: &[u8], cas: u32) -> HostResult<()> {
        let _ = (key, value, cas);
        Err(HostError("no shared data".into()))
    }
}

/// What the root context adds: acting on a stream from the root's own callbacks (a tick, the
/// reply of a JWKS fetch). The VM-wide scheduler (`crate::filter::Scheduler`) drives it.
pub trait RootHost: Host {
    /// Make a stream's context the one that later calls act on (answer, resume, call out).
    fn set_effective_context(&mut self, context_id: u32) -> HostResult<()>;
}

/// A change to a header map that a domain wants made (route: routing headers, the REST
/// rewrite; transcode: the gRPC call's headers). The filter applies them through [`Host`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderOp {
    Set(String, String),
    Remove(String),
}

impl HeaderOp {
    pub fn set(name: &str, value: &str) -> HeaderOp {
        HeaderOp::Set(name.to_string(), value.to_string())
    }

    pub fn name(&self) -> &str {
        match self {
            HeaderOp::Set(n, _) | HeaderOp::Remove(n) => n,
        }
    }

    /// The value set, `None` for a removal (as [`Host::set_header`] takes it).
    pub fn value(&self) -> Option<&str> {
        match self {
            HeaderOp::Set(_, v) => Some(v),
            HeaderOp::Remove(_) => None,
        }
    }
}

/// Helpers over a header map as returned by [`Host::headers`].
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
