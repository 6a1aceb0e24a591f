//! The exported event hooks (`envoy_dynamic_module_on_*`).

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use super::abi::{self, ConfigEnvoyPtr, EnvoyBuffer, FilterEnvoyPtr, HttpHeader};
use super::config::ModuleConfig;
use super::host_impl::{body_size, log, CallReply, NativeHost};
use super::ticker;
use super::worker::{self, Deferred};
use crate::filter::{Callback, Scheduler, Stream, TICK};
use crate::host::{Action, BodyKind, Headers, Level};
use crate::status::{BodyFormat, Code, GatewayError};

/// The ABI version this module is written against (the PyPI Envoy 1.40 build's).
static ABI_VERSION: &[u8] = b"v0.2.0\0";

/// One stream: Envoy's filter, the configuration, the core's handle once the request started.
struct NativeFilter {
    envoy: FilterEnvoyPtr,
    config: *const ModuleConfig,
    context_id: u32,
    stream: Option<Stream>,
    /// A hook of this stream panicked: the stream was answered, the core is left alone.
    failed: bool,
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
            Box::into_raw(Box::new(c)) as *const c_void
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
        drop(unsafe { Box::from_raw(config as *mut ModuleConfig) });
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
        let context_id = worker::with(|w| {
            let id = w.new_context();
            w.streams.insert(id, envoy);
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
                        w.orphaned.push((config_id, c.token));
                    }
                }
            }
            w.carrier.is_some_and(|(id, _)| id == f.context_id)
        });
        if carried {
            ticker::disarm();
            // Another live stream carries the ticks if requests still wait.
            let next = worker::with(|w| w.streams.iter().next().map(|(i, e)| (*i, *e)));
            if let Some((id, envoy)) = next {
                ticker::arm(id, envoy);
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
    let scheduler = Scheduler::configure(&mut host, &config.json)?;
    worker::with(|w| {
        w.roots.insert(config.id, scheduler.clone());
        w.last_tick.insert(config.id, Instant::now());
    });
    Some(scheduler)
}

/// The root's tick on `envoy`'s thread; first, root callouts whose stream went away are
/// answered as failed fetches.
fn tick(config: &ModuleConfig, scheduler: &Scheduler, envoy: FilterEnvoyPtr) {
    worker::with(|w| w.last_tick.insert(config.id, Instant::now()));
    let orphaned: Vec<u32> = worker::with(|w| {
        let (mine, others) = std::mem::take(&mut w.orphaned)
            .into_iter()
            .partition(|(c, _)| *c == config.id);
        w.orphaned = others;
        mine.into_iter().map(|(_, t)| t).collect()
    });
    for token in orphaned {
        let mut host = NativeHost::new(envoy, config, true);
        host.reply = Some(CallReply::default());
        scheduler.on_http_call_response(&mut host, token, 0, 0);
    }
    let mut host = NativeHost::new(envoy, config, true);
    scheduler.on_tick(&mut host);
}

/// After a stream's hook: the worker's ticks run while anything waits for them.
fn keep_ticking(scheduler: &Scheduler, context: u32, envoy: FilterEnvoyPtr) {
    let (waiting, flushing, _, _) = scheduler.pending();
    if waiting + flushing > 0 {
        ticker::arm(context, envoy);
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
            if f.failed {
                return abi::STATUS_CONTINUE;
            }
            // SAFETY: the configuration outlives its streams.
            let config = unsafe { &*f.config };
            if f.stream.is_none() {
                if callback != Callback::RequestHeaders {
                    return abi::STATUS_CONTINUE;
                }
                let Some(scheduler) = root(config, f.envoy) else {
                    return abi::STATUS_CONTINUE;
                };
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
            let action = body(stream, &mut host);
            if let Some(s) = worker::with(|w| w.roots.get(&config.id).cloned()) {
                keep_ticking(&s, f.context_id, f.envoy);
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
            stop
        })
    })
}

