//! Our own declarations of Envoy's dynamic-module ABI (`source/extensions/dynamic_modules/abi/
//! abi.h` in Envoy's repository): exactly the callbacks the glue calls and the types they take.
//! Written for the ABI the PyPI Envoy 1.40 binary speaks (v0.2.0); every callback declared here
//! is checked against the binary's exported symbols by `tests/kit/tests/e2e_native.rs`.
//!
//! C enums are passed as `u32` (their size on every platform Envoy builds for), so a value Envoy
//! adds later can never be an invalid Rust enum. Buffers are `(pointer, length)` pairs: a
//! [`ModuleBuffer`] is ours and only borrowed for the call; an [`EnvoyBuffer`] is Envoy's and
//! valid until the end of the current event hook (or the next setter).

use std::ffi::c_void;

/// Envoy's `DynamicModuleHttpFilter` (one per stream).
pub type FilterEnvoyPtr = *mut c_void;
/// Envoy's `DynamicModuleHttpFilterConfig`.
pub type ConfigEnvoyPtr = *mut c_void;
/// A scheduler Envoy made for a stream (`http_filter_scheduler_new`); we delete it.
pub type SchedulerPtr = *mut c_void;
/// A tracing span Envoy owns.
pub type SpanPtr = *mut c_void;

/// `envoy_dynamic_module_type_module_buffer`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl ModuleBuffer {
    pub fn of(bytes: &[u8]) -> ModuleBuffer {
        ModuleBuffer {
            ptr: bytes.as_ptr(),
            length: bytes.len(),
        }
    }
}

/// `envoy_dynamic_module_type_envoy_buffer`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl EnvoyBuffer {
    pub const EMPTY: EnvoyBuffer = EnvoyBuffer {
        ptr: std::ptr::null(),
        length: 0,
    };

    /// Copy the bytes out.
    ///
    /// # Safety
    /// `ptr` must be null or point to `length` readable bytes (Envoy's guarantee for the
    /// duration of the hook).
    pub unsafe fn to_vec(self) -> Vec<u8> {
        if self.ptr.is_null() || self.length == 0 {
            return Vec::new();
        }
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(self.ptr, self.length) }.to_vec()
    }
}

