//! `demo-identity --dir DIR --issuer URL --audience AUD --subject SUB [--ttl-seconds N]`
//!
//! The demo issuer of `make run`: generates its P-256 key into `DIR/key.jwk` at first run (mode
//! 0600; never committed), writes the public `DIR/jwks.json` (served by `jwks-server`), and
//! writes a token for `SUB` valid for `--ttl-seconds` (default 86400) to `DIR/token` and stdout.
use std::path::Path;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use meshgate_kit::cli::Args;
use meshgate_kit::identity;
use serde_json::json;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("demo-identity: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = Args::parse(
        std::env::args().skip(1),
        &["dir", "issuer", "audience", "subject", "ttl-seconds"],
    )?;
    let dir = Path::new(args.required("dir")?);
    let ttl: u64 = args
        .get("ttl-seconds")
        .unwrap_or("86400")
        .parse()
        .map_err(|_| "--ttl-seconds: not a number".to_string())?;
    let key = identity::load_or_create(dir)?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write("jwks.json", &identity::jwks(&key))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let claims = json!({
        "iss": args.required("issuer")?,
        "aud": args.required("audience")?,
        "sub": args.required("subject")?,
        "iat": now,
        "exp": now + ttl,
    });
    let token = identity::sign(&key, &claims);
    write("token", &format!("{token}\n"))?;
    println!("{token}");
    Ok(())
}
