//! A small Rate Limit Service speaking Envoy's v3 RLS gRPC protocol
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`, the subset in
//! `tests/kit/proto`), what `envoyproxy/ratelimit` serves in production: one fixed-window
//! counter per domain and descriptor, every descriptor limited to `requests` per `window`;
//! over it, `OVER_LIMIT` with the time until the window resets. It runs in-process on its own
//! thread and runtime, and counts the calls it answered.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::KitResult;
use crate::http_server::ServerThread;

/// The generated RLS types and service.
#[allow(
    clippy::all,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/rls.rs"));
}

use proto::envoy::service::ratelimit::v3::rate_limit_response::{
    rate_limit::Unit, Code, DescriptorStatus, RateLimit,
};
use proto::envoy::service::ratelimit::v3::rate_limit_service_server::{
    RateLimitService, RateLimitServiceServer,
};
use proto::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};

#[derive(Debug, Default)]
struct State {
    /// (domain, descriptor as `k=v,k=v`) -> (window start, hits).
    windows: HashMap<(String, String), (Instant, u32)>,
    calls: u64,
    /// The descriptors of every call, in order (`k=v,k=v`).
    seen: Vec<String>,
}

#[derive(Debug, Clone)]
struct Limiter {
    requests: u32,
    window: Duration,
    state: Arc<Mutex<State>>,
}

#[tonic::async_trait]
impl RateLimitService for Limiter {
    async fn should_rate_limit(
        &self,
        request: tonic::Request<RateLimitRequest>,
    ) -> Result<tonic::Response<RateLimitResponse>, tonic::Status> {
        let req = request.into_inner();
        let hits = req.hits_addend.max(1);
        let now = Instant::now();
        let mut state = self
            .state
            .lock()
            .map_err(|_| tonic::Status::internal("state poisoned"))?;
        state.calls += 1;
        let mut statuses = Vec::new();
        let mut overall = Code::Ok;
        for d in &req.descriptors {
            let key = d
                .entries
                .iter()
                .map(|e| format!("{}={}", e.key, e.value))
                .collect::<Vec<_>>()
                .join(",");
            state.seen.push(key.clone());
            let slot = state
                .windows
                .entry((req.domain.clone(), key))
                .or_insert((now, 0));
            if now.duration_since(slot.0) >= self.window {
                *slot = (now, 0);
            }
            slot.1 = slot.1.saturating_add(hits);
            let over = slot.1 > self.requests;
            let reset = self.window.saturating_sub(now.duration_since(slot.0));
            if over {
                overall = Code::OverLimit;
            }
            statuses.push(DescriptorStatus {
                code: if over { Code::OverLimit } else { Code::Ok } as i32,
                current_limit: Some(RateLimit {
                    name: "kit".into(),
                    requests_per_unit: self.requests,
                    unit: unit(self.window) as i32,
                }),
                limit_remaining: self.requests.saturating_sub(slot.1),
                duration_until_reset: Some(prost_types::Duration {
                    seconds: i64::try_from(reset.as_secs()).unwrap_or(0) + 1,
                    nanos: 0,
                }),
            });
        }
        Ok(tonic::Response::new(RateLimitResponse {
            overall_code: overall as i32,
            statuses,
        }))
    }
}

fn unit(window: Duration) -> Unit {
    match window.as_secs() {
        0..=1 => Unit::Second,
        2..=60 => Unit::Minute,
        61..=3600 => Unit::Hour,
        _ => Unit::Day,
    }
}

/// A running rate limit service; stopped on drop.
#[derive(Debug)]
pub struct RlsServer {
    server: ServerThread,
    state: Arc<Mutex<State>>,
}

impl RlsServer {
    /// Serves on 127.0.0.1 at a free port: every descriptor may make `requests` calls per
    /// `window`.
    pub fn start(requests: u32, window: Duration) -> KitResult<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let limiter = Limiter {
            requests,
            window,
            state: state.clone(),
        };
        let server = ServerThread::spawn("rls", "127.0.0.1:0", |listener, stopped| async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(RateLimitServiceServer::new(limiter))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
        })?;
        Ok(RlsServer { server, state })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// How many `ShouldRateLimit` calls were answered.
    pub fn calls(&self) -> u64 {
        self.state.lock().map(|s| s.calls).unwrap_or(0)
    }

    /// The descriptors of every call (`k=v,k=v`), in order.
    pub fn seen(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.seen.clone())
            .unwrap_or_default()
    }
}
