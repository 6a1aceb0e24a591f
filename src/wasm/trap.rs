//! The panic hook: before the VM aborts, the core accounts for every request it still holds
//! ([`Scheduler::on_trap`]). The glue only remembers which callback is running and where the
//! scheduler is; each callback calls [`enter`] first.
//!
//! Test builds (`test-trap` feature) can trap in any callback kind on request: the request
//! header `x-meshgate-test-trap: <callback>` (`request_headers`, `request_body`,
//! `response_headers`, `response_body`, `response_trailers`, `log`, `call_reply`; `1` means
//! `request_headers`) traps in that callback of the request; `tick` and `jwks` arm a trap in
//! the root's next tick or next JWKS reply.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use super::host_impl::AbiHost;
use crate::filter::{Callback, Scheduler};

thread_local! {
    static SCHEDULER: RefCell<Weak<Scheduler>> = const { RefCell::new(Weak::new()) };
    /// The running callback: (stream context id, None for the root; callback).
    static CURRENT: Cell<Option<(Option<u32>, Callback)>> = const { Cell::new(None) };
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// The root configured a scheduler: a trap accounts for its requests.
pub fn set_scheduler(scheduler: &Rc<Scheduler>) {
    SCHEDULER.with(|s| *s.borrow_mut() = Rc::downgrade(scheduler));
}

/// A callback starts (stream `context`, or the root's when None).
pub fn enter(context: Option<u32>, callback: Callback) {
    CURRENT.with(|c| c.set(Some((context, callback))));
    #[cfg(feature = "test-trap")]
    test_trap::maybe_trap(context, callback);
}

/// Installs the hook after the SDK's own (which logs the panic message), keeping it.
pub fn install_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        on_panic();
    }));
}

fn on_panic() {
    if IN_HOOK.with(|h| h.replace(true)) {
        return;
    }
    let Some(scheduler) = SCHEDULER.with(|s| s.borrow().upgrade()) else {
        return;
    };
    let Some((context, callback)) = CURRENT.with(Cell::get) else {
        return;
    };
    scheduler.on_trap(&mut AbiHost, context, callback);
}

/// The test build's triggers. Never compiled into release artifacts.
#[cfg(feature = "test-trap")]
mod test_trap {
    use std::cell::Cell;

    use proxy_wasm::types::MapType;

    use crate::filter::Callback;
    use crate::host::find_header;

    thread_local! {
        /// A root callback armed to trap (`tick`, `jwks`).
        static ARMED: Cell<Option<Callback>> = const { Cell::new(None) };
    }

    #[allow(clippy::panic)]
    pub fn maybe_trap(context: Option<u32>, callback: Callback) {
        if context.is_none() {
            if ARMED.with(Cell::get) == Some(callback) {
                ARMED.with(|a| a.set(None));
                panic!("meshgate test trap in {}", callback.name());
            }
            return;
        }
        let headers = super::super::abi::get_map(MapType::HttpRequestHeaders);
        let Some(value) = find_header(&headers, "x-meshgate-test-trap") else {
            return;
        };
        let wanted = if value == "1" {
            Some(Callback::RequestHeaders)
        } else {
            Callback::from_name(value)
        };
        match wanted {
            Some(root @ (Callback::Tick | Callback::RootCallReply)) => {
                if callback == Callback::RequestHeaders {
                    ARMED.with(|a| a.set(Some(root)));
                }
            }
            Some(c) if c == callback => panic!("meshgate test trap in {}", callback.name()),
            _ => {}
        }
    }
}
