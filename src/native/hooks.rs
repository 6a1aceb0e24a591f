//! The exported event hooks (`envoy_dynamic_module_on_*`).

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use super::abi::{self, ConfigEnvoyPtr, EnvoyBuffer, FilterEnvoyPtr};
use super::callouts::resend_orphans;
use super::config::ModuleConfig;
use super::host_impl::{body_size, log, NativeHost};
use super::ticker;
use super::worker::{self, Deferred};
use crate::filter::{Callback, Scheduler, Stream, TICK};
use crate::host::{Action, BodyKind, Level};
use crate::status::{BodyFormat, Code, GatewayError};

/// The ABI version this module is written against (the PyPI Envoy 1.40 build's).
static ABI_VERSION: &[u8] = b"v0.2.0\0";

/// One stream: Envoy's filter, the configuration, the core's handle once the request started.
pub(super) struct NativeFilter {
    pub(super) envoy: FilterEnvoyPtr,
    pub(super) config: *const ModuleConfig,
    pub(super) context_id: u32,
    pub(super) stream: Option<Stream>,
    /// A hook of this stream panicked: the stream was answered, the core is left alone.
    pub(super) failed: bool,
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // One line through Envoy's log; the default hook's backtrace only with RUST_BACKTRACE.
        log(Level::Error, &format!("meshgate: panic: {info}"));
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            previous(info);
        }
    }));
    ABI_VERSION.as_ptr()
}

// ---- configuration -----------------------------------------------------------------------

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    envoy: ConfigEnvoyPtr,
    _name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> *const c_void {
    let made = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Envoy's buffer, valid for this hook.
        let json = unsafe { config.to_vec() };
        ModuleConfig::new(envoy, json)
    }));
    match made {
        Ok(Ok(c)) => {
            log(Level::Info, "meshgate: native module configured");
            let c = Box::new(c);
            super::keeper::start(&c);
            Box::into_raw(c) as *const c_void
        }
        Ok(Err(e)) => {
            log(
                Level::Error,
                &format!("meshgate: invalid configuration: {e}"),
            );
            std::ptr::null()
        }
        Err(_) => std::ptr::null(),
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
    if !config.is_null() {
        // SAFETY: made by `config_new` with `Box::into_raw`; Envoy destroys it once, after its
        // streams.
        let config = unsafe { Box::from_raw(config as *mut ModuleConfig) };
        let _ = catch_unwind(AssertUnwindSafe(|| super::keeper::stop(&config)));
        drop(config);
    }
}

/// Per-route configuration: not offered (routes switch meshgate off with `FilterConfig`, and
/// select a policy by route metadata, as with the wasm module).
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
    _name: EnvoyBuffer,
    _config: EnvoyBuffer,
) -> *const c_void {
    log(
        Level::Error,
        "meshgate: no per-route configuration (use route metadata or FilterConfig)",
    );
    std::ptr::null()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(_c: *const c_void) {}

// ---- stream lifecycle --------------------------------------------------------------------

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: *const c_void,
    envoy: FilterEnvoyPtr,
) -> *const c_void {
    let made = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the configuration `config_new` made; it outlives its streams.
        let config_id = unsafe { (*(config as *const ModuleConfig)).id };
        let context_id = worker::with(|w| {
            let id = w.new_context();
            w.streams.insert(id, (envoy, config_id));
            id
        });
        Box::into_raw(Box::new(NativeFilter {
            envoy,
            config: config as *const ModuleConfig,
            context_id,
            stream: None,
            failed: false,
        })) as *const c_void
    }));
    made.unwrap_or(std::ptr::null())
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(module: *const c_void) {
    if module.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: made by `filter_new`; Envoy destroys each filter once, on its thread.
        let f = unsafe { Box::from_raw(module as *mut NativeFilter) };
        // SAFETY: the configuration outlives its streams.
        let config_id = unsafe { (*f.config).id };
        let key = f.envoy as usize;
        let carried = worker::with(|w| {
            w.streams.remove(&f.context_id);
            w.replies.retain(|(e, _), _| *e != key);
            let gone: Vec<_> = w
                .callouts
                .keys()
                .filter(|(e, _)| *e == key)
                .copied()
                .collect();
            for k in gone {
                if let Some(c) = w.callouts.remove(&k) {
                    if c.as_root {
                        w.orphaned.push((config_id, c));
                    }
                }
            }
            w.carriers
                .get(&config_id)
                .is_some_and(|(id, _)| *id == f.context_id)
        });
        if carried {
            ticker::disarm(config_id);
            // Another live stream of the configuration carries the ticks (released at the
            // next tick if nothing waits).
            let next = worker::with(|w| {
                w.streams
                    .iter()
                    .find(|(_, (_, c))| *c == config_id)
                    .map(|(i, (e, _))| (*i, *e))
            });
            if let Some((id, envoy)) = next {
                ticker::arm(config_id, id, envoy);
            }
        }
        drop(f);
    }));
}

