//! `meshgate apikey NAME --operation OP ... [--quota N/UNIT]`: a new API key for a partner.
//! The key is printed once (a comment line, or `--key-file`); the entry to paste under
//! `auth.api_keys.clients` holds only its SHA-256.

use std::io::Read;
use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::auth::apikey::{
    compile_quota, key_sha256, valid_client_name, ApiClientInput, QuotaInput,
};

/// Prefix of generated keys: easy to recognise in a leak scanner.
pub const KEY_PREFIX: &str = "mgk_";

#[derive(Debug, Clone, clap::Args)]
pub struct ApikeyArgs {
    /// The client's name (`[A-Za-z0-9_-]`, at most 64): its header value and metric label.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// An operation the client may call (`pkg.Service.Method`, `pkg.Service.*`, `*`);
    /// repeat for several.
    #[arg(long = "operation", value_name = "OP", required = true)]
    pub operations: Vec<String>,
    /// The client's quota, `REQUESTS/UNIT` (`100/minute`; unit second, minute, hour, day).
    #[arg(long, value_name = "N/UNIT")]
    pub quota: Option<String>,
    /// Write the key to this file (mode 0600) instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

pub fn run(args: &ApikeyArgs) -> Result<(), String> {
    let key = new_key()?;
    let entry = entry(args, &key)?;
    let yaml = serde_yaml_ng::to_string(&vec![entry]).map_err(|e| e.to_string())?;
    let mut out = String::new();
    match &args.key_file {
        Some(path) => {
            write_secret(path, &key)?;
            out.push_str(&format!(
                "# The key of {} is in {} (shown nowhere else).\n",
                args.name,
                path.display()
            ));
        }
        None => out.push_str(&format!(
            "# The key of {} (shown once; only its SHA-256 is kept below):\n#   {key}\n",
            args.name
        )),
    }
    out.push_str("# Add under auth.api_keys.clients:\n");
    out.push_str(&yaml);
    print!("{out}");
    Ok(())
}

/// The configuration entry for `key`, checked as the filter will check it.
pub fn entry(args: &ApikeyArgs, key: &str) -> Result<ApiClientInput, String> {
    if !valid_client_name(&args.name) {
        return Err(format!(
            "client name {:?}: use 1-64 of [A-Za-z0-9_-]",
            args.name
        ));
    }
    let quota = args.quota.as_deref().map(parse_quota).transpose()?;
    Ok(ApiClientInput {
        name: args.name.clone(),
        key_sha256: key_sha256(key),
        operations: args.operations.clone(),
        quota,
        revoked: false,
    })
}

/// `100/minute` -> a checked quota.
pub fn parse_quota(s: &str) -> Result<QuotaInput, String> {
    let (n, unit) = s
        .split_once('/')
        .ok_or_else(|| format!("--quota {s:?}: write REQUESTS/UNIT, like 100/minute"))?;
    let q = QuotaInput {
        requests: n
            .trim()
            .parse()
            .map_err(|_| format!("--quota {s:?}: {n:?} is not a count"))?,
        unit: unit.trim().to_string(),
    };
    compile_quota(&q).map_err(|e| format!("--quota {s:?}: {e}"))?;
    Ok(q)
}

/// 32 random bytes from the operating system, base64url, with [`KEY_PREFIX`].
pub fn new_key() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

fn write_secret(path: &PathBuf, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
        .and_then(|mut f| f.write_all(format!("{text}\n").as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(name: &str, quota: Option<&str>) -> ApikeyArgs {
        ApikeyArgs {
            name: name.into(),
            operations: vec!["meshgate.demo.v1.Payments.*".into()],
            quota: quota.map(str::to_string),
            key_file: None,
        }
    }

    #[test]
    fn keys_are_random_and_entries_hold_only_their_hash() {
        let (a, b) = (new_key().unwrap(), new_key().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 43);
        let e = entry(&args("acme", Some("20/minute")), &a).unwrap();
        assert_eq!(e.key_sha256, key_sha256(&a));
        let yaml = serde_yaml_ng::to_string(&e).unwrap();
        assert!(!yaml.contains(&a), "{yaml}");
        assert!(
            yaml.contains("requests: 20") && yaml.contains("unit: minute"),
            "{yaml}"
        );
    }

    #[test]
    fn bad_names_and_quotas_are_refused() {
        assert!(entry(&args("a b", None), "k").is_err());
        for q in ["20", "x/minute", "20/week", "0/second"] {
            assert!(parse_quota(q).is_err(), "{q}");
        }
    }
}