/// Bytes as text: moved as they are when valid UTF-8 (one copy of Envoy's bytes in all), with
/// invalid sequences replaced otherwise.
pub fn utf8(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `envoy_dynamic_module_type_module_http_header` (ours) and
/// `envoy_dynamic_module_type_envoy_http_header` (Envoy's): the same layout.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HttpHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

impl HttpHeader {
    /// The header as a name and value (invalid UTF-8 replaced).
    ///
    /// # Safety
    /// The pointers are Envoy's, valid for the current hook, with the lengths given.
    pub unsafe fn to_pair(self) -> (String, String) {
        let k = EnvoyBuffer {
            ptr: self.key_ptr,
            length: self.key_length,
        };
        let v = EnvoyBuffer {
            ptr: self.value_ptr,
            length: self.value_length,
        };
        // SAFETY: guaranteed by the caller.
        let (k, v) = unsafe { (k.to_vec(), v.to_vec()) };
        (utf8(k), utf8(v))
    }

    pub const EMPTY: HttpHeader = HttpHeader {
        key_ptr: std::ptr::null(),
        key_length: 0,
        value_ptr: std::ptr::null(),
        value_length: 0,
    };

    pub fn of(key: &str, value: &str) -> HttpHeader {
        HttpHeader {
            key_ptr: key.as_ptr(),
            key_length: key.len(),
            value_ptr: value.as_ptr(),
            value_length: value.len(),
        }
    }
}

/// `envoy_dynamic_module_type_http_header_type`.
pub const HEADER_REQUEST: u32 = 0;
pub const HEADER_REQUEST_TRAILER: u32 = 1;
pub const HEADER_RESPONSE: u32 = 2;
pub const HEADER_RESPONSE_TRAILER: u32 = 3;

/// `envoy_dynamic_module_type_http_body_type`.
pub const BODY_RECEIVED_REQUEST: u32 = 0;
pub const BODY_BUFFERED_REQUEST: u32 = 1;
pub const BODY_RECEIVED_RESPONSE: u32 = 2;
pub const BODY_BUFFERED_RESPONSE: u32 = 3;

/// `envoy_dynamic_module_type_log_level`.
pub const LOG_TRACE: u32 = 0;
pub const LOG_DEBUG: u32 = 1;
pub const LOG_INFO: u32 = 2;
pub const LOG_WARN: u32 = 3;
pub const LOG_ERROR: u32 = 4;

/// `envoy_dynamic_module_type_metadata_source_Route`.
pub const METADATA_ROUTE: u32 = 1;

/// `envoy_dynamic_module_type_http_callout_init_result_Success` and
/// `envoy_dynamic_module_type_http_callout_result_Success`.
pub const CALLOUT_SUCCESS: u32 = 0;

/// `envoy_dynamic_module_type_metrics_result_Success`.
pub const METRICS_SUCCESS: u32 = 0;

/// The hooks' statuses: `Continue` is 0 for every phase; the stop values mirror Envoy's
/// `FilterHeadersStatus::StopIteration` and `FilterDataStatus::StopIterationAndBuffer`.
pub const STATUS_CONTINUE: u32 = 0;
pub const HEADERS_STOP_ITERATION: u32 = 1;
pub const BODY_STOP_AND_BUFFER: u32 = 1;
pub const TRAILERS_STOP_ITERATION: u32 = 1;

/// `envoy_dynamic_module_type_attribute_id` values the glue reads (the enum's order).
pub mod attribute {
    pub const REQUEST_PROTOCOL: u32 = 10;
    pub const REQUEST_TOTAL_SIZE: u32 = 14;
    pub const RESPONSE_CODE: u32 = 15;
    pub const RESPONSE_TOTAL_SIZE: u32 = 22;
    pub const SOURCE_ADDRESS: u32 = 24;
    pub const CONNECTION_MTLS: u32 = 29;
    pub const CONNECTION_SUBJECT_PEER_CERTIFICATE: u32 = 33;
    pub const CONNECTION_DNS_SAN_PEER_CERTIFICATE: u32 = 35;
    pub const CONNECTION_URI_SAN_PEER_CERTIFICATE: u32 = 37;
    pub const XDS_ROUTE_NAME: u32 = 61;
}

extern "C" {
    pub fn envoy_dynamic_module_callback_log(level: u32, message: ModuleBuffer);

    pub fn envoy_dynamic_module_callback_http_get_header(
        filter: FilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
        index: usize,
        optional_size: *mut usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_headers_size(
        filter: FilterEnvoyPtr,
        header_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter: FilterEnvoyPtr,
        header_type: u32,
        result: *mut HttpHeader,
    ) -> bool;
    /// A null `value.ptr` removes the header.
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter: FilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_add_header(
        filter: FilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    /// Envoy selects the stream's route again on its (changed) request headers.
    pub fn envoy_dynamic_module_callback_http_clear_route_cache(filter: FilterEnvoyPtr);

    pub fn envoy_dynamic_module_callback_http_send_response(
        filter: FilterEnvoyPtr,
        status_code: u32,
        headers: *mut HttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );

    pub fn envoy_dynamic_module_callback_http_get_body_size(
        filter: FilterEnvoyPtr,
        body_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_body_chunks_size(
        filter: FilterEnvoyPtr,
        body_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter: FilterEnvoyPtr,
        body_type: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_append_body(
        filter: FilterEnvoyPtr,
        body_type: u32,
        data: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_drain_body(
        filter: FilterEnvoyPtr,
        body_type: u32,
        number_of_bytes: usize,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_get_metadata_string(
        filter: FilterEnvoyPtr,
        source: u32,
        ns: ModuleBuffer,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
        filter: FilterEnvoyPtr,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: FilterEnvoyPtr,
        attribute_id: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
        filter: FilterEnvoyPtr,
        attribute_id: u32,
        result: *mut u64,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_bool(
        filter: FilterEnvoyPtr,
        attribute_id: u32,
        result: *mut bool,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_filter_start_http_stream(
        filter: FilterEnvoyPtr,
        stream_id_out: *mut u64,
        cluster_name: ModuleBuffer,
        headers: *mut HttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        end_stream: bool,
        timeout_milliseconds: u64,
    ) -> u32;

    pub fn envoy_dynamic_module_callback_http_filter_continue_decoding(filter: FilterEnvoyPtr);
    pub fn envoy_dynamic_module_callback_http_filter_continue_encoding(filter: FilterEnvoyPtr);

    pub fn envoy_dynamic_module_callback_http_filter_scheduler_new(
        filter: FilterEnvoyPtr,
    ) -> SchedulerPtr;
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_commit(
        scheduler: SchedulerPtr,
        event_id: u64,
    );
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_delete(scheduler: SchedulerPtr);

    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_define_histogram(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config: ConfigEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_set_gauge(
        config: ConfigEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_record_histogram_value(
        config: ConfigEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;

    pub fn envoy_dynamic_module_callback_http_get_active_span(filter: FilterEnvoyPtr) -> SpanPtr;
    pub fn envoy_dynamic_module_callback_http_span_set_operation(
        span: SpanPtr,
        operation: ModuleBuffer,
    );
}

/// A scheduler Envoy made for a filter configuration (`http_filter_config_scheduler_new`): a
/// commit from any thread runs `on_http_filter_config_scheduled` on the main thread.
pub type ConfigSchedulerPtr = *mut c_void;

// The clock-driven JWKS keeper (`keeper.rs`): the configuration's own scheduler and callout
// streams, both on Envoy's main thread.
extern "C" {
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        config: ConfigEnvoyPtr,
    ) -> ConfigSchedulerPtr;
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler: ConfigSchedulerPtr,
        event_id: u64,
    );
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
        scheduler: ConfigSchedulerPtr,
    );
    pub fn envoy_dynamic_module_callback_http_filter_config_start_http_stream(
        config: ConfigEnvoyPtr,
        stream_id_out: *mut u64,
        cluster_name: ModuleBuffer,
        headers: *mut HttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        end_stream: bool,
        timeout_milliseconds: u64,
    ) -> u32;
}
