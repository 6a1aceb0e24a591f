//! `jwks-server --listen 127.0.0.1:PORT --jwks FILE [--issuer URL]`
//!
//! Serves a JWKS file at `/jwks.json` and an OIDC discovery document at
//! `/.well-known/openid-configuration` (for `make run` with a remote key set). Tests use the
//! in-process [`meshgate_kit::jwks::JwksServer`] instead, which they can control.
use std::process::ExitCode;

use meshgate_kit::cli::{shutdown_signal, Args};
use meshgate_kit::jwks::JwksServer;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("jwks-server: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args = Args::parse(std::env::args().skip(1), &["listen", "jwks", "issuer"])?;
    let listen = args.required("listen")?;
    let file = args.required("jwks")?;
    let jwks = std::fs::read_to_string(file).map_err(|e| format!("read {file}: {e}"))?;
    let server = JwksServer::start_at(listen, &jwks).map_err(|e| e.to_string())?;
    if let Some(issuer) = args.get("issuer") {
        server.set_issuer(issuer);
    }
    let stop = shutdown_signal();
    println!("listening on {}", server.addr());
    stop.await;
    Ok(())
}