// ---- the root of this worker -------------------------------------------------------------

/// This thread's root for the configuration, compiled on first use with `envoy` as the
/// stream its first calls (JWKS fetches) go out on.
fn root(config: &ModuleConfig, envoy: FilterEnvoyPtr) -> Option<std::rc::Rc<Scheduler>> {
    if let Some(s) = worker::with(|w| w.roots.get(&config.id).cloned()) {
        return Some(s);
    }
    let mut host = NativeHost::new(envoy, config, true);
    let scheduler = Scheduler::compile(&mut host, &config.json)?;
    // The keeper's keys first: then no first fetch of this root's own when it has some.
    super::keeper::join(config, &scheduler);
    scheduler.on_tick(&mut host);
    worker::with(|w| {
        w.roots.insert(config.id, scheduler.clone());
        w.last_tick.insert(config.id, Instant::now());
    });
    Some(scheduler)
}

/// The root's tick on `envoy`'s thread.
pub(super) fn tick(config: &ModuleConfig, scheduler: &Scheduler, envoy: FilterEnvoyPtr) {
    worker::with(|w| w.last_tick.insert(config.id, Instant::now()));
    resend_orphans(envoy, config.id);
    let mut host = NativeHost::new(envoy, config, true);
    scheduler.on_tick(&mut host);
}

/// After a stream's hook: the worker's ticks run while anything waits for them.
pub(super) fn keep_ticking(
    config: u64,
    scheduler: &Scheduler,
    context: u32,
    envoy: FilterEnvoyPtr,
) {
    let (waiting, flushing, _, _) = scheduler.pending();
    if waiting + flushing > 0 {
        ticker::arm(config, context, envoy);
    }
}

// ---- stream hooks ------------------------------------------------------------------------

/// Run a stream hook: the core's answer, or (on a panic) a 500 `google.rpc.Status`.
fn stream_hook(
    module: *const c_void,
    callback: Callback,
    stop: u32,
    body: impl FnOnce(&Stream, &mut NativeHost<'_>) -> Action,
) -> u32 {
    if module.is_null() {
        return abi::STATUS_CONTINUE;
    }
    worker::enter(|| {
        let run = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: made by `filter_new`, used only on this thread, and no other reference
            // to it is alive (hooks that re-enter run after this one's core call: `worker`).
            let f = unsafe { &mut *(module as *mut NativeFilter) };
            // A failed stream was answered; only its end is logged (`filter::panicked`).
            if f.failed && callback != Callback::Log {
                return abi::STATUS_CONTINUE;
            }
            // SAFETY: the configuration outlives its streams.
            let config = unsafe { &*f.config };
            if f.stream.is_none() {
                // A stream starts at its request headers; one that never had them (a request
                // Envoy answered before the filter, from its codec) is still logged.
                if callback != Callback::RequestHeaders && callback != Callback::Log {
                    return abi::STATUS_CONTINUE;
                }
                let Some(scheduler) = root(config, f.envoy) else {
                    return abi::STATUS_CONTINUE;
                };
                super::keeper::adopt(config, &scheduler);
                resend_orphans(f.envoy, config.id);
                let due = worker::with(|w| {
                    w.last_tick
                        .get(&config.id)
                        .is_none_or(|t| t.elapsed() >= TICK)
                });
                if due {
                    tick(config, &scheduler, f.envoy);
                }
                f.stream = Some(scheduler.stream(f.context_id));
            }
            let Some(stream) = f.stream.as_ref() else {
                return abi::STATUS_CONTINUE;
            };
            let mut host = NativeHost::new(f.envoy, config, false);
            #[cfg(feature = "test-trap")]
            test_trap::maybe_trap(&host, callback);
            #[cfg(feature = "test-trap")]
            test_trap::maybe_append(&mut host, callback);
            let action = if f.failed {
                stream.on_log_after_panic(&mut host);
                Action::Continue
            } else {
                body(stream, &mut host)
            };
            if let Some(s) = worker::with(|w| w.roots.get(&config.id).cloned()) {
                keep_ticking(config.id, &s, f.context_id, f.envoy);
            }
            match action {
                Action::Continue => abi::STATUS_CONTINUE,
                Action::Pause => stop,
            }
        }));
        run.unwrap_or_else(|_| {
            // SAFETY: as above; the panicking frame's borrows ended with the unwind.
            let f = unsafe { &mut *(module as *mut NativeFilter) };
            fail(f, callback);
            if callback == Callback::Log {
                count_log_panic(f);
            }
            stop
        })
    })
}

