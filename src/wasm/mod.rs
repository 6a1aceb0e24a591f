//! The only module that talks to the proxy: registers the root context, implements [`Host`]
//! over the Proxy-Wasm ABI, and forwards callbacks to the core.
//!
//! [`Host`]: crate::host::Host

mod abi;
mod batch;
mod host_impl;
mod http;
mod root;
mod trap;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    // After the SDK's hook (set with the log level): a trap accounts for its requests.
    trap::install_hook();
    proxy_wasm::set_root_context(|context_id| Box::new(root::Root::new(context_id)));
}}
