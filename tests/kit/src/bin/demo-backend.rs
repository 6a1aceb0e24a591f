//! `demo-backend --listen 127.0.0.1:PORT [--services payments,wallets] [--name NAME]
//!  [--misbehave bad-frame|truncated|reset|stall|compressed|huge|no-trailers|short-frame|html|gzip|no-data]`
//!
//! The demo gRPC backend (HTTP/2 cleartext). Prints `listening on ADDR` once it accepts
//! connections; exits cleanly on SIGTERM or SIGINT.
use std::process::ExitCode;

use meshgate_kit::backend::{serve, BackendOptions};
use meshgate_kit::cli::{shutdown_with_grace, Args};

/// How long open connections may delay the exit after SIGTERM/SIGINT.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("demo-backend: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args = Args::parse(
        std::env::args().skip(1),
        &["listen", "services", "name", "misbehave"],
    )?;
    let listen = args.required("listen")?;
    let mut options = BackendOptions::new(args.get("name").unwrap_or("demo"));
    if let Some(list) = args.get("services") {
        options = options.with_services(list)?;
    }
    if let Some(mode) = args.get("misbehave") {
        options.misbehave = Some(mode.parse()?);
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("bind {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (graceful, deadline) = shutdown_with_grace(SHUTDOWN_GRACE);
    println!("listening on {addr}");
    tokio::select! {
        served = serve(listener, options, graceful) => served.map_err(|e| format!("serve: {e}")),
        () = deadline => Ok(()),
    }
}
