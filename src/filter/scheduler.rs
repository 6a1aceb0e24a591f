//! The VM-wide scheduler: what happens between a request's callbacks. It owns the requests
//! paused until JWKS keys arrive, the streamed replies whose rendered bytes wait for a tick,
//! the JWKS fetches in flight and the HTTP calls made by requests (whichever context the proxy
//! delivers their reply to). The wasm glue only forwards the root's and the streams' callbacks
//! here; every decision (when to fetch, whom to wake, whether a reply is small enough to read)
//! is made in this file, over [`RootHost`], so host-side tests drive it with a fake.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::Duration;

use super::handle::deliver_call_reply;
use super::{Filter, Step, Stream, Then, Vm};
use crate::auth::{FetchKind, FetchRequest};
use crate::config::compile_json;
use crate::host::{find_header, Action, Level, RootHost};

/// How often the root context looks at fetch schedules, waiting requests and held streams.
pub const TICK: Duration = Duration::from_millis(50);

/// A request's context id and its filter (weak: the proxy's stream owns it).
type StreamRef = (u32, Weak<RefCell<Filter>>);

pub struct Scheduler {
    vm: Rc<Vm>,
    /// Requests paused until keys arrive.
    waiters: RefCell<Vec<StreamRef>>,
    /// Streamed replies holding rendered bytes until the next tick.
    flushers: RefCell<Vec<StreamRef>>,
    /// JWKS and discovery fetches in flight, by call token.
    fetches: RefCell<HashMap<u32, (usize, FetchKind)>>,
    /// HTTP calls made by requests, by token: a request woken from the root makes its call
    /// from the root's callback, and the proxy then hands the reply to the root.
    calls: RefCell<HashMap<u32, StreamRef>>,
    /// Every stream of this VM not yet dropped, for a trap (`trap.rs`) to account for.
    pub(super) live: RefCell<Vec<StreamRef>>,
}

impl Scheduler {
    pub fn new(vm: Rc<Vm>) -> Scheduler {
        Scheduler {
            vm,
            waiters: RefCell::new(Vec::new()),
            flushers: RefCell::new(Vec::new()),
            fetches: RefCell::new(HashMap::new()),
            calls: RefCell::new(HashMap::new()),
            live: RefCell::new(Vec::new()),
        }
    }

    /// `on_configure`: compile the plugin configuration (refused whole, with the reason logged)
    /// and start the first JWKS fetches.
    pub fn configure(host: &mut dyn RootHost, bytes: &[u8]) -> Option<Rc<Scheduler>> {
        let scheduler = Scheduler::compile(host, bytes)?;
        scheduler.dispatch_due_fetches(host);
        Some(scheduler)
    }

    /// [`Scheduler::configure`] without starting the first fetches: they start at the first
    /// [`Scheduler::on_tick`] (a glue may hand keys over before, `AuthState::adopt_keys`).
    pub fn compile(host: &mut dyn RootHost, bytes: &[u8]) -> Option<Rc<Scheduler>> {
        match compile_json(bytes) {
            Ok(config) => {
                let n = config.operations.len();
                host.log(Level::Info, &format!("meshgate: configured {n} operations"));
                for skipped in &config.skipped_bindings {
                    let msg = format!("meshgate: binding skipped (cannot be served): {skipped}");
                    host.log(Level::Warn, &msg);
                }
                Some(Rc::new(Scheduler::new(Rc::new(Vm::new(config)))))
            }
            Err(e) => {
                let msg = format!("meshgate: invalid configuration: {e}");
                host.log(Level::Error, &msg);
                None
            }
        }
    }

    pub fn vm(&self) -> &Rc<Vm> {
        &self.vm
    }

    /// The handle of a new HTTP stream.
    pub fn stream(self: &Rc<Self>, context_id: u32) -> Stream {
        let filter = Rc::new(RefCell::new(Filter::new(self.vm.clone(), context_id)));
        let mut live = self.live.borrow_mut();
        live.retain(|(_, w)| w.strong_count() > 0);
        live.push((context_id, Rc::downgrade(&filter)));
        Stream {
            filter,
            scheduler: self.clone(),
            context_id,
        }
    }

    /// The root's tick: release held stream bytes, start due fetches, refuse requests whose
    /// wait for keys is over.
    pub fn on_tick(&self, host: &mut dyn RootHost) {
        // Calls whose request went away (client gone) before their reply came.
        self.calls
            .borrow_mut()
            .retain(|_, (_, w)| w.strong_count() > 0);
        self.flush_streams(host);
        self.export_spans(host);
        self.dispatch_due_fetches(host);
        self.wake_waiters(host, false);
        if let Some(bytes) = host.vm_memory_bytes() {
            self.vm
                .set_gauge(host, &self.vm.config.observe.names.vm_memory(), bytes);
        }
    }

