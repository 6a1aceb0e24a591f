//! Host-side test support: a recording fake of the proxy, and the demo configuration.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use meshgate::host::{
    BodyKind, Headers, Host, HostError, HostResult, Level, MapKind, MetricId, MetricKind,
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
    fn resume_request(&mut self) {}
    fn resume_response(&mut self) {}
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
}

/// The demo gateway configuration (envoy/gateway.yaml), compiled as the filter would.
pub fn demo_config() -> meshgate::config::Config {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy/gateway.yaml");
    let json = meshgate::cli::compile_file(&path).expect("demo config compiles");
    meshgate::config::compile_json(json.as_bytes()).expect("demo config is valid")
}
