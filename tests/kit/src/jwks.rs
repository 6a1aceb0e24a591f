//! A JWKS server with behaviour a test controls while Envoy fetches from it: serve a key set,
//! rotate to another, fail with 500, answer garbage, or hang; and count every fetch.
//!
//! Paths: `/jwks.json` (the key set, subject to the [`JwksMode`]) and
//! `/.well-known/openid-configuration` (always served: `issuer` and `jwks_uri`). Anything else
//! is 404. It runs in-process on its own thread and runtime, so sync and async tests can use it.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::error::KitResult;
use crate::http_server;
use crate::http_server::ServerThread;

/// How `/jwks.json` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksMode {
    /// 200 with the current key set.
    Serve,
    /// 500 with a short text body.
    Error500,
    /// 200 `application/json` whose body is not JSON.
    Garbage,
    /// Never answers (until the server stops): the fetcher's timeout must fire.
    Hang,
}

/// The server's mutable state.
#[derive(Debug)]
struct State {
    jwks: String,
    mode: JwksMode,
    issuer: String,
    base_url: String,
    jwks_requests: u64,
    discovery_requests: u64,
}

#[derive(Debug, Clone)]
struct Shared(Arc<Mutex<State>>);

impl Shared {
    /// The state; a poisoned lock still holds usable data (counters and strings).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running JWKS server; stopped (and its hung requests dropped) on drop.
#[derive(Debug)]
pub struct JwksServer {
    server: ServerThread,
    state: Shared,
}

impl JwksServer {
    /// Starts serving `jwks` (a JWKS JSON document) on 127.0.0.1 at a free port.
    pub fn start(jwks: &str) -> KitResult<Self> {
        Self::start_at("127.0.0.1:0", jwks)
    }

    /// Starts serving `jwks` on `listen` (`127.0.0.1:PORT`).
    pub fn start_at(listen: &str, jwks: &str) -> KitResult<Self> {
        let state = Shared(Arc::new(Mutex::new(State {
            jwks: jwks.to_owned(),
            mode: JwksMode::Serve,
            issuer: String::new(),
            base_url: String::new(),
            jwks_requests: 0,
            discovery_requests: 0,
        })));
        let served = state.clone();
        // Dropping the server's runtime cancels connections still hanging.
        let server = ServerThread::spawn("jwks server", listen, |listener, stopped| {
            serve(listener, served, async {
                let _ = stopped.await;
            })
        })?;
        {
            let base = format!("http://{}", server.addr());
            let mut s = state.lock();
            s.issuer = base.clone();
            s.base_url = base;
        }
        Ok(JwksServer { server, state })
    }

    /// The listening address (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT`: also the default issuer.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// `http://127.0.0.1:PORT/jwks.json`.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks.json", self.base_url())
    }

    /// Replaces the key set (key rotation); later fetches get the new one.
    pub fn set_jwks(&self, jwks: &str) {
        self.state.lock().jwks = jwks.to_owned();
    }

    /// Changes how `/jwks.json` answers.
    pub fn set_mode(&self, mode: JwksMode) {
        self.state.lock().mode = mode;
    }

    /// Changes the `issuer` of the discovery document.
    pub fn set_issuer(&self, issuer: &str) {
        self.state.lock().issuer = issuer.to_owned();
    }

    /// How many requests reached `/jwks.json` (whatever the mode).
    pub fn jwks_requests(&self) -> u64 {
        self.state.lock().jwks_requests
    }

    /// How many requests reached `/.well-known/openid-configuration`.
    pub fn discovery_requests(&self) -> u64 {
        self.state.lock().discovery_requests
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    state: Shared,
    shutdown: impl Future<Output = ()>,
) {
    let handler = move |req: Request<Incoming>| {
        let state = state.clone();
        async move { answer(req.uri().path(), &state).await }
    };
    http_server::serve(listener, handler, shutdown).await;
}

async fn answer(path: &str, state: &Shared) -> Response<Full<Bytes>> {
    match path {
        "/jwks.json" => {
            let (mode, jwks) = {
                let mut s = state.lock();
                s.jwks_requests += 1;
                (s.mode, s.jwks.clone())
            };
            match mode {
                JwksMode::Serve => http_server::response(200, "application/json", jwks),
                JwksMode::Error500 => {
                    http_server::response(500, "text/plain", "jwks: internal error\n")
                }
                JwksMode::Garbage => {
                    http_server::response(200, "application/json", "{\"keys\": [not json")
                }
                JwksMode::Hang => std::future::pending().await,
            }
        }
        "/.well-known/openid-configuration" => {
            let doc = {
                let mut s = state.lock();
                s.discovery_requests += 1;
                serde_json::json!({
                    "issuer": s.issuer,
                    "jwks_uri": format!("{}/jwks.json", s.base_url),
                })
            };
            http_server::response(200, "application/json", doc.to_string())
        }
        _ => http_server::response(404, "text/plain", "not found\n"),
    }
}
