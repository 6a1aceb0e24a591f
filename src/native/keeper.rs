//! The clock-driven JWKS keeper: what Proxy-Wasm's 50 ms tick did for remote keys, on a
//! thread that has a clock without traffic.
//!
//! A dynamic module has no timer on a worker thread without a stream, but a filter
//! configuration has its own Envoy scheduler whose events run on Envoy's main thread, and its
//! own HTTP callout streams (also on the main thread). So, per filter configuration with a
//! remote JWKS:
//!
//! - the tick thread (`ticker`) commits an event to the configuration's scheduler every
//!   [`crate::filter::TICK`]; on the main thread the event ticks a core root of the
//!   configuration (a [`Scheduler`] that never has streams, so only its JWKS schedule acts),
//!   which makes the fetches due (first keys, refresh at `cache_duration_seconds`, retries
//!   after failures) as configuration callout streams, and judges, counts and logs their
//!   replies, exactly as a wasm VM's root does;
//! - after each reply the keeper publishes every provider's key set in the configuration
//!   ([`Published`]: `Arc`s behind a mutex, and a generation bumped when one changed);
//! - each worker root takes the newest sets at its next request (an atomic load and a
//!   per-thread lookup when nothing changed, [`adopt`]) and, while the keeper runs, no longer refreshes at cache expiry
//!   itself ([`join`]); it still makes its own first fetch when the keeper has published
//!   nothing yet and its own unknown-`kid` refetches (requests wait for those), as each wasm
//!   VM does.
//!
//! Nothing here decides anything about keys: fetching, parsing, bounds, rotation and counting
//! are the core's. The keeper's core state is `thread_local!` on the main thread; only the
//! immutable `Arc<KeySet>`s cross threads.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::abi::{self, ConfigEnvoyPtr, EnvoyBuffer, HttpHeader, ModuleBuffer};
use super::callouts::{append_buffers, copy_headers};
use super::config::ModuleConfig;
use super::host_impl::{log, CallReply, NativeHost};
use super::ticker;
use crate::auth::keys::KeySet;
use crate::filter::Scheduler;
use crate::host::{HostError, HostResult, Level};

/// Key sets cross threads: they must be immutable and thread-safe (checked at compile time).
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<KeySet>();
};

/// The key sets a configuration's keeper accepted, for the worker roots.
#[derive(Default)]
pub struct Published {
    /// A keeper ticks this configuration (worker roots leave the refresh at expiry to it).
    running: AtomicBool,
    /// Bumped at each change of `sets` (0: nothing published yet).
    generation: AtomicU64,
    /// Per provider (the configuration's order): the keys in use, `None` before the first.
    sets: Mutex<Vec<Option<Arc<KeySet>>>>,
}

impl Published {
    fn publish(&self, sets: Vec<Option<Arc<KeySet>>>) {
        let mut held = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        let same = held.len() == sets.len()
            && held.iter().zip(&sets).all(|(a, b)| match (a, b) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            });
        if !same {
            *held = sets;
            self.generation.fetch_add(1, Ordering::Release);
        }
    }
}

/// The keeper of one configuration, on the main thread.
#[derive(Default)]
struct Keeper {
    root: Option<Rc<Scheduler>>,
    /// Callout streams in flight: Envoy's stream id -> the core's call token.
    calls: HashMap<u64, u32>,
    /// Their replies so far.
    replies: HashMap<u64, CallReply>,
    next_token: u32,
}

thread_local! {
    /// By configuration id. Only the main thread (Envoy's configuration events) fills it.
    static KEEPERS: RefCell<HashMap<u64, Keeper>> = RefCell::new(HashMap::new());
    /// What each worker root adopted last: configuration id -> generation.
    static ADOPTED: RefCell<HashMap<u64, u64>> = RefCell::new(HashMap::new());
}

fn with<R>(config: u64, f: impl FnOnce(&mut Keeper) -> R) -> R {
    KEEPERS.with(|k| f(k.borrow_mut().entry(config).or_default()))
}

/// `on_http_filter_config_new`: a configuration with a remote JWKS gets its scheduler, ticked
/// from now on.
pub fn start(config: &ModuleConfig) {
    if !config.remote_jwks {
        return;
    }
    // SAFETY: Envoy's configuration, alive for this hook.
    let scheduler = unsafe {
        abi::envoy_dynamic_module_callback_http_filter_config_scheduler_new(config.envoy)
    };
    if scheduler.is_null() {
        log(
            Level::Warn,
            "meshgate: no configuration scheduler: JWKS refreshes start with requests",
        );
        return;
    }
    // The first tick as soon as the main thread runs its loop (before Envoy reports ready), not
    // a tick period later: the first fetch starts where the wasm module's main-thread VM starts
    // its own (at configuration).
    // SAFETY: made just now for this configuration; deleted only by `stop`.
    unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_commit(scheduler, 0) };
    ticker::arm_config(config.id, scheduler);
    config.keys.running.store(true, Ordering::Release);
}

/// `on_http_filter_config_destroy`: no more ticks (the scheduler is deleted after the tick
/// thread lets go of it), and the keeper's state goes.
pub fn stop(config: &ModuleConfig) {
    ticker::disarm_config(config.id);
    let _ = KEEPERS.try_with(|k| k.borrow_mut().remove(&config.id));
}

/// A new worker root: while a keeper runs, its refresh at expiry is the keeper's, and the keys
/// the keeper already has are used at once (no first fetch of its own then).
pub fn join(config: &ModuleConfig, root: &Scheduler) {
    if config.keys.running.load(Ordering::Acquire) {
        root.vm().auth.borrow_mut().refresh_elsewhere();
        adopt(config, root);
    }
}

