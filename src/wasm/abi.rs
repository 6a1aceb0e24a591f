//! Raw Proxy-Wasm ABI calls that the SDK (proxy-wasm 0.2) would `panic!` on when the host says
//! no (`set_buffer`, header replacement, local replies...). A panic traps the VM and Envoy then
//! fails every later request on the worker, so these wrappers turn any non-Ok status into a
//! `HostError` the core can handle.

use std::ptr::null;

use proxy_wasm::types::{BufferType, MapType};

use crate::host::{HostError, HostResult};

// Same imports the SDK declares; the status is read as a plain u32 so that an unexpected value
// from the host can never be an invalid enum.
#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_set_buffer_bytes(
        buffer_type: BufferType,
        start: usize,
        size: usize,
        buffer_data: *const u8,
        buffer_size: usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
    ) -> u32;
    fn proxy_add_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_set_header_map_pairs(map_type: MapType, map_data: *const u8, map_size: usize) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
}

fn check(what: &str, status: u32) -> HostResult<()> {
    match status {
        0 => Ok(()),
        s => Err(HostError(format!(
            "{what} refused by the proxy (status {s})"
        ))),
    }
}

/// The ABI's header map encoding: count, then (key length, value length) pairs, then each key
/// and value NUL-terminated.
pub fn serialize_map(pairs: &[(&str, &[u8])]) -> Vec<u8> {
    let mut size = 4;
    for (k, v) in pairs {
        size += 8 + k.len() + v.len() + 2;
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&u32_len(pairs.len()).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&u32_len(k.len()).to_le_bytes());
        out.extend_from_slice(&u32_len(v.len()).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

fn u32_len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn as_pairs(headers: &[(String, String)]) -> Vec<(&str, &[u8])> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect()
}

pub fn set_buffer(kind: BufferType, start: usize, size: usize, data: &[u8]) -> HostResult<()> {
    // SAFETY: pointers and lengths come from live slices for the duration of the call.
    let s = unsafe { proxy_set_buffer_bytes(kind, start, size, data.as_ptr(), data.len()) };
    check("set_buffer", s)
}

pub fn set_header(map: MapType, key: &str, value: Option<&str>) -> HostResult<()> {
    // SAFETY: as above.
    let s = unsafe {
        match value {
            Some(v) => {
                proxy_replace_header_map_value(map, key.as_ptr(), key.len(), v.as_ptr(), v.len())
            }
            None => proxy_remove_header_map_value(map, key.as_ptr(), key.len()),
        }
    };
    check("set_header", s)
}

pub fn add_header(map: MapType, key: &str, value: &str) -> HostResult<()> {
    // SAFETY: as above.
    let s = unsafe {
        proxy_add_header_map_value(map, key.as_ptr(), key.len(), value.as_ptr(), value.len())
    };
    check("add_header", s)
}

pub fn set_headers(map: MapType, headers: &[(String, String)]) -> HostResult<()> {
    let bytes = serialize_map(&as_pairs(headers));
    // SAFETY: as above.
    let s = unsafe { proxy_set_header_map_pairs(map, bytes.as_ptr(), bytes.len()) };
    check("set_headers", s)
}

pub fn send_local_response(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> HostResult<()> {
    let hdrs = serialize_map(&as_pairs(headers));
    let details = "meshgate";
    // SAFETY: as above; a null body pointer with size 0 means no body.
    let s = unsafe {
        proxy_send_local_response(
            u32::from(status),
            details.as_ptr(),
            details.len(),
            if body.is_empty() {
                null()
            } else {
                body.as_ptr()
            },
            body.len(),
            hdrs.as_ptr(),
            hdrs.len(),
            -1,
        )
    };
    check("send_local_response", s)
}

/// Property paths are NUL-separated segments.
pub fn set_property(path: &[&str], value: &[u8]) -> HostResult<()> {
    let p = path.join("\0");
    // SAFETY: as above.
    let s = unsafe { proxy_set_property(p.as_ptr(), p.len(), value.as_ptr(), value.len()) };
    check("set_property", s)
}

pub fn increment_metric(id: u32, delta: i64) -> HostResult<()> {
    // SAFETY: plain values.
    check("increment_metric", unsafe {
        proxy_increment_metric(id, delta)
    })
}

pub fn record_metric(id: u32, value: u64) -> HostResult<()> {
    // SAFETY: plain values.
    check("record_metric", unsafe { proxy_record_metric(id, value) })
}

/// Through the SDK, which must register the call's token with its dispatcher so that the reply
/// reaches the calling context. Envoy's `httpCall` answers only Ok, BadArgument (unknown
/// cluster, missing pseudo-headers) or InternalFailure, and the SDK maps all three to a result.
pub fn http_call(
    cluster: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    timeout_ms: u32,
) -> HostResult<u32> {
    let hdrs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    proxy_wasm::hostcalls::dispatch_http_call(
        cluster,
        hdrs,
        body,
        Vec::new(),
        std::time::Duration::from_millis(u64::from(timeout_ms)),
    )
    .map_err(|s| HostError(format!("http call to cluster `{cluster}` refused: {s:?}")))
}

/// Make another context the target of the following calls (from the root context, to answer
/// or resume a request that waited for keys).
pub fn set_effective_context(context_id: u32) -> HostResult<()> {
    // SAFETY: plain value.
    check("set_effective_context", unsafe {
        proxy_set_effective_context(context_id)
    })
}

// ---- Reads. The host allocates the returned bytes through the module's allocator
// (`proxy_on_memory_allocate`, exported by the SDK); we take ownership of them.

#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: BufferType,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_get_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_call_foreign_function(
        function_name: *const u8,
        function_name_size: usize,
        arguments: *const u8,
        arguments_size: usize,
        results: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
}

/// Take ownership of host-allocated bytes.
///
/// # Safety
/// `ptr` must be null or a block of `size` bytes allocated by this module's allocator and
/// handed over by the host.
unsafe fn owned(ptr: *mut u8, size: usize) -> Option<Vec<u8>> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    Some(unsafe { Vec::from_raw_parts(ptr, size, size) })
}

