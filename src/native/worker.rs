//! Per-worker-thread state. Envoy runs every hook of a stream on that stream's worker thread,
//! so each worker gets its own root, exactly as each worker had its own VM with Proxy-Wasm:
//! a [`Scheduler`] per filter configuration (keys, token cache, metric ids, waiting requests),
//! built on the thread's first request. Everything here is `thread_local!` and never crosses a
//! thread (the core's `Rc`/`RefCell` state stays `!Send` and is only touched by its own thread).
//!
//! Re-entrancy: Envoy runs some calls synchronously (a local reply runs the stream's encoder
//! hooks at once; resuming a request runs its next hooks; a callout can fail inline). The core
//! holds borrows of its state while it asks the host for those, so the glue defers them
//! ([`Deferred`]) until the outermost hook has left the core, as Envoy's Wasm host defers local
//! replies.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use super::abi::{self, FilterEnvoyPtr, HttpHeader, ModuleBuffer};
use crate::filter::Scheduler;

/// Something the core asked for that must wait until no core state is borrowed.
pub enum Deferred {
    Reply {
        envoy: FilterEnvoyPtr,
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    ContinueDecoding(FilterEnvoyPtr),
    ContinueEncoding(FilterEnvoyPtr),
    /// A callout reply Envoy delivered while the core was busy (an inline failure).
    Call(Box<dyn FnOnce()>),
}

/// A callout in flight: our token, and whether the root (not the stream) made it; a root
/// call keeps its request, to be sent again if its stream goes away first.
#[derive(Clone)]
pub struct Callout {
    pub token: u32,
    pub as_root: bool,
    pub request: Option<std::rc::Rc<CallRequest>>,
}

/// What a root call sent.
pub struct CallRequest {
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: std::time::Duration,
}

#[derive(Default)]
pub struct Worker {
    /// The root of each filter configuration (by the configuration's id).
    pub roots: HashMap<u64, Rc<Scheduler>>,
    /// Live streams on this thread: context id -> Envoy's filter and its configuration's id.
    pub streams: HashMap<u32, (FilterEnvoyPtr, u64)>,
    /// Callouts in flight: (filter, Envoy's stream id) -> ours.
    pub callouts: HashMap<(usize, u64), Callout>,
    /// Their replies so far (headers, body, trailers arrive in separate hooks).
    pub replies: HashMap<(usize, u64), super::host_impl::CallReply>,
    /// Root callouts whose stream went away before the reply (Envoy cancels a stream's
    /// callouts with it), by configuration: sent again from the next live stream.
    pub orphaned: Vec<(u64, Callout)>,
    /// When each root last ticked.
    pub last_tick: HashMap<u64, Instant>,
    /// Metrics the core defined on this thread: (family, label values), by `MetricId`.
    pub metrics: Vec<(usize, Vec<String>)>,
    /// Per configuration, the stream whose Envoy scheduler carries its root's ticks
    /// (`ticker`): (context id, scheduler).
    pub carriers: HashMap<u64, (u32, usize)>,
    next_context: u32,
    next_token: u32,
}

impl Worker {
    pub fn new_context(&mut self) -> u32 {
        self.next_context = self.next_context.wrapping_add(1).max(1);
        self.next_context
    }

    pub fn new_token(&mut self) -> u32 {
        self.next_token = self.next_token.wrapping_add(1).max(1);
        self.next_token
    }

    pub fn is_live(&self, envoy: FilterEnvoyPtr) -> bool {
        self.streams.values().any(|(e, _)| *e == envoy)
    }
}

thread_local! {
    pub static WORKER: RefCell<Worker> = RefCell::new(Worker::default());
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static DEFERRED: RefCell<Vec<Deferred>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` with the worker's state (never held across a call into the core).
pub fn with<R>(f: impl FnOnce(&mut Worker) -> R) -> R {
    WORKER.with(|w| f(&mut w.borrow_mut()))
}

pub fn defer(d: Deferred) {
    DEFERRED.with(|q| q.borrow_mut().push(d));
}

/// Whether a hook is running the core on this thread (a new hook now is re-entrant).
pub fn busy() -> bool {
    DEPTH.with(Cell::get) > 0
}

/// Run a hook's work; when the outermost one ends, do what it deferred (in order; more may be
/// deferred meanwhile).
pub fn enter<R>(f: impl FnOnce() -> R) -> R {
    DEPTH.with(|d| d.set(d.get() + 1));
    let r = f();
    DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    if !busy() {
        drain();
    }
    r
}

fn drain() {
    loop {
        let next = DEFERRED.with(|q| {
            let mut q = q.borrow_mut();
            if q.is_empty() {
                None
            } else {
                Some(q.remove(0))
            }
        });
        let Some(d) = next else {
            return;
        };
        run(d);
    }
}

fn run(d: Deferred) {
    match d {
        Deferred::Reply {
            envoy,
            status,
            headers,
            body,
        } => {
            if with(|w| w.is_live(envoy)) {
                send_response(envoy, status, &headers, &body);
            }
        }
        Deferred::ContinueDecoding(envoy) => {
            if with(|w| w.is_live(envoy)) {
                // SAFETY: a live filter of this thread.
                unsafe { abi::envoy_dynamic_module_callback_http_filter_continue_decoding(envoy) };
            }
        }
        Deferred::ContinueEncoding(envoy) => {
            if with(|w| w.is_live(envoy)) {
                // SAFETY: a live filter of this thread.
                unsafe { abi::envoy_dynamic_module_callback_http_filter_continue_encoding(envoy) };
            }
        }
        Deferred::Call(f) => enter(f),
    }
}

/// A local reply, now.
pub fn send_response(
    envoy: FilterEnvoyPtr,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) {
    let mut hs: Vec<HttpHeader> = headers.iter().map(|(k, v)| HttpHeader::of(k, v)).collect();
    let details = b"meshgate";
    // SAFETY: the vectors and slices outlive the call; Envoy copies them.
    unsafe {
        abi::envoy_dynamic_module_callback_http_send_response(
            envoy,
            u32::from(status),
            hs.as_mut_ptr(),
            hs.len(),
            ModuleBuffer::of(body),
            ModuleBuffer::of(details),
        );
    }
}
