//! The root context: compiles the configuration once per VM, schedules remote JWKS fetches on a
//! tick, and wakes requests that waited for keys.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MapType};

use super::abi;
use super::host_impl::{self, AbiHost};
use super::http::Http;
use crate::auth::{FetchKind, FetchRequest};
use crate::config::compile_json;
use crate::filter::{Filter, Vm, Waiting};
use crate::host::{find_header, Level};

/// How often the root context looks at fetch schedules and waiting requests.
const TICK: Duration = Duration::from_millis(50);

/// A request's context id and its filter (weak: the stream owns it).
type StreamRef = (u32, Weak<RefCell<Filter>>);

thread_local! {
    /// Requests paused until keys arrive, by context id.
    static WAITERS: RefCell<Vec<StreamRef>> = const { RefCell::new(Vec::new()) };
}

thread_local! {
    /// Streamed replies holding rendered bytes until the next tick, by context id.
    static FLUSHERS: RefCell<Vec<StreamRef>> = const { RefCell::new(Vec::new()) };
    /// The request being woken right now: calls it makes are registered by the SDK under the
    /// root context (the active one), so their replies come to [`Root`], which hands them back.
    static WAKING: RefCell<Option<StreamRef>> = const { RefCell::new(None) };
    /// Calls made by woken requests, by token.
    static WOKEN_CALLS: RefCell<HashMap<u32, StreamRef>> =
        RefCell::new(HashMap::new());
}

pub fn register_flusher(context_id: u32, filter: &Rc<RefCell<Filter>>) {
    FLUSHERS.with(|w| {
        let mut list = w.borrow_mut();
        if !list.iter().any(|(id, _)| *id == context_id) {
            list.push((context_id, Rc::downgrade(filter)));
        }
    });
}

/// Release what every streamed reply holds (see `filter::stream`).
fn flush_streams() {
    let flushers = FLUSHERS.with(|w| std::mem::take(&mut *w.borrow_mut()));
    for (id, weak) in flushers {
        let Some(filter) = weak.upgrade() else {
            continue;
        };
        if abi::set_effective_context(id).is_err() {
            continue;
        }
        filter.borrow_mut().on_flush(&mut AbiHost);
    }
}

pub fn register_waiter(context_id: u32, filter: &Rc<RefCell<Filter>>) {
    WAITERS.with(|w| w.borrow_mut().push((context_id, Rc::downgrade(filter))));
}

/// An HTTP call was dispatched (token): remembered when a woken request made it.
pub fn note_call(token: u32) {
    let waking = WAKING.with(|w| w.borrow().clone());
    if let Some(who) = waking {
        WOKEN_CALLS.with(|c| c.borrow_mut().insert(token, who));
    }
}

/// The reply of a call a woken request made: back to that request's filter.
fn deliver_woken_call(token: u32, num_headers: usize, body_size: usize) -> bool {
    let Some((id, weak)) = WOKEN_CALLS.with(|c| c.borrow_mut().remove(&token)) else {
        return false;
    };
    let Some(filter) = weak.upgrade() else {
        return true;
    };
    if abi::set_effective_context(id).is_err() {
        return true;
    }
    let headers = if num_headers > 0 {
        abi::get_map(MapType::HttpCallResponseHeaders)
    } else {
        Vec::new()
    };
    let trailers = abi::get_map(MapType::HttpCallResponseTrailers);
    filter.borrow_mut().on_side_call_reply(
        &mut AbiHost,
        &headers,
        body_size,
        read_call_body,
        &trailers,
    );
    true
}

/// The reply body of the HTTP call being reported, `size` bytes (read only when the core asks:
/// it checks the size first).
pub fn read_call_body(size: usize) -> Vec<u8> {
    abi::get_buffer(BufferType::HttpCallResponseBody, 0, size).unwrap_or_default()
}

pub struct Root {
    vm: Option<Rc<Vm>>,
    /// In-flight JWKS/discovery fetches by call token.
    fetches: HashMap<u32, (usize, FetchKind)>,
}

impl Root {
    pub fn new(_context_id: u32) -> Root {
        Root {
            vm: None,
            fetches: HashMap::new(),
        }
    }

    fn dispatch_due_fetches(&mut self) {
        let Some(vm) = self.vm.clone() else { return };
        let due = vm.auth.borrow_mut().due_fetches(host_impl::now());
        for f in due {
            self.dispatch(&vm, f);
        }
    }