pub fn get_map(map: MapType) -> Vec<(String, String)> {
    let mut ptr = std::ptr::null_mut();
    let mut size = 0usize;
    // SAFETY: out-pointers are valid for the call; the result is owned below.
    let status = unsafe { proxy_get_header_map_pairs(map, &mut ptr, &mut size) };
    // SAFETY: host-allocated block of `size` bytes.
    let bytes = unsafe { owned(ptr, size) };
    match (status, bytes) {
        (0, Some(b)) => deserialize_map(&b),
        _ => Vec::new(),
    }
}

/// Inverse of [`serialize_map`]; malformed input yields what could be read.
pub fn deserialize_map(bytes: &[u8]) -> Vec<(String, String)> {
    let read_u32 = |at: usize| -> Option<usize> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(b)).ok()
    };
    let Some(count) = read_u32(0) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(count.min(256));
    let mut data = 4 + count.saturating_mul(8);
    for i in 0..count {
        let (Some(klen), Some(vlen)) = (read_u32(4 + i * 8), read_u32(8 + i * 8)) else {
            break;
        };
        let key = bytes.get(data..data + klen);
        data += klen + 1;
        let value = bytes.get(data..data + vlen);
        data += vlen + 1;
        match (key, value) {
            (Some(k), Some(v)) => out.push((
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )),
            _ => break,
        }
    }
    out
}

pub fn get_buffer(kind: BufferType, start: usize, size: usize) -> Option<Vec<u8>> {
    let mut ptr = std::ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: as in `get_map`.
    let status = unsafe { proxy_get_buffer_bytes(kind, start, size, &mut ptr, &mut len) };
    // SAFETY: as in `get_map`.
    let bytes = unsafe { owned(ptr, len) };
    if status == 0 {
        bytes.or_else(|| Some(Vec::new()))
    } else {
        None
    }
}