    /// An HTTP call's reply reached the root context: a JWKS fetch's, or a call a woken
    /// request made. Only `body_size` is known yet; the body is read only within its limit.
    pub fn on_http_call_response(
        &self,
        host: &mut dyn RootHost,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) {
        let fetch = self.fetches.borrow_mut().remove(&token);
        let Some((provider, kind)) = fetch else {
            let caller = self.calls.borrow_mut().remove(&token);
            if let Some((id, weak)) = caller {
                if let Some(filter) = weak.upgrade() {
                    if host.set_effective_context(id).is_ok() {
                        // A call made in turn replies to the root too.
                        if let Some(next) =
                            deliver_call_reply(&filter, host, num_headers, body_size)
                        {
                            self.calls.borrow_mut().insert(next, (id, weak));
                        }
                    }
                }
            }
            return;
        };
        let vm = self.vm.clone();
        let headers = if num_headers > 0 {
            host.call_response_headers()
        } else {
            Vec::new()
        };
        let status = find_header(&headers, ":status").and_then(|s| s.parse::<u16>().ok());
        let now = host.now();
        // The auth domain judges the size before the body is copied into the VM: an oversized
        // reply is refused unread (`jwks_fetches_total{result="refused"}`).
        let outcome = vm.auth.borrow_mut().on_fetch_reply(
            &vm.config.auth,
            provider,
            kind,
            status,
            body_size,
            |size| host.call_response_body(size).unwrap_or_default(),
            now,
        );
        vm.note_fetch(host, provider, &outcome);
        // A discovery document leads straight to its JWKS.
        self.dispatch_due_fetches(host);
        self.wake_waiters(host, true);
    }

    /// Apply what a request's callback asked for; the proxy gets the callback's action.
    pub(super) fn follow(
        &self,
        context_id: u32,
        filter: &Rc<RefCell<Filter>>,
        step: Step,
    ) -> Action {
        let me = || (context_id, Rc::downgrade(filter));
        match step.then {
            Then::Nothing => {}
            // Once per request: a body callback during the wait reports it again.
            Then::WaitForKeys => add_once(&self.waiters, me()),
            Then::Flush => add_once(&self.flushers, me()),
            Then::CallReply(token) => {
                self.calls.borrow_mut().insert(token, me());
            }
        }
        step.action
    }

    /// Release what every streamed reply holds (see `filter::stream`).
    fn flush_streams(&self, host: &mut dyn RootHost) {
        let flushers = std::mem::take(&mut *self.flushers.borrow_mut());
        for (id, weak) in flushers {
            let Some(filter) = weak.upgrade() else {
                continue;
            };
            if host.set_effective_context(id).is_err() {
                continue;
            }
            filter.borrow_mut().on_flush(host);
        }
    }

    fn dispatch_due_fetches(&self, host: &mut dyn RootHost) {
        let due = self.vm.auth.borrow_mut().due_fetches(host.now());
        for f in due {
            self.dispatch(host, f);
        }
    }

    fn dispatch(&self, host: &mut dyn RootHost, f: FetchRequest) {
        match host.http_call(&f.cluster, &f.headers(), None, f.timeout) {
            Ok(token) => {
                self.fetches
                    .borrow_mut()
                    .insert(token, (f.provider, f.kind));
            }
            Err(e) => {
                let msg = format!(
                    "meshgate: JWKS fetch via cluster `{}` failed: {e}",
                    f.cluster
                );
                host.log(Level::Warn, &msg);
                let vm = &self.vm;
                let now = host.now();
                let outcome = vm.auth.borrow_mut().on_fetch_response(
                    &vm.config.auth,
                    f.provider,
                    f.kind,
                    None,
                    b"",
                    now,
                );
                vm.note_fetch(host, f.provider, &outcome);
            }
        }
    }

    /// Answer every waiting request whose wait is over; when keys arrived (`keys_arrived`),
    /// give the others another try. A tick only checks the bounds: verifying again costs a
    /// signature check and nothing has changed.
    fn wake_waiters(&self, host: &mut dyn RootHost, keys_arrived: bool) {
        let now = host.now();
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        let mut still = Vec::new();
        for (id, weak) in waiters {
            let Some(filter) = weak.upgrade() else {
                continue;
            };
            if host.set_effective_context(id).is_err() {
                continue;
            }
            let mut f = filter.borrow_mut();
            if !f.is_waiting() {
                continue;
            }
            let expired = f.keys_wait_expired(now);
            if !expired && !keys_arrived {
                drop(f);
                still.push((id, weak));
                continue;
            }
            let step = if expired {
                f.on_keys_timeout(host)
            } else {
                f.on_keys_ready(host)
            };
            drop(f);
            match step.then {
                Then::WaitForKeys => still.push((id, weak)),
                Then::CallReply(token) => {
                    self.calls.borrow_mut().insert(token, (id, weak));
                }
                Then::Nothing | Then::Flush => {}
            }
            if step.action == Action::Continue && step.then != Then::WaitForKeys {
                host.resume_request();
            }
        }
        self.waiters.borrow_mut().extend(still);
    }

    /// A call's reply reached its own stream: the root need not route it any more.
    pub(super) fn forget_call(&self, token: u32) {
        self.calls.borrow_mut().remove(&token);
    }

    /// Requests waiting for keys, streams holding bytes, fetches and calls in flight (for
    /// tests and status pages).
    pub fn pending(&self) -> (usize, usize, usize, usize) {
        (
            self.waiters.borrow().len(),
            self.flushers.borrow().len(),
            self.fetches.borrow().len(),
            self.calls.borrow().len(),
        )
    }
}

fn add_once(list: &RefCell<Vec<StreamRef>>, entry: StreamRef) {
    let mut list = list.borrow_mut();
    if !list.iter().any(|(id, _)| *id == entry.0) {
        list.push(entry);
    }
}