/// A hook of `f` panicked: answer it 500 INTERNAL (once) and leave the core alone from now on.
fn fail(f: &mut NativeFilter, callback: Callback) {
    if f.failed {
        return;
    }
    f.failed = true;
    log(
        Level::Error,
        &format!(
            "meshgate: the native filter panicked in {}; the request is answered 500",
            callback.name()
        ),
    );
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

// ---- callouts and scheduled events -------------------------------------------------------

/// One-shot callouts are not used (their reply has no trailers); Envoy requires the hook.
#[allow(clippy::too_many_arguments)]
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    _envoy: FilterEnvoyPtr,
    _module: *const c_void,
    _callout_id: u64,
    _result: u32,
    _headers: *const HttpHeader,
    _headers_size: usize,
    _body_chunks: *const EnvoyBuffer,
    _body_chunks_size: usize,
) {
}

/// # Safety
/// `headers` is null or Envoy's array of `size` headers, valid for the current hook.
unsafe fn copy_headers(headers: *const HttpHeader, size: usize) -> Headers {
    if headers.is_null() {
        return Vec::new();
    }
    // SAFETY: guaranteed by the caller.
    let slice = unsafe { std::slice::from_raw_parts(headers, size) };
    slice
        .iter()
        .map(|h| {
            let k = EnvoyBuffer {
                ptr: h.key_ptr,
                length: h.key_length,
            };
            let v = EnvoyBuffer {
                ptr: h.value_ptr,
                length: h.value_length,
            };
            // SAFETY: as above.
            let (k, v) = unsafe { (k.to_vec(), v.to_vec()) };
            (
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect()
}

/// Add to the reply being received on callout stream `stream` of `envoy`.
fn collect(envoy: FilterEnvoyPtr, stream: u64, add: impl FnOnce(&mut CallReply)) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        worker::with(|w| add(w.replies.entry((envoy as usize, stream)).or_default()));
    }));
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    envoy: FilterEnvoyPtr,
    _module: *const c_void,
    stream: u64,
    headers: *const HttpHeader,
    size: usize,
    _end: bool,
) {
    // SAFETY: Envoy's array of `size` headers, valid for this hook.
    let copied = catch_unwind(|| unsafe { copy_headers(headers, size) }).unwrap_or_default();
    collect(envoy, stream, |r| r.headers = copied);
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    envoy: FilterEnvoyPtr,
    _module: *const c_void,
    stream: u64,
    data: *const EnvoyBuffer,
    count: usize,
    _end: bool,
) {
    if data.is_null() {
        return;
    }
    collect(envoy, stream, |r| {
        // SAFETY: Envoy's array of `count` buffers, valid for this hook; copied.
        for c in unsafe { std::slice::from_raw_parts(data, count) } {
            // SAFETY: as above.
            r.body.extend_from_slice(&unsafe { c.to_vec() });
        }
    });
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    envoy: FilterEnvoyPtr,
    _module: *const c_void,
    stream: u64,
    trailers: *const HttpHeader,
    size: usize,
) {
    // SAFETY: Envoy's array of `size` trailers, valid for this hook.
    let copied = catch_unwind(|| unsafe { copy_headers(trailers, size) }).unwrap_or_default();
    collect(envoy, stream, |r| r.trailers = copied);
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    envoy: FilterEnvoyPtr,
    module: *const c_void,
    stream: u64,
) {
    finish(envoy, module, stream, false);
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    envoy: FilterEnvoyPtr,
    module: *const c_void,
    stream: u64,
    _reason: u32,
) {
    finish(envoy, module, stream, true);
}

/// A callout stream ended: its reply (none after a reset) to whoever made the call, now or,
/// when Envoy ended it inside the core's own call, once the core has returned.
fn finish(envoy: FilterEnvoyPtr, module: *const c_void, stream: u64, reset: bool) {
    if module.is_null() {
        return;
    }
    let reply = worker::with(|w| w.replies.remove(&(envoy as usize, stream))).unwrap_or_default();
    let reply = if reset { CallReply::default() } else { reply };
    let deliver = move || deliver(envoy, module, stream, reply);
    if worker::busy() {
        worker::defer(Deferred::Call(Box::new(deliver)));
    } else {
        worker::enter(deliver);
    }
}