pub fn get_property(path: &[&str]) -> Option<Vec<u8>> {
    let p = path.join("\0");
    let mut ptr = std::ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: as in `get_map`.
    let status = unsafe { proxy_get_property(p.as_ptr(), p.len(), &mut ptr, &mut len) };
    // SAFETY: as in `get_map`.
    let bytes = unsafe { owned(ptr, len) };
    if status == 0 {
        bytes
    } else {
        None
    }
}

/// One header's value (one host call; `None` when absent or refused).
pub fn get_header(map: MapType, key: &str) -> Option<String> {
    let mut ptr = std::ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: as in `get_map`.
    let status =
        unsafe { proxy_get_header_map_value(map, key.as_ptr(), key.len(), &mut ptr, &mut len) };
    // SAFETY: as in `get_map`.
    let bytes = unsafe { owned(ptr, len) };
    match status {
        0 => Some(String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned()),
        _ => None,
    }
}

/// A foreign function of the host (Envoy: `expr_create`, `expr_evaluate`...); any status but
/// Ok is an error, the status itself (the SDK's wrapper panics on some).
pub fn call_foreign(name: &str, arguments: &[u8]) -> Result<Vec<u8>, u32> {
    let mut ptr = std::ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: slices valid for the call; out-pointers as in `get_map`.
    let status = unsafe {
        proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            arguments.as_ptr(),
            arguments.len(),
            &mut ptr,
            &mut len,
        )
    };
    // SAFETY: as in `get_map`.
    let bytes = unsafe { owned(ptr, len) };
    match status {
        0 => Ok(bytes.unwrap_or_default()),
        s => Err(s),
    }
}

pub fn now_nanos() -> u64 {
    let mut t = 0u64;
    // SAFETY: out-pointer valid for the call.
    let status = unsafe { proxy_get_current_time_nanoseconds(&mut t) };
    if status == 0 {
        t
    } else {
        0
    }
}

pub fn log(level: u32, message: &str) {
    // SAFETY: slice valid for the call.
    let _ = unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

/// Metric types: 0 counter, 1 gauge, 2 histogram.
pub fn define_metric(kind: u32, name: &str) -> HostResult<u32> {
    let mut id = 0u32;
    // SAFETY: slice and out-pointer valid for the call.
    let s = unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) };
    check("define_metric", s).map(|()| id)
}

pub fn set_tick_period_ms(ms: u32) {
    // SAFETY: plain value.
    let _ = unsafe { proxy_set_tick_period_milliseconds(ms) };
}

/// 0: request, 1: response.
pub fn continue_stream(stream: u32) -> HostResult<()> {
    // SAFETY: plain value.
    check("continue_stream", unsafe { proxy_continue_stream(stream) })
}

// ---- Shared data (the side-call quota's buckets): the SDK panics on a status it does not
// expect, so these read the status as a plain number and turn any refusal into an error.

#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
}

/// The value under `key` and its CAS token; None when there is none (or the host refused).
pub fn get_shared_data(key: &str) -> Option<(Vec<u8>, u32)> {
    let mut ptr = std::ptr::null_mut();
    let mut len = 0usize;
    let mut cas = 0u32;
    // SAFETY: as in `get_map`.
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut ptr, &mut len, &mut cas) };
    // SAFETY: as in `get_map`.
    let bytes = unsafe { owned(ptr, len) };
    match status {
        0 => Some((bytes.unwrap_or_default(), cas)),
        _ => None,
    }
}

/// Set `key` if its CAS token is still `cas` (0: whatever it is); a mismatch is an error.
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> HostResult<()> {
    // SAFETY: pointers and lengths come from live slices for the duration of the call.
    let s =
        unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) };
    check("set_shared_data", s)
}
