//! A dynamic-module HTTP filter that does nothing: every hook Envoy requires is exported and
//! continues at once, no callback into Envoy is made. Its bench row is what any dynamic-module
//! filter costs on this Envoy (the floor beside the no-op wasm filter's): Envoy's
//! `DynamicModuleHttpFilter` per stream, its calls into the module, nothing else.
//!
//! The ABI is Envoy's `source/extensions/dynamic_modules/abi/abi.h` (v0.2.0, the PyPI Envoy 1.40
//! build's), as meshgate's `src/native/abi.rs` declares it.
#![allow(clippy::missing_safety_doc)]

use std::ffi::c_void;

type EnvoyPtr = *mut c_void;
type Module = *const c_void;

#[repr(C)]
pub struct Buffer {
    ptr: *const u8,
    length: usize,
}

const CONTINUE: u32 = 0;
static ABI_VERSION: &[u8] = b"v0.2.0\0";
/// A non-null, never dereferenced, object for Envoy to hand back: the filter keeps no state.
static TOKEN: u8 = 0;

fn token() -> *const c_void {
    std::ptr::addr_of!(TOKEN).cast()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    ABI_VERSION.as_ptr()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    _envoy: EnvoyPtr,
    _name: Buffer,
    _config: Buffer,
) -> *const c_void {
    token()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(_config: Module) {}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
    _name: Buffer,
    _config: Buffer,
) -> *const c_void {
    token()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(_config: Module) {}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    _config: Module,
    _envoy: EnvoyPtr,
) -> *const c_void {
    token()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(_module: Module) {}

macro_rules! continue_hooks {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[no_mangle]
        pub extern "C" fn $name(_envoy: EnvoyPtr, _module: Module $(, $arg: $ty)*) -> u32 {
            $(let _ = $arg;)*
            CONTINUE
        }
    )*};
}

continue_hooks! {
    envoy_dynamic_module_on_http_filter_request_headers(end_of_stream: bool);
    envoy_dynamic_module_on_http_filter_request_body(end_of_stream: bool);
    envoy_dynamic_module_on_http_filter_request_trailers();
    envoy_dynamic_module_on_http_filter_response_headers(end_of_stream: bool);
    envoy_dynamic_module_on_http_filter_response_body(end_of_stream: bool);
    envoy_dynamic_module_on_http_filter_response_trailers();
    envoy_dynamic_module_on_http_filter_local_reply(status: u32, details: Buffer, reset: bool);
}

macro_rules! empty_hooks {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[no_mangle]
        pub extern "C" fn $name($($arg: $ty),*) {
            $(let _ = $arg;)*
        }
    )*};
}

empty_hooks! {
    envoy_dynamic_module_on_http_filter_stream_complete(e: EnvoyPtr, m: Module);
    envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
        e: EnvoyPtr, m: Module);
    envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
        e: EnvoyPtr, m: Module);
    envoy_dynamic_module_on_http_filter_scheduled(e: EnvoyPtr, m: Module, event: u64);
    envoy_dynamic_module_on_http_filter_http_callout_done(e: EnvoyPtr, m: Module, id: u64,
        result: u32, headers: *const c_void, headers_size: usize, body: *const c_void,
        body_size: usize);
    envoy_dynamic_module_on_http_filter_http_stream_headers(e: EnvoyPtr, m: Module, stream: u64,
        headers: *const c_void, size: usize, end: bool);
    envoy_dynamic_module_on_http_filter_http_stream_data(e: EnvoyPtr, m: Module, stream: u64,
        data: *const c_void, count: usize, end: bool);
    envoy_dynamic_module_on_http_filter_http_stream_trailers(e: EnvoyPtr, m: Module, stream: u64,
        trailers: *const c_void, size: usize);
    envoy_dynamic_module_on_http_filter_http_stream_complete(e: EnvoyPtr, m: Module, stream: u64);
    envoy_dynamic_module_on_http_filter_http_stream_reset(e: EnvoyPtr, m: Module, stream: u64,
        reason: u32);
    envoy_dynamic_module_on_http_filter_config_scheduled(e: EnvoyPtr, c: Module, event: u64);
    envoy_dynamic_module_on_http_filter_config_http_callout_done(e: EnvoyPtr, c: Module, id: u64,
        result: u32, headers: *const c_void, headers_size: usize, body: *const c_void,
        body_size: usize);
    envoy_dynamic_module_on_http_filter_config_http_stream_headers(e: EnvoyPtr, c: Module,
        stream: u64, headers: *const c_void, size: usize, end: bool);
    envoy_dynamic_module_on_http_filter_config_http_stream_data(e: EnvoyPtr, c: Module,
        stream: u64, data: *const c_void, count: usize, end: bool);
    envoy_dynamic_module_on_http_filter_config_http_stream_trailers(e: EnvoyPtr, c: Module,
        stream: u64, trailers: *const c_void, size: usize);
    envoy_dynamic_module_on_http_filter_config_http_stream_complete(e: EnvoyPtr, c: Module,
        stream: u64);
    envoy_dynamic_module_on_http_filter_config_http_stream_reset(e: EnvoyPtr, c: Module,
        stream: u64, reason: u32);
}
