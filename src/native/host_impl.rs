//! [`Host`] and [`RootHost`] over Envoy's dynamic-module callbacks: translation only, no
//! gateway logic (the same rule as `crate::wasm`).

use std::time::{Duration, SystemTime};

use super::abi::{self, EnvoyBuffer, FilterEnvoyPtr, HttpHeader, ModuleBuffer};
use super::callouts::send;
use super::config::{self, ModuleConfig};
use super::shared;
use super::worker::{self, CallRequest, Callout, Deferred};
use crate::host::{
    BodyKind, Headers, Host, HostError, HostResult, Level, MapKind, MetricId, MetricKind, RootHost,
};

/// The reply of a callout, copied out of the hook that delivered it.
#[derive(Default)]
pub struct CallReply {
    pub headers: Headers,
    pub body: Vec<u8>,
    pub trailers: Headers,
}

/// One hook's view of the proxy: the stream it acts on (the root moves it with
/// `set_effective_context`), the configuration, and the callout reply being delivered.
pub struct NativeHost<'a> {
    pub envoy: FilterEnvoyPtr,
    pub config: &'a ModuleConfig,
    /// Callouts made through this host reply to the root (`Scheduler`), not to the stream.
    pub as_root: bool,
    pub reply: Option<CallReply>,
}

impl<'a> NativeHost<'a> {
    pub fn new(envoy: FilterEnvoyPtr, config: &'a ModuleConfig, as_root: bool) -> Self {
        NativeHost {
            envoy,
            config,
            as_root,
            reply: None,
        }
    }

    fn live(&self) -> HostResult<()> {
        if self.envoy.is_null() {
            Err(HostError("no stream to act on".into()))
        } else {
            Ok(())
        }
    }

    /// A request header changed: Envoy selects the route again, as it does after a wasm
    /// filter's change, so the routing header and the gRPC path the core set choose the route
    /// (the upstream's cluster, a streaming method's route without timeout, its retry policy).
    fn route_changed(&self, map: MapKind, changed: bool) {
        if changed && map == MapKind::RequestHeaders {
            // SAFETY: a live filter (checked by the caller's `live`).
            unsafe { abi::envoy_dynamic_module_callback_http_clear_route_cache(self.envoy) };
        }
    }
}

fn header_type(map: MapKind) -> u32 {
    match map {
        MapKind::RequestHeaders => abi::HEADER_REQUEST,
        MapKind::RequestTrailers => abi::HEADER_REQUEST_TRAILER,
        MapKind::ResponseHeaders => abi::HEADER_RESPONSE,
        MapKind::ResponseTrailers => abi::HEADER_RESPONSE_TRAILER,
    }
}

/// (buffered, received) body types of a direction.
fn body_types(kind: BodyKind) -> (u32, u32) {
    match kind {
        BodyKind::Request => (abi::BODY_BUFFERED_REQUEST, abi::BODY_RECEIVED_REQUEST),
        BodyKind::Response => (abi::BODY_BUFFERED_RESPONSE, abi::BODY_RECEIVED_RESPONSE),
    }
}

/// Every chunk of one body buffer, appended to `out`.
fn read_chunks(envoy: FilterEnvoyPtr, body_type: u32, out: &mut Vec<u8>) {
    // SAFETY: a live filter; the chunk array has the size Envoy reported and its buffers are
    // valid until the hook returns (copied here).
    unsafe {
        let n = abi::envoy_dynamic_module_callback_http_get_body_chunks_size(envoy, body_type);
        if n == 0 {
            return;
        }
        let mut chunks = vec![EnvoyBuffer::EMPTY; n];
        if !abi::envoy_dynamic_module_callback_http_get_body_chunks(
            envoy,
            body_type,
            chunks.as_mut_ptr(),
        ) {
            return;
        }
        for c in chunks {
            if !c.ptr.is_null() {
                out.extend_from_slice(std::slice::from_raw_parts(c.ptr, c.length));
            }
        }
    }
}

/// The whole body seen so far: what Envoy buffered, then the chunk of this hook.
pub fn body_size(envoy: FilterEnvoyPtr, kind: BodyKind) -> usize {
    let (buffered, received) = body_types(kind);
    // SAFETY: a live filter.
    unsafe {
        abi::envoy_dynamic_module_callback_http_get_body_size(envoy, buffered)
            + abi::envoy_dynamic_module_callback_http_get_body_size(envoy, received)
    }
}

pub fn log(level: Level, message: &str) {
    let l = match level {
        Level::Trace => abi::LOG_TRACE,
        Level::Debug => abi::LOG_DEBUG,
        Level::Info => abi::LOG_INFO,
        Level::Warn => abi::LOG_WARN,
        Level::Error => abi::LOG_ERROR,
    };
    // SAFETY: the message outlives the call.
    unsafe { abi::envoy_dynamic_module_callback_log(l, ModuleBuffer::of(message.as_bytes())) };
}