/// At a worker root's request or tick: take the keeper's newest key sets, if they changed
/// since this thread last looked.
pub fn adopt(config: &ModuleConfig, root: &Scheduler) {
    let generation = config.keys.generation.load(Ordering::Acquire);
    if generation == 0 {
        return;
    }
    let seen = ADOPTED.with(|a| a.borrow().get(&config.id).copied());
    if seen == Some(generation) {
        return;
    }
    let sets = config
        .keys
        .sets
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut auth = root.vm().auth.borrow_mut();
    for (provider, set) in sets.into_iter().enumerate() {
        if let Some(set) = set {
            auth.adopt_keys(provider, set);
        }
    }
    ADOPTED.with(|a| a.borrow_mut().insert(config.id, generation));
}

/// Publish what the keeper's root holds now.
fn publish(config: &ModuleConfig, root: &Scheduler) {
    let sets = root.vm().auth.borrow().key_sets();
    config.keys.publish(sets);
}

/// The configuration's scheduled event, on the main thread: the keeper's tick.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    _envoy: ConfigEnvoyPtr,
    module: *const c_void,
    _event_id: u64,
) {
    if module.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Envoy passes its configuration's module pointer only while it is alive.
        let config = unsafe { &*(module as *const ModuleConfig) };
        let mut host = NativeHost::new(std::ptr::null_mut(), config, true);
        let root = match with(config.id, |k| k.root.clone()) {
            Some(root) => root,
            None => {
                let Some(root) = Scheduler::compile(&mut host, &config.json) else {
                    return;
                };
                with(config.id, |k| k.root = Some(root.clone()));
                root
            }
        };
        root.on_tick(&mut host);
    }));
}

/// The keeper's HTTP call (the core's fetch) as a configuration callout stream.
pub fn send(
    config: &ModuleConfig,
    cluster: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> HostResult<u32> {
    let mut hs: Vec<HttpHeader> = headers.iter().map(|(k, v)| HttpHeader::of(k, v)).collect();
    let mut id = 0u64;
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    // SAFETY: Envoy's configuration, alive while its events run; Envoy copies headers and body.
    let status = unsafe {
        abi::envoy_dynamic_module_callback_http_filter_config_start_http_stream(
            config.envoy,
            &mut id,
            ModuleBuffer::of(cluster.as_bytes()),
            hs.as_mut_ptr(),
            hs.len(),
            ModuleBuffer::of(body),
            true,
            ms,
        )
    };
    if status != abi::CALLOUT_SUCCESS {
        return Err(HostError(format!(
            "http call to cluster `{cluster}` refused (status {status})"
        )));
    }
    Ok(with(config.id, |k| {
        k.next_token = k.next_token.wrapping_add(1).max(1);
        k.calls.insert(id, k.next_token);
        k.next_token
    }))
}

/// Add to the reply being received on the keeper's stream `stream`.
fn collect(module: *const c_void, stream: u64, add: impl FnOnce(&mut CallReply)) {
    if module.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Envoy calls a configuration's stream hooks only while it is alive.
        let config = unsafe { &*(module as *const ModuleConfig) };
        with(config.id, |k| add(k.replies.entry(stream).or_default()));
    }));
}

/// The keeper's callout stream ended: its reply (none after a reset) to the keeper's root,
/// then the keys it holds to the workers.
fn finish(module: *const c_void, stream: u64, reset: bool) {
    if module.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `collect`.
        let config = unsafe { &*(module as *const ModuleConfig) };
        let (token, reply, root) = with(config.id, |k| {
            (
                k.calls.remove(&stream),
                k.replies.remove(&stream).unwrap_or_default(),
                k.root.clone(),
            )
        });
        let (Some(token), Some(root)) = (token, root) else {
            return;
        };
        let reply = if reset { CallReply::default() } else { reply };
        let (n, size) = (reply.headers.len(), reply.body.len());
        let mut host = NativeHost::new(std::ptr::null_mut(), config, true);
        host.reply = Some(reply);
        root.on_http_call_response(&mut host, token, n, size);
        publish(config, &root);
    }));
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_headers(
    _envoy: ConfigEnvoyPtr,
    module: *const c_void,
    stream: u64,
    headers: *const HttpHeader,
    size: usize,
    _end: bool,
) {
    // SAFETY: Envoy's array of `size` headers, valid for this hook.
    let copied = catch_unwind(|| unsafe { copy_headers(headers, size) }).unwrap_or_default();
    collect(module, stream, |r| r.headers = copied);
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_data(
    _envoy: ConfigEnvoyPtr,
    module: *const c_void,
    stream: u64,
    data: *const EnvoyBuffer,
    count: usize,
    _end: bool,
) {
    if data.is_null() {
        return;
    }
    // SAFETY: Envoy's array of `count` buffers, valid for this hook.
    collect(module, stream, |r| unsafe {
        append_buffers(&mut r.body, data, count)
    });
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_trailers(
    _envoy: ConfigEnvoyPtr,
    module: *const c_void,
    stream: u64,
    trailers: *const HttpHeader,
    size: usize,
) {
    // SAFETY: Envoy's array of `size` trailers, valid for this hook.
    let copied = catch_unwind(|| unsafe { copy_headers(trailers, size) }).unwrap_or_default();
    collect(module, stream, |r| r.trailers = copied);
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_complete(
    _envoy: ConfigEnvoyPtr,
    module: *const c_void,
    stream: u64,
) {
    finish(module, stream, false);
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_reset(
    _envoy: ConfigEnvoyPtr,
    module: *const c_void,
    stream: u64,
    _reason: u32,
) {
    finish(module, stream, true);
}