/// A hook of `f` panicked: answer it 500 INTERNAL (once) and leave the core alone from now
/// on, but for its log hook, which records and counts it. A panic in the log hook itself
/// answers nothing (the answer is out).
pub(super) fn fail(f: &mut NativeFilter, callback: Callback) {
    if f.failed {
        return;
    }
    f.failed = true;
    let answer = if callback == Callback::Log {
        "the request keeps its answer"
    } else {
        "the request is answered 500"
    };
    log(
        Level::Error,
        &format!(
            "meshgate: the native filter panicked in {}; {answer}",
            callback.name()
        ),
    );
    if callback == Callback::Log {
        return;
    }
    let error = GatewayError::new(
        Code::Internal,
        "the gateway's filter failed on this request",
    );
    let (status, headers, body) = error.to_response(BodyFormat::Json);
    worker::defer(Deferred::Reply {
        envoy: f.envoy,
        status,
        headers,
        body,
    });
}

/// The log hook of `f` panicked: count the request once with its answer, unless the core's
/// log callback had (`filter::panicked`). Another panic here is caught and dropped.
fn count_log_panic(f: &NativeFilter) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let Some(stream) = f.stream.as_ref() else {
            return;
        };
        // SAFETY: the configuration outlives its streams.
        let config = unsafe { &*f.config };
        let mut host = NativeHost::new(f.envoy, config, false);
        stream.on_log_panicked(&mut host);
    }));
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    _envoy: FilterEnvoyPtr,
    module: *const c_void,
    end_of_stream: bool,
) -> u32 {
    stream_hook(
        module,
        Callback::RequestHeaders,
        abi::HEADERS_STOP_ITERATION,
        |s, h| s.on_request_headers(h, end_of_stream),
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    envoy: FilterEnvoyPtr,
    module: *const c_void,
    end_of_stream: bool,
) -> u32 {
    stream_hook(
        module,
        Callback::RequestBody,
        abi::BODY_STOP_AND_BUFFER,
        |s, h| s.on_request_body(h, body_size(envoy, BodyKind::Request), end_of_stream),
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    _envoy: FilterEnvoyPtr,
    _module: *const c_void,
) -> u32 {
    abi::STATUS_CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    _envoy: FilterEnvoyPtr,
    module: *const c_void,
    end_of_stream: bool,
) -> u32 {
    stream_hook(
        module,
        Callback::ResponseHeaders,
        abi::HEADERS_STOP_ITERATION,
        |s, h| s.on_response_headers(h, end_of_stream),
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    envoy: FilterEnvoyPtr,
    module: *const c_void,
    end_of_stream: bool,
) -> u32 {
    stream_hook(
        module,
        Callback::ResponseBody,
        abi::BODY_STOP_AND_BUFFER,
        |s, h| s.on_response_body(h, body_size(envoy, BodyKind::Response), end_of_stream),
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _envoy: FilterEnvoyPtr,
    module: *const c_void,
) -> u32 {
    stream_hook(
        module,
        Callback::ResponseTrailers,
        abi::TRAILERS_STOP_ITERATION,
        |s, h| s.on_response_trailers(h),
    )
}

/// Before Envoy writes its access log: the core's log callback (the record, the metrics).
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    _envoy: FilterEnvoyPtr,
    module: *const c_void,
) {
    stream_hook(module, Callback::Log, abi::STATUS_CONTINUE, |s, h| {
        s.on_log(h);
        Action::Continue
    });
}

/// The test build's triggers (feature `test-trap`, never in the default artifact): the request
/// header `x-meshgate-test-append: <hex>` ([`test_trap::maybe_append`]), and
/// `x-meshgate-test-trap: <callback>` (`request_headers`, `request_body`,
/// `response_headers`, `response_body`, `response_trailers`, `log`; `1` means
/// `request_headers`) panics in that hook of the request.
#[cfg(feature = "test-trap")]
mod test_trap {
    use crate::filter::Callback;
    use crate::host::{Host, MapKind};

    /// `x-meshgate-test-append: <hex>` on a request: during its request headers the glue
    /// sets the request body to those bytes through [`Host::set_body`], before the core runs
    /// (the path the core takes when `can_append_request_body` is true), so a test can show
    /// that a body added to a header-only request reaches the upstream.
    pub fn maybe_append(host: &mut dyn Host, callback: Callback) {
        if callback != Callback::RequestHeaders {
            return;
        }
        let Some(hex) = host.header(MapKind::RequestHeaders, "x-meshgate-test-append") else {
            return;
        };
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
        if let Some(bytes) = bytes {
            // A client's `content-length: 0` would contradict the new body (as the core's
            // transcoding does, the length goes).
            let _ = host.set_header(MapKind::RequestHeaders, "content-length", None);
            let _ = host.set_body(crate::host::BodyKind::Request, &bytes);
        }
    }

    #[allow(clippy::panic)]
    pub fn maybe_trap(host: &dyn Host, callback: Callback) {
        let Some(value) = host.header(MapKind::RequestHeaders, "x-meshgate-test-trap") else {
            return;
        };
        let wanted = if value == "1" {
            Some(Callback::RequestHeaders)
        } else {
            Callback::from_name(&value)
        };
        if wanted == Some(callback) {
            panic!("meshgate test trap in {}", callback.name());
        }
    }
}