impl Host for NativeHost<'_> {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn headers(&self, map: MapKind) -> Headers {
        if self.live().is_err() {
            return Vec::new();
        }
        let t = header_type(map);
        // SAFETY: a live filter; the array has the reported size; values copied before return.
        unsafe {
            let n = abi::envoy_dynamic_module_callback_http_get_headers_size(self.envoy, t);
            if n == 0 {
                return Vec::new();
            }
            let mut hs = vec![HttpHeader::EMPTY; n];
            if !abi::envoy_dynamic_module_callback_http_get_headers(self.envoy, t, hs.as_mut_ptr())
            {
                return Vec::new();
            }
            hs.iter().map(|h| h.to_pair()).collect()
        }
    }

    fn header(&self, map: MapKind, name: &str) -> Option<String> {
        self.live().ok()?;
        let mut out = EnvoyBuffer::EMPTY;
        let mut count = 0usize;
        // SAFETY: a live filter; valid out-pointers; the value is copied.
        unsafe {
            let ok = abi::envoy_dynamic_module_callback_http_get_header(
                self.envoy,
                header_type(map),
                ModuleBuffer::of(name.as_bytes()),
                &mut out,
                0,
                &mut count,
            );
            (ok && count > 0).then(|| abi::utf8(out.to_vec()))
        }
    }

    fn set_header(&mut self, map: MapKind, name: &str, value: Option<&str>) -> HostResult<()> {
        self.live()?;
        let v = match value {
            Some(v) => ModuleBuffer::of(v.as_bytes()),
            None => ModuleBuffer {
                ptr: std::ptr::null(),
                length: 0,
            },
        };
        // SAFETY: a live filter; Envoy copies the buffers.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_set_header(
                self.envoy,
                header_type(map),
                ModuleBuffer::of(name.as_bytes()),
                v,
            )
        };
        self.route_changed(map, ok);
        ok.then_some(())
            .ok_or_else(|| HostError(format!("set_header {name} refused by the proxy")))
    }

    fn add_header(&mut self, map: MapKind, name: &str, value: &str) -> HostResult<()> {
        self.live()?;
        // SAFETY: a live filter; Envoy copies the buffers.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_add_header(
                self.envoy,
                header_type(map),
                ModuleBuffer::of(name.as_bytes()),
                ModuleBuffer::of(value.as_bytes()),
            )
        };
        self.route_changed(map, ok);
        ok.then_some(())
            .ok_or_else(|| HostError(format!("add_header {name} refused by the proxy")))
    }

    fn set_headers(&mut self, map: MapKind, headers: &[(String, String)]) -> HostResult<()> {
        for (name, _) in self.headers(map) {
            self.set_header(map, &name, None)?;
        }
        for (name, value) in headers {
            self.add_header(map, name, value)?;
        }
        Ok(())
    }

    fn body(&self, kind: BodyKind, start: usize, size: usize) -> Option<Vec<u8>> {
        self.live().ok()?;
        let (buffered, received) = body_types(kind);
        let mut all = Vec::new();
        read_chunks(self.envoy, buffered, &mut all);
        read_chunks(self.envoy, received, &mut all);
        let end = start.saturating_add(size).min(all.len());
        if start == 0 {
            // The usual read (the whole body from its start): no second copy.
            all.truncate(end);
            return Some(all);
        }
        all.get(start.min(end)..end).map(<[u8]>::to_vec)
    }

    fn set_body(&mut self, kind: BodyKind, bytes: &[u8]) -> HostResult<()> {
        self.live()?;
        let (buffered, received) = body_types(kind);
        // SAFETY: a live filter; Envoy copies the data. The chunk of this hook (when there is
        // one) takes the new body; otherwise the buffered body does, which during the request
        // headers of a body-less request makes Envoy forward it as the request's body.
        let ok = unsafe {
            let _ = abi::envoy_dynamic_module_callback_http_drain_body(
                self.envoy,
                buffered,
                usize::MAX,
            );
            if abi::envoy_dynamic_module_callback_http_drain_body(self.envoy, received, usize::MAX)
            {
                abi::envoy_dynamic_module_callback_http_append_body(
                    self.envoy,
                    received,
                    ModuleBuffer::of(bytes),
                )
            } else {
                abi::envoy_dynamic_module_callback_http_append_body(
                    self.envoy,
                    buffered,
                    ModuleBuffer::of(bytes),
                )
            }
        };
        ok.then_some(())
            .ok_or_else(|| HostError("set_body refused by the proxy".into()))
    }

    fn can_append_request_body(&self) -> bool {
        true
    }

    /// During the response headers (or trailers) hook, `set_body` appends to the buffered
    /// response body, which Envoy adds with `addEncodedData`: a header-only reply gets a body
    /// and goes on through the encoder filters.
    fn can_add_response_body(&self) -> bool {
        true
    }

    fn set_span_operation(&mut self, name: &str) {
        if self.live().is_err() {
            return;
        }
        // SAFETY: a live filter; the span is Envoy's for the stream's lifetime.
        unsafe {
            let span = abi::envoy_dynamic_module_callback_http_get_active_span(self.envoy);
            if !span.is_null() {
                abi::envoy_dynamic_module_callback_http_span_set_operation(
                    span,
                    ModuleBuffer::of(name.as_bytes()),
                );
            }
        }
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.live().ok()?;
        super::properties::read(self.envoy, path)
    }

    fn set_property(&mut self, path: &[&str], value: &[u8]) -> HostResult<()> {
        self.live()?;
        // The keys the wasm host gives filter state (`wasm.` + the path), so the access-log
        // formats and filters read the same `wasm.meshgate.*` entries.
        let mut key = String::with_capacity(5 + path.iter().map(|p| p.len() + 1).sum::<usize>());
        key.push_str("wasm");
        for part in path {
            key.push('.');
            key.push_str(part);
        }
        // SAFETY: a live filter; Envoy copies the buffers.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_set_filter_state_bytes(
                self.envoy,
                ModuleBuffer::of(key.as_bytes()),
                ModuleBuffer::of(value),
            )
        };
        ok.then_some(())
            .ok_or_else(|| HostError(format!("filter state {key} refused by the proxy")))
    }

    fn send_response(
        &mut self,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> HostResult<()> {
        self.live()?;
        // Envoy runs the stream's encoder hooks inside the call: deferred until the core
        // has returned (`worker`).
        worker::defer(Deferred::Reply {
            envoy: self.envoy,
            status,
            headers: headers.to_vec(),
            body: body.to_vec(),
        });
        Ok(())
    }

    fn resume_request(&mut self) {
        if self.live().is_ok() {
            worker::defer(Deferred::ContinueDecoding(self.envoy));
        }
    }

    fn resume_response(&mut self) {
        if self.live().is_ok() {
            worker::defer(Deferred::ContinueEncoding(self.envoy));
        }
    }

    fn log(&self, level: Level, message: &str) {
        log(level, message)
    }

    fn increment_metric(&self, id: MetricId, delta: i64) {
        self.record_metric(id, u64::try_from(delta).unwrap_or(0));
    }

    fn record_metric(&self, id: MetricId, value: u64) {
        // Applied in place (no copy of the label values): Envoy's metric callbacks call no hook
        // of this module, so the worker's state is not re-entered.
        worker::with(|w| {
            let entry = usize::try_from(id.0).ok().and_then(|i| w.metrics.get(i));
            if let Some((family, values)) = entry {
                config::apply(self.config, *family, values, value);
            }
        });
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> HostResult<MetricId> {
        let (family, values) = self
            .config
            .resolve(kind, name)
            .ok_or_else(|| HostError(format!("no metric family for {name}")))?;
        // Envoy makes a labelled series at its first use; a counter exists from its definition
        // under wasm (a rate over it needs the 0), so add 0 to make it here too.
        if kind == MetricKind::Counter {
            config::apply(self.config, family, &values, 0);
        }
        worker::with(|w| {
            let id =
                u32::try_from(w.metrics.len()).map_err(|_| HostError("too many metrics".into()))?;
            w.metrics.push((family, values));
            Ok(MetricId(id))
        })
    }

    fn http_call(
        &mut self,
        cluster: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> HostResult<u32> {
        if self.envoy.is_null() && self.as_root {
            // The JWKS keeper's root, on the main thread: the configuration's own callout.
            let body = body.unwrap_or_default();
            return super::keeper::send(self.config, cluster, headers, body, timeout);
        }
        self.live()?;
        // The token is known before Envoy may answer inline (the reply is then deferred).
        let token = worker::with(|w| w.new_token());
        let request = self.as_root.then(|| {
            std::rc::Rc::new(CallRequest {
                cluster: cluster.to_string(),
                headers: headers.to_vec(),
                body: body.unwrap_or_default().to_vec(),
                timeout,
            })
        });
        let call = Callout {
            token,
            as_root: self.as_root,
            request,
        };
        send(
            self.envoy,
            cluster,
            headers,
            body.unwrap_or_default(),
            timeout,
            call,
        )?;
        Ok(token)
    }

    fn call_response_headers(&self) -> Headers {
        self.reply
            .as_ref()
            .map(|r| r.headers.clone())
            .unwrap_or_default()
    }

    fn call_response_body(&self, size: usize) -> Option<Vec<u8>> {
        let r = self.reply.as_ref()?;
        r.body.get(..size.min(r.body.len())).map(<[u8]>::to_vec)
    }

    fn call_response_trailers(&self) -> Headers {
        self.reply
            .as_ref()
            .map(|r| r.trailers.clone())
            .unwrap_or_default()
    }

    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        shared::get(key)
    }

    fn set_shared_data(&mut self, key: &str, value: &[u8], cas: u32) -> HostResult<()> {
        shared::set(key, value, cas)
    }
}

impl RootHost for NativeHost<'_> {
    fn set_effective_context(&mut self, context_id: u32) -> HostResult<()> {
        let envoy = worker::with(|w| w.streams.get(&context_id).map(|(e, _)| *e));
        match envoy {
            Some(e) => {
                self.envoy = e;
                Ok(())
            }
            None => Err(HostError(format!("no stream {context_id} on this worker"))),
        }
    }
}
