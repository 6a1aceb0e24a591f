//! The root's tick. Proxy-Wasm ticked each VM every 50 ms; a dynamic module has no timer on a
//! worker thread, only per-stream schedulers that post an event to the stream's worker. So:
//!
//! - while a worker has requests waiting for keys or streams holding bytes, one of its live
//!   streams (the carrier) gets an Envoy scheduler, and one process-wide thread commits an
//!   event to each worker's carrier every [`TICK`]; the event runs the worker's root tick on
//!   the worker thread;
//! - otherwise the root ticks lazily, at the first request after [`TICK`];
//! - the same thread commits an event to each filter configuration's own scheduler (a
//!   configuration with a remote JWKS) every [`TICK`]: it ticks the configuration's JWKS keeper
//!   on the main thread (`keeper.rs`), so JWKS refreshes follow the clock, not traffic.
//!
//! The carrier map is behind a mutex that the committing thread holds while it commits, and a
//! worker (or the configuration's destruction) removes its entry under the same mutex before it
//! deletes the scheduler, so a commit never reaches a deleted scheduler.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::abi::{self, FilterEnvoyPtr};
use crate::filter::TICK;

/// A scheduler pointer, committed to from the ticking thread (Envoy: "safe to call from any
/// thread"): a stream's (its event runs on the stream's worker), or a filter configuration's
/// (its event runs on the main thread: the JWKS keeper, `keeper.rs`).
enum Carrier {
    Stream(usize),
    Config(usize),
}

/// (worker thread, configuration id) -> its carrier's scheduler; (`None`, configuration id) ->
/// the configuration's own scheduler.
type Key = (Option<std::thread::ThreadId>, u64);

fn carriers() -> &'static Mutex<HashMap<Key, Carrier>> {
    static MAP: OnceLock<Mutex<HashMap<Key, Carrier>>> = OnceLock::new();
    MAP.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("meshgate-tick".into())
            .spawn(tick_loop);
        if spawned.is_err() {
            super::host_impl::log(
                crate::host::Level::Error,
                "meshgate: no tick thread: requests waiting for keys wait until the next request",
            );
        }
        Mutex::new(HashMap::new())
    })
}

fn tick_loop() {
    loop {
        std::thread::sleep(TICK.max(Duration::from_millis(10)));
        let map = carriers().lock().unwrap_or_else(|p| p.into_inner());
        for c in map.values() {
            // SAFETY: a scheduler still registered has not been deleted (see the module doc).
            unsafe {
                match c {
                    Carrier::Stream(s) => {
                        abi::envoy_dynamic_module_callback_http_filter_scheduler_commit(
                            *s as abi::SchedulerPtr,
                            0,
                        )
                    }
                    Carrier::Config(s) => {
                        abi::envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
                            *s as abi::ConfigSchedulerPtr,
                            0,
                        )
                    }
                }
            };
        }
    }
}

/// Make `envoy` (stream `context` of configuration `config`) the carrier of that
/// configuration's root on this thread, if it has none.
pub fn arm(config: u64, context: u32, envoy: FilterEnvoyPtr) {
    if super::worker::with(|w| w.carriers.contains_key(&config)) {
        return;
    }
    // SAFETY: a live filter of this thread.
    let scheduler = unsafe { abi::envoy_dynamic_module_callback_http_filter_scheduler_new(envoy) };
    if scheduler.is_null() {
        return;
    }
    super::worker::with(|w| w.carriers.insert(config, (context, scheduler as usize)));
    let mut map = carriers().lock().unwrap_or_else(|p| p.into_inner());
    map.insert(
        (Some(std::thread::current().id()), config),
        Carrier::Stream(scheduler as usize),
    );
}

/// Stop the ticks of configuration `config`'s root on this thread (nothing waits any more, or
/// the carrier goes away).
pub fn disarm(config: u64) {
    let Some((_, scheduler)) = super::worker::with(|w| w.carriers.remove(&config)) else {
        return;
    };
    {
        let mut map = carriers().lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&(Some(std::thread::current().id()), config));
    }
    // SAFETY: created by `arm` on this thread, no longer reachable by the ticking thread.
    unsafe {
        abi::envoy_dynamic_module_callback_http_filter_scheduler_delete(
            scheduler as abi::SchedulerPtr,
        )
    };
}

/// Tick configuration `config`'s own scheduler every [`TICK`] (made by Envoy for it: its
/// events run on the main thread).
pub fn arm_config(config: u64, scheduler: abi::ConfigSchedulerPtr) {
    let key = (None, config);
    let mut map = carriers().lock().unwrap_or_else(|p| p.into_inner());
    map.insert(key, Carrier::Config(scheduler as usize));
}

/// Stop ticking configuration `config`'s scheduler and delete it (after this, no commit
/// reaches it: removed under the lock the ticking thread commits under).
pub fn disarm_config(config: u64) {
    let key = (None, config);
    let removed = {
        let mut map = carriers().lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&key)
    };
    if let Some(Carrier::Config(scheduler)) = removed {
        // SAFETY: made by `config_scheduler_new` for this configuration, no longer reachable
        // by the ticking thread.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
                scheduler as abi::ConfigSchedulerPtr,
            )
        };
    }
}
