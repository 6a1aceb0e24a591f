//! The fuzz targets' fake proxy: header maps, bodies, a recorded local reply, HTTP calls, and
//! Envoy's refusals where the filter must not rely on a change (a body may only be replaced in
//! its own body callback, or in the response trailers callback for the response body).
//! Deliberately small and separate from the test suite's `FakeHost` (tests/common), whose
//! fixtures pull in dependencies the fuzz crate does not have.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshgate::host::{
    BodyKind, Headers, Host, HostError, HostResult, Level, MapKind, MetricId, MetricKind, RootHost,
};

/// Which callback the proxy is in (what it allows changing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InCallback {
    #[default]
    Other,
    RequestBody,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
}

#[derive(Default)]
pub struct FuzzHost {
    pub request_headers: Headers,
    pub request_trailers: Headers,
    pub response_headers: Headers,
    pub response_trailers: Headers,
    pub request_body: Vec<u8>,
    pub response_body: Vec<u8>,
    pub now_secs: u64,
    pub callback: InCallback,
    /// Every local reply sent: status, headers, body.
    pub replies: Vec<(u16, Headers, Vec<u8>)>,
    /// HTTP calls made: cluster, headers, body.
    pub calls: Vec<(String, Headers, Vec<u8>)>,
    /// The reply the next call-response callback reads.
    pub call_reply: (Headers, Vec<u8>, Headers),
    pub metric_names: RefCell<Vec<String>>,
    pub property_route: Option<Vec<u8>>,
}

impl FuzzHost {
    fn map(&self, map: MapKind) -> &Headers {
        match map {
            MapKind::RequestHeaders => &self.request_headers,
            MapKind::RequestTrailers => &self.request_trailers,
            MapKind::ResponseHeaders => &self.response_headers,
            MapKind::ResponseTrailers => &self.response_trailers,
        }
    }

    fn map_mut(&mut self, map: MapKind) -> &mut Headers {
        match map {
            MapKind::RequestHeaders => &mut self.request_headers,
            MapKind::RequestTrailers => &mut self.request_trailers,
            MapKind::ResponseHeaders => &mut self.response_headers,
            MapKind::ResponseTrailers => &mut self.response_trailers,
        }
    }
}

impl Host for FuzzHost {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + self.now_secs)
    }
    fn headers(&self, map: MapKind) -> Headers {
        self.map(map).clone()
    }
    fn header(&self, map: MapKind, name: &str) -> Option<String> {
        meshgate::host::find_header(self.map(map), name).map(str::to_string)
    }
    fn set_header(&mut self, map: MapKind, name: &str, value: Option<&str>) -> HostResult<()> {
        let m = self.map_mut(map);
        m.retain(|(k, _)| k != name);
        if let Some(v) = value {
            m.push((name.to_string(), v.to_string()));
        }
        Ok(())
    }
    fn add_header(&mut self, map: MapKind, name: &str, value: &str) -> HostResult<()> {
        self.map_mut(map)
            .push((name.to_string(), value.to_string()));
        Ok(())
    }
    fn set_headers(&mut self, map: MapKind, headers: &[(String, String)]) -> HostResult<()> {
        *self.map_mut(map) = headers.to_vec();
        Ok(())
    }
    fn body(&self, kind: BodyKind, start: usize, size: usize) -> Option<Vec<u8>> {
        let b = match kind {
            BodyKind::Request => &self.request_body,
            BodyKind::Response => &self.response_body,
        };
        b.get(start..start.saturating_add(size).min(b.len()))
            .map(<[u8]>::to_vec)
    }
    fn set_body(&mut self, kind: BodyKind, bytes: &[u8]) -> HostResult<()> {
        let allowed = match kind {
            BodyKind::Request => self.callback == InCallback::RequestBody,
            BodyKind::Response => matches!(
                self.callback,
                InCallback::ResponseBody | InCallback::ResponseTrailers
            ),
        };
        if !allowed {
            return Err(HostError("BadArgument".into()));
        }
        match kind {
            BodyKind::Request => self.request_body = bytes.to_vec(),
            BodyKind::Response => self.response_body = bytes.to_vec(),
        }
        Ok(())
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        match path {
            ["xds", "route_name"] => self.property_route.clone(),
            _ => None,
        }
    }
    fn set_property(&mut self, _path: &[&str], _value: &[u8]) -> HostResult<()> {
        Ok(())
    }
    fn send_response(
        &mut self,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> HostResult<()> {
        self.replies.push((status, headers.to_vec(), body.to_vec()));
        Ok(())
    }
    fn resume_request(&mut self) {}
    fn resume_response(&mut self) {}
    fn log(&self, _level: Level, _message: &str) {}
    fn increment_metric(&self, _id: MetricId, _delta: i64) {}
    fn record_metric(&self, _id: MetricId, _value: u64) {}
    fn define_metric(&self, _kind: MetricKind, name: &str) -> HostResult<MetricId> {
        let mut names = self.metric_names.borrow_mut();
        names.push(name.to_string());
        Ok(MetricId(u32::try_from(names.len()).unwrap_or(u32::MAX)))
    }
    fn http_call(
        &mut self,
        cluster: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
        _timeout: Duration,
    ) -> HostResult<u32> {
        self.calls.push((
            cluster.to_string(),
            headers.to_vec(),
            body.unwrap_or_default().to_vec(),
        ));
        Ok(u32::try_from(self.calls.len()).unwrap_or(u32::MAX))
    }
    fn call_response_headers(&self) -> Headers {
        self.call_reply.0.clone()
    }
    fn call_response_body(&self, size: usize) -> Option<Vec<u8>> {
        let b = &self.call_reply.1;
        b.get(..size.min(b.len())).map(<[u8]>::to_vec)
    }
    fn call_response_trailers(&self) -> Headers {
        self.call_reply.2.clone()
    }
}

impl RootHost for FuzzHost {
    fn set_effective_context(&mut self, _context_id: u32) -> HostResult<()> {
        Ok(())
    }
}
