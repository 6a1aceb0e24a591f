//! `Host` and `RootHost` over the Proxy-Wasm ABI: translation only. Reads use the SDK (its
//! reads do not panic on the statuses Envoy returns for missing values); writes use `abi`,
//! which never panics.

use std::time::{Duration, SystemTime};

use proxy_wasm::types::{BufferType, MapType};

use super::abi;
use crate::host::{
    BodyKind, Headers, Host, HostResult, Level, MapKind, MetricId, MetricKind, RootHost,
};

/// Stateless: every call goes to whichever context is current (or effective).
pub struct AbiHost;

fn map_type(map: MapKind) -> MapType {
    match map {
        MapKind::RequestHeaders => MapType::HttpRequestHeaders,
        MapKind::RequestTrailers => MapType::HttpRequestTrailers,
        MapKind::ResponseHeaders => MapType::HttpResponseHeaders,
        MapKind::ResponseTrailers => MapType::HttpResponseTrailers,
    }
}

fn buffer_type(kind: BodyKind) -> BufferType {
    match kind {
        BodyKind::Request => BufferType::HttpRequestBody,
        BodyKind::Response => BufferType::HttpResponseBody,
    }
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(abi::now_nanos())
}

fn log(level: Level, message: &str) {
    let l = match level {
        Level::Trace => 0,
        Level::Debug => 1,
        Level::Info => 2,
        Level::Warn => 3,
        Level::Error => 4,
    };
    abi::log(l, message);
}

fn define_metric(kind: MetricKind, name: &str) -> HostResult<MetricId> {
    let t = match kind {
        MetricKind::Counter => 0,
        MetricKind::Gauge => 1,
        MetricKind::Histogram => 2,
    };
    abi::define_metric(t, name).map(MetricId)
}

fn timeout_ms(timeout: Duration) -> u32 {
    u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX)
}

impl Host for AbiHost {
    fn now(&self) -> SystemTime {
        now()
    }

    fn headers(&self, map: MapKind) -> Headers {
        abi::get_map(map_type(map))
    }

    fn header(&self, map: MapKind, name: &str) -> Option<String> {
        abi::get_header(map_type(map), name)
    }

    fn set_header(&mut self, map: MapKind, name: &str, value: Option<&str>) -> HostResult<()> {
        abi::set_header(map_type(map), name, value)
    }

    fn add_header(&mut self, map: MapKind, name: &str, value: &str) -> HostResult<()> {
        abi::add_header(map_type(map), name, value)
    }

    fn set_headers(&mut self, map: MapKind, headers: &[(String, String)]) -> HostResult<()> {
        abi::set_headers(map_type(map), headers)
    }

    fn body(&self, kind: BodyKind, start: usize, size: usize) -> Option<Vec<u8>> {
        abi::get_buffer(buffer_type(kind), start, size)
    }

    fn set_body(&mut self, kind: BodyKind, bytes: &[u8]) -> HostResult<()> {
        // Replace the whole buffer: start 0, size = "everything" (the ABI clamps it).
        abi::set_buffer(buffer_type(kind), 0, usize::MAX >> 1, bytes)
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        abi::get_property(path)
    }

    fn properties(&self, paths: &[&[&str]]) -> Vec<Option<Vec<u8>>> {
        super::batch::properties(paths)
            .unwrap_or_else(|| paths.iter().map(|p| abi::get_property(p)).collect())
    }

    fn set_property(&mut self, path: &[&str], value: &[u8]) -> HostResult<()> {
        abi::set_property(path, value)
    }

    fn send_response(
        &mut self,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> HostResult<()> {
        abi::send_local_response(status, headers, body)
    }

    fn resume_request(&mut self) {
        let _ = abi::continue_stream(0);
    }

    fn resume_response(&mut self) {
        let _ = abi::continue_stream(1);
    }

    fn log(&self, level: Level, message: &str) {
        log(level, message)
    }

    fn increment_metric(&self, id: MetricId, delta: i64) {
        let _ = abi::increment_metric(id.0, delta);
    }

    fn record_metric(&self, id: MetricId, value: u64) {
        let _ = abi::record_metric(id.0, value);
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> HostResult<MetricId> {
        define_metric(kind, name)
    }

    fn vm_memory_bytes(&self) -> Option<u64> {
        let pages = u64::try_from(core::arch::wasm32::memory_size(0)).ok()?;
        pages.checked_mul(65536)
    }

    fn http_call(
        &mut self,
        cluster: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> HostResult<u32> {
        abi::http_call(cluster, headers, body, timeout_ms(timeout))
    }

    fn call_response_headers(&self) -> Headers {
        abi::get_map(MapType::HttpCallResponseHeaders)
    }

    fn call_response_body(&self, size: usize) -> Option<Vec<u8>> {
        abi::get_buffer(BufferType::HttpCallResponseBody, 0, size)
    }

    fn call_response_trailers(&self) -> Headers {
        abi::get_map(MapType::HttpCallResponseTrailers)
    }

    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        abi::get_shared_data(key)
    }

    fn set_shared_data(&mut self, key: &str, value: &[u8], cas: u32) -> HostResult<()> {
        abi::set_shared_data(key, value, cas)
    }
}

impl RootHost for AbiHost {
    fn set_effective_context(&mut self, context_id: u32) -> HostResult<()> {
        abi::set_effective_context(context_id)
    }
}
