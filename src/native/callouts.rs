//! The core's HTTP calls as Envoy callout streams: sending them (and sending again a root
//! call whose stream went away), collecting their replies, handing each to whoever made it;
//! and the root's scheduled tick.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use super::abi::{self, EnvoyBuffer, FilterEnvoyPtr, HttpHeader, ModuleBuffer};
use super::hooks::{fail, keep_ticking, tick, NativeFilter};
use super::host_impl::{CallReply, NativeHost};
use super::ticker;
use super::worker::{self, Callout, Deferred};
use crate::filter::Callback;
use crate::host::{Headers, HostError, HostResult};

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

/// Appends the bytes of Envoy's array of `count` buffers (a callout reply's data) to `body`.
///
/// # Safety
/// `data` points to `count` buffers, valid for the hook that received them.
pub(super) unsafe fn append_buffers(body: &mut Vec<u8>, data: *const EnvoyBuffer, count: usize) {
    // SAFETY: the caller's contract.
    for c in unsafe { std::slice::from_raw_parts(data, count) } {
        // SAFETY: as above.
        body.extend_from_slice(&unsafe { c.to_vec() });
    }
}

/// # Safety
/// `headers` is null or Envoy's array of `size` headers, valid for the current hook.
pub(super) unsafe fn copy_headers(headers: *const HttpHeader, size: usize) -> Headers {
    if headers.is_null() {
        return Vec::new();
    }
    // SAFETY: guaranteed by the caller.
    let slice = unsafe { std::slice::from_raw_parts(headers, size) };
    slice
        .iter()
        // SAFETY: as above.
        .map(|h| unsafe { h.to_pair() })
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
    // SAFETY: Envoy's array of `count` buffers, valid for this hook.
    collect(envoy, stream, |r| unsafe {
        append_buffers(&mut r.body, data, count)
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
                keep_ticking(config.id, &s, f.context_id, envoy);
            }
        } else if let Some(stream) = f.stream.as_ref() {
            stream.on_http_call_response(&mut host, call.token, n, size);
        }
    }));
    if run.is_err() && worker::with(|w| w.is_live(envoy)) {
        // SAFETY: a live filter made by `filter_new`; the panicking frame's borrows ended.
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
                ticker::disarm(config.id);
            }
        }));
    });
}

/// Send a call from stream `envoy` as a callout stream (not a one-shot callout, whose reply
/// has no trailers: a gRPC call's status is in them), remembered under `call`.
pub fn send(
    envoy: FilterEnvoyPtr,
    cluster: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
    call: Callout,
) -> HostResult<()> {
    let mut hs: Vec<HttpHeader> = headers.iter().map(|(k, v)| HttpHeader::of(k, v)).collect();
    let mut id = 0u64;
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    // SAFETY: a live filter of this thread; Envoy copies headers and body.
    let status = unsafe {
        abi::envoy_dynamic_module_callback_http_filter_start_http_stream(
            envoy,
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
    worker::with(|w| w.callouts.insert((envoy as usize, id), call));
    Ok(())
}

/// Send the root calls that lost their stream again, from stream `envoy`.
pub fn resend_orphans(envoy: FilterEnvoyPtr, config_id: u64) {
    let mine: Vec<Callout> = worker::with(|w| {
        let (mine, others) = std::mem::take(&mut w.orphaned)
            .into_iter()
            .partition(|(c, _)| *c == config_id);
        w.orphaned = others;
        mine.into_iter().map(|(_, c)| c).collect()
    });
    for call in mine {
        let Some(r) = call.request.clone() else {
            continue;
        };
        if send(
            envoy,
            &r.cluster,
            &r.headers,
            &r.body,
            r.timeout,
            call.clone(),
        )
        .is_err()
        {
            // Tried again at the next stream.
            worker::with(|w| w.orphaned.push((config_id, call)));
            return;
        }
    }
}
