//! The root context: translation only. Configuration, ticks and HTTP call replies go to the
//! core's [`Scheduler`], which owns every decision about them.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};

use super::abi;
use super::host_impl::AbiHost;
use super::http::Http;
use super::trap::{enter, set_scheduler};
use crate::filter::{Callback, Scheduler, TICK};

pub struct Root {
    scheduler: Option<Rc<Scheduler>>,
}

impl Root {
    pub fn new(_context_id: u32) -> Root {
        Root { scheduler: None }
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
        enter(None, Callback::RootCallReply);
        if let Some(s) = &self.scheduler {
            s.on_http_call_response(&mut AbiHost, token, num_headers, body_size);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let bytes = abi::get_buffer(BufferType::PluginConfiguration, 0, size).unwrap_or_default();
        let Some(scheduler) = Scheduler::configure(&mut AbiHost, &bytes) else {
            return false;
        };
        set_scheduler(&scheduler);
        self.scheduler = Some(scheduler);
        abi::set_tick_period_ms(u32::try_from(TICK.as_millis()).unwrap_or(50));
        true
    }

    fn on_tick(&mut self) {
        enter(None, Callback::Tick);
        if let Some(s) = &self.scheduler {
            s.on_tick(&mut AbiHost);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let stream = self.scheduler.as_ref()?.stream(context_id);
        Some(Box::new(Http { stream }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
