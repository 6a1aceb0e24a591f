//! The proxy's shared data: one process-wide store (Proxy-Wasm's was per process too, shared
//! by every VM of the plugin), with the same compare-and-swap tokens.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::host::{HostError, HostResult};

type Store = Mutex<HashMap<String, (Vec<u8>, u32)>>;

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| Mutex::new(HashMap::new()))
}

pub fn get(key: &str) -> Option<(Vec<u8>, u32)> {
    let map = store().lock().unwrap_or_else(|p| p.into_inner());
    map.get(key).cloned()
}

/// Store `value` if `cas` is still the entry's token (0: unconditionally).
pub fn set(key: &str, value: &[u8], cas: u32) -> HostResult<()> {
    let mut map = store().lock().unwrap_or_else(|p| p.into_inner());
    let current = map.get(key).map(|(_, c)| *c);
    if cas != 0 && current != Some(cas) {
        return Err(HostError(format!(
            "shared data {key}: changed by another worker"
        )));
    }
    let next = current.unwrap_or(0).wrapping_add(1).max(1);
    map.insert(key.to_string(), (value.to_vec(), next));
    Ok(())
}
