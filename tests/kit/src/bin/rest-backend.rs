//! `rest-backend --listen 127.0.0.1:PORT [--name NAME]`
//!
//! A plain HTTP/1.1 (and h2c) server answering every request with a JSON description of it.
//! Prints `listening on ADDR` when ready; exits on SIGTERM or SIGINT.
use std::process::ExitCode;

use meshgate_kit::cli::{shutdown_with_grace, Args};

/// How long open connections may delay the exit after SIGTERM/SIGINT.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rest-backend: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args = Args::parse(std::env::args().skip(1), &["listen", "name"])?;
    let listen = args.required("listen")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("bind {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (graceful, deadline) = shutdown_with_grace(SHUTDOWN_GRACE);
    println!("listening on {addr}");
    let name = args.get("name").unwrap_or("rest");
    tokio::select! {
        () = meshgate_kit::rest::serve(listener, name, graceful) => {}
        () = deadline => {}
    }
    Ok(())
}
