//! Properties the core reads, from the attributes and metadata Envoy's dynamic modules offer.
//! Integers come back as the wasm host encodes them (8 bytes, little-endian), so the core reads
//! them the same way.

use super::abi::{self, attribute, EnvoyBuffer, FilterEnvoyPtr, ModuleBuffer};

/// A property by path (`["xds", "route_name"]`) of stream `e`; `None` where Envoy offers none.
pub fn read(e: FilterEnvoyPtr, path: &[&str]) -> Option<Vec<u8>> {
    match path {
        ["xds", "route_name"] => attr_string(e, attribute::XDS_ROUTE_NAME),
        ["xds", "route_metadata", "filter_metadata", ns, key] => route_metadata(e, ns, key),
        ["connection", "mtls"] => attr_bool(e, attribute::CONNECTION_MTLS),
        ["connection", "uri_san_peer_certificate"] => {
            attr_string(e, attribute::CONNECTION_URI_SAN_PEER_CERTIFICATE)
        }
        ["connection", "dns_san_peer_certificate"] => {
            attr_string(e, attribute::CONNECTION_DNS_SAN_PEER_CERTIFICATE)
        }
        ["connection", "subject_peer_certificate"] => {
            attr_string(e, attribute::CONNECTION_SUBJECT_PEER_CERTIFICATE)
        }
        ["response", "code"] => attr_int(e, attribute::RESPONSE_CODE),
        ["source", "address"] => attr_string(e, attribute::SOURCE_ADDRESS),
        ["request", "protocol"] => attr_string(e, attribute::REQUEST_PROTOCOL),
        ["request", "total_size"] => attr_int(e, attribute::REQUEST_TOTAL_SIZE),
        ["response", "total_size"] => attr_int(e, attribute::RESPONSE_TOTAL_SIZE),
        // Not read here (`request.duration`, `response.code_details`, ...): the core falls
        // back (latency from its clock); docs/native.md.
        _ => None,
    }
}

fn attr_string(envoy: FilterEnvoyPtr, id: u32) -> Option<Vec<u8>> {
    let mut out = EnvoyBuffer::EMPTY;
    // SAFETY: a live filter; the buffer is Envoy's until the hook returns (copied here).
    unsafe {
        abi::envoy_dynamic_module_callback_http_filter_get_attribute_string(envoy, id, &mut out)
            .then(|| out.to_vec())
    }
}

fn attr_int(envoy: FilterEnvoyPtr, id: u32) -> Option<Vec<u8>> {
    let mut out = 0u64;
    // SAFETY: a live filter, a valid out-pointer.
    let ok = unsafe {
        abi::envoy_dynamic_module_callback_http_filter_get_attribute_int(envoy, id, &mut out)
    };
    // The wasm host's encoding of an integer property: 8 bytes, little-endian.
    ok.then(|| {
        i64::try_from(out)
            .unwrap_or(i64::MAX)
            .to_le_bytes()
            .to_vec()
    })
}

fn attr_bool(envoy: FilterEnvoyPtr, id: u32) -> Option<Vec<u8>> {
    let mut out = false;
    // SAFETY: a live filter, a valid out-pointer.
    let ok = unsafe {
        abi::envoy_dynamic_module_callback_http_filter_get_attribute_bool(envoy, id, &mut out)
    };
    ok.then(|| vec![u8::from(out)])
}

fn route_metadata(envoy: FilterEnvoyPtr, ns: &str, key: &str) -> Option<Vec<u8>> {
    let mut out = EnvoyBuffer::EMPTY;
    // SAFETY: a live filter; buffers valid for the call, the result copied.
    unsafe {
        abi::envoy_dynamic_module_callback_http_get_metadata_string(
            envoy,
            abi::METADATA_ROUTE,
            ModuleBuffer::of(ns.as_bytes()),
            ModuleBuffer::of(key.as_bytes()),
            &mut out,
        )
        .then(|| out.to_vec())
    }
}
