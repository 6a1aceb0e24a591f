//! What one VM shares between its requests: the compiled configuration, the auth state (keys,
//! token cache, fetch schedule) and the metric ids defined so far.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::auth::AuthState;
use crate::config::Config;
use crate::host::{Host, Level, MetricId, MetricKind};

pub struct Vm {
    pub config: Config,
    pub auth: RefCell<AuthState>,
    metrics: RefCell<HashMap<String, MetricId>>,
}

impl Vm {
    pub fn new(config: Config) -> Vm {
        let auth = RefCell::new(AuthState::new(&config.auth));
        Vm {
            config,
            auth,
            metrics: RefCell::new(HashMap::new()),
        }
    }

    /// The id of a metric, defined on first use (names are bounded: operations x outcomes).
    fn metric(&self, host: &dyn Host, kind: MetricKind, name: &str) -> Option<MetricId> {
        if let Some(id) = self.metrics.borrow().get(name) {
            return Some(*id);
        }
        match host.define_metric(kind, name) {
            Ok(id) => {
                self.metrics.borrow_mut().insert(name.to_string(), id);
                Some(id)
            }
            Err(e) => {
                host.log(Level::Warn, &format!("meshgate: metric {name}: {e}"));
                None
            }
        }
    }

    pub fn count(&self, host: &dyn Host, name: &str) {
        if let Some(id) = self.metric(host, MetricKind::Counter, name) {
            host.increment_metric(id, 1);
        }
    }

    pub fn record(&self, host: &dyn Host, name: &str, value: u64) {
        if let Some(id) = self.metric(host, MetricKind::Histogram, name) {
            host.record_metric(id, value);
        }
    }
}
