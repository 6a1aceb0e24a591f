//! meshgate's test kit: the demo gRPC backend, a REST echo backend, a controllable JWKS server,
//! and the harness end-to-end tests use to run real Envoy against them. Host-only (never built
//! for wasm); every server binds 127.0.0.1.
//!
//! # Binaries
//! - `demo-backend --listen 127.0.0.1:PORT [--services payments,wallets] [--name NAME]
//!   [--misbehave MODE]`: both
//!   services of `proto/meshgate/demo/v1/payments.proto` over HTTP/2 cleartext, with seeded,
//!   deterministic data (`pay_001`..`pay_003` of `merchants/acme`, `pay_004` of
//!   `merchants/globex`, wallets `w_001` alice EUR 50.00, `w_002` bob USD 0, entries
//!   `wallets/w_001/entries/e_001|e_002`; created payments are `pay_101`, `pay_102`...).
//!   Request metadata hooks: `x-demo-fail`, `x-demo-fail-message`, `x-demo-fail-details`,
//!   `x-demo-delay-ms`, `x-demo-misbehave`; reporting headers `x-demo-backend`,
//!   `x-demo-echo-*`, `x-demo-saw-*`, `x-demo-received-headers` (see [`backend::hooks`] and
//!   [`backend::misbehave`]).
//! - `rest-backend --listen 127.0.0.1:PORT [--name NAME]`: HTTP/1.1 + h2c, answers every
//!   request with a JSON description of it (see [`rest`]).
//! - `jwks-server --listen 127.0.0.1:PORT --jwks FILE [--issuer URL]`: a static JWKS and OIDC
//!   discovery document; tests use the controllable in-process [`jwks::JwksServer`].
//!
//! All three print `listening on ADDR` when ready and exit 0 on SIGTERM/SIGINT (within 300 ms,
//! even with clients still connected).
//!
//! # Harness ([`harness`])
//! ```no_run
//! # async fn demo() -> meshgate_kit::KitResult<()> {
//! use meshgate_kit::harness::*;
//! let backend = start_backend("b1", "payments,wallets")?; // child process, killed on drop
//! let yaml = format!("...a bootstrap naming {} and free_port()s...", backend.addr);
//! let envoy = start_envoy(&yaml)?; // waits for /ready = LIVE and open listeners
//! let mut client = payments_client(envoy.listener_addr()).await?;
//! let reply = http1_client().get(&envoy.url("/v1/payments/pay_001"), &[]).await?;
//! let count = envoy.stat("cluster.backend.upstream_rq_total");
//! # Ok(()) }
//! ```
//! TLS ([`tls`]): a throwaway CA and certificates from `tests/tools/tls-certs.sh`, and `curl` as
//! the TLS client. [`otlp::OtlpReceiver`]: an in-process OTLP/gRPC trace receiver. The demo
//! backend also serves `grpc.health.v1.Health/Check`.
//!
//! A whole gateway is one [`harness::GatewayBuilder`] for every suite: `demo()` (the demo
//! YAML), `demo_with(yaml)` (options merged over it), `demo_doc(tag, json)` (a suite's own
//! document over the demo protos and upstreams), then upstreams, routes, clusters, access logs
//! and Envoy settings, and `start()`. Keys and tokens come from the `meshgate-fixtures` crate
//! (tests/fixtures), shared with the unit tests.
//!
//! Environment: `MESHGATE_ENVOY` (Envoy binary), `MESHGATE_ENVOY_START_TIMEOUT_S` (default 30),
//! `MESHGATE_KIT_BIN_DIR` (use prebuilt kit binaries and `meshgate` instead of building them),
//! `MESHGATE_KIT_TMP` (where process logs go), `MESHGATE_KIT_KEEP_LOGS` (keep them after
//! passing tests too), `MESHGATE_FLAVOUR` (`wasm`, the default, or `native`: which build of
//! meshgate Envoy loads, see [`harness::flavour`]), `MESHGATE_NATIVE` (the native module,
//! default `build/libmeshgate_native.so`).

pub mod backend;
pub mod cli;
pub mod error;
pub mod harness;
pub mod http_server;
pub mod identity;
pub mod jwks;
pub mod otlp;
pub mod proto;
pub mod rest;
pub mod rls;
pub mod tls;

pub use error::{KitError, KitResult};