/// A callout's reply to whoever made it: the stream, or this worker's root.
fn deliver(envoy: FilterEnvoyPtr, module: *const c_void, callout_id: u64, reply: CallReply) {
    let run = catch_unwind(AssertUnwindSafe(|| {
        let Some(call) = worker::with(|w| w.callouts.remove(&(envoy as usize, callout_id))) else {
            return;
        };
        if !worker::with(|w| w.is_live(envoy)) {
            return;
        }
        // SAFETY: a live filter made by `filter_new`; no other reference to it is alive.
        let f = unsafe { &mut *(module as *mut NativeFilter) };
        if f.failed {
            return;
        }
        // SAFETY: the configuration outlives its streams.
        let config = unsafe { &*f.config };
        let (n, size) = (reply.headers.len(), reply.body.len());
        let mut host = NativeHost::new(envoy, config, call.as_root);
        host.reply = Some(reply);
        if call.as_root {
            if let Some(s) = worker::with(|w| w.roots.get(&config.id).cloned()) {
                s.on_http_call_response(&mut host, call.token, n, size);
                keep_ticking(&s, f.context_id, envoy);
            }
        } else if let Some(stream) = f.stream.as_ref() {
            stream.on_http_call_response(&mut host, call.token, n, size);
        }
    }));
    if run.is_err() {
        // SAFETY: as above (the delivery checked the filter is live before panicking).
        let f = unsafe { &mut *(module as *mut NativeFilter) };
        fail(f, Callback::StreamCallReply);
    }
}

/// The tick thread's event on this worker's carrier: the root's tick.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    envoy: FilterEnvoyPtr,
    module: *const c_void,
    _event_id: u64,
) {
    if module.is_null() {
        return;
    }
    worker::enter(|| {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: a live filter made by `filter_new`.
            let f = unsafe { &*(module as *const NativeFilter) };
            // SAFETY: the configuration outlives its streams.
            let config = unsafe { &*f.config };
            let Some(s) = worker::with(|w| w.roots.get(&config.id).cloned()) else {
                return;
            };
            tick(config, &s, envoy);
            let (waiting, flushing, _, _) = s.pending();
            if waiting + flushing == 0 {
                ticker::disarm();
            }
        }));
    });
}

// ---- hooks Envoy requires and meshgate does not use ---------------------------------------

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_local_reply(
    _envoy: FilterEnvoyPtr,
    _module: *const c_void,
    _status: u32,
    _details: EnvoyBuffer,
    _reset_imminent: bool,
) -> u32 {
    abi::STATUS_CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _envoy: FilterEnvoyPtr,
    _module: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _envoy: FilterEnvoyPtr,
    _module: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    _envoy: ConfigEnvoyPtr,
    _config: *const c_void,
    _event: u64,
) {
}

#[allow(clippy::too_many_arguments)]
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    _envoy: ConfigEnvoyPtr,
    _config: *const c_void,
    _id: u64,
    _result: u32,
    _headers: *const HttpHeader,
    _headers_size: usize,
    _body: *const EnvoyBuffer,
    _body_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_headers(
    _envoy: ConfigEnvoyPtr,
    _config: *const c_void,
    _stream: u64,
    _headers: *const HttpHeader,
    _size: usize,
    _end: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_data(
    _envoy: ConfigEnvoyPtr,
    _config: *const c_void,
    _stream: u64,
    _data: *const EnvoyBuffer,
    _count: usize,
    _end: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_trailers(
    _envoy: ConfigEnvoyPtr,
    _config: *const c_void,
    _stream: u64,
    _trailers: *const HttpHeader,
    _size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_complete(
    _envoy: ConfigEnvoyPtr,
    _config: *const c_void,
    _stream: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_reset(
    _envoy: ConfigEnvoyPtr,
    _config: *const c_void,
    _stream: u64,
    _reason: u32,
) {
}

/// The test build's trigger (feature `test-trap`, never in the default artifact): the request
/// header `x-meshgate-test-trap: <callback>` (`request_headers`, `request_body`,
/// `response_headers`, `response_body`, `response_trailers`, `log`; `1` means
/// `request_headers`) panics in that hook of the request.
#[cfg(feature = "test-trap")]
mod test_trap {
    use crate::filter::Callback;
    use crate::host::{Host, MapKind};

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