    fn dispatch(&mut self, vm: &Vm, f: FetchRequest) {
        let headers = vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), f.path.clone()),
            (":authority".to_string(), f.authority.clone()),
            ("accept".to_string(), "application/json".to_string()),
        ];
        let ms = u32::try_from(f.timeout.as_millis()).unwrap_or(u32::MAX);
        match abi::http_call(&f.cluster, &headers, None, ms) {
            Ok(token) => {
                self.fetches.insert(token, (f.provider, f.kind));
            }
            Err(e) => {
                host_impl::log(
                    Level::Warn,
                    &format!(
                        "meshgate: JWKS fetch via cluster `{}` failed: {e}",
                        f.cluster
                    ),
                );
                let now = host_impl::now();
                let outcome = vm.auth.borrow_mut().on_fetch_response(
                    &vm.config.auth,
                    f.provider,
                    f.kind,
                    None,
                    b"",
                    now,
                );
                vm.note_fetch(&AbiHost, f.provider, &outcome);
            }
        }
    }

    /// Answer every waiting request whose wait is over; when keys arrived (`keys_arrived`),
    /// give the others another try. A tick only checks the bounds: verifying again costs a
    /// signature check and nothing has changed.
    fn wake_waiters(&self, keys_arrived: bool) {
        let now = host_impl::now();
        let waiters = WAITERS.with(|w| std::mem::take(&mut *w.borrow_mut()));
        let mut still = Vec::new();
        for (id, weak) in waiters {
            let Some(filter) = weak.upgrade() else {
                continue;
            };
            if abi::set_effective_context(id).is_err() {
                continue;
            }
            let mut f = filter.borrow_mut();
            if f.waiting() == Waiting::Nothing {
                continue;
            }
            let expired = f.keys_wait_expired(now);
            if !expired && !keys_arrived {
                drop(f);
                still.push((id, weak));
                continue;
            }
            WAKING.with(|w| *w.borrow_mut() = Some((id, weak.clone())));
            let resume = if expired {
                f.on_keys_timeout(&mut AbiHost);
                false
            } else {
                f.on_keys_ready(&mut AbiHost)
            };
            WAKING.with(|w| *w.borrow_mut() = None);
            if f.waiting() != Waiting::Nothing {
                drop(f);
                still.push((id, weak));
            } else if resume {
                let _ = abi::continue_stream(0);
            }
        }
        WAITERS.with(|w| w.borrow_mut().extend(still));
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some((provider, kind)) = self.fetches.remove(&token) else {
            deliver_woken_call(token, num_headers, body_size);
            return;
        };
        let Some(vm) = self.vm.clone() else { return };
        let headers = if num_headers > 0 {
            abi::get_map(MapType::HttpCallResponseHeaders)
        } else {
            Vec::new()
        };
        let status = find_header(&headers, ":status").and_then(|s| s.parse::<u16>().ok());
        let now = host_impl::now();
        let outcome = vm.auth.borrow_mut().on_fetch_reply(
            &vm.config.auth,
            provider,
            kind,
            status,
            body_size,
            read_call_body,
            now,
        );
        vm.note_fetch(&AbiHost, provider, &outcome);
        // A discovery document leads straight to its JWKS.
        self.dispatch_due_fetches();
        self.wake_waiters(true);
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let bytes = abi::get_buffer(BufferType::PluginConfiguration, 0, size).unwrap_or_default();
        match compile_json(&bytes) {
            Ok(config) => {
                host_impl::log(
                    Level::Info,
                    &format!(
                        "meshgate: configured {} operations",
                        config.operations.len()
                    ),
                );
                self.vm = Some(Rc::new(Vm::new(config)));
                abi::set_tick_period_ms(u32::try_from(TICK.as_millis()).unwrap_or(50));
                self.dispatch_due_fetches();
                true
            }
            Err(e) => {
                host_impl::log(
                    Level::Error,
                    &format!("meshgate: invalid configuration: {e}"),
                );
                false
            }
        }
    }

    fn on_tick(&mut self) {
        flush_streams();
        self.dispatch_due_fetches();
        self.wake_waiters(false);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let vm = self.vm.clone()?;
        Some(Box::new(Http::new(vm, context_id)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
