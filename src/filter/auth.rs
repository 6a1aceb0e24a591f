//! Authentication through the filter: the requirement evaluated over the request, the
//! principal and the provider's header changes applied, a refusal answered, or the request
//! held until the keys it needs arrive (the scheduler wakes it, or refuses it once the wait's
//! bound has passed).

use super::{Filter, Phase};
use crate::auth::{self, AuthOutcome};
use crate::host::{Action, Host, Level};
use crate::observe::AuthDecision;
use crate::operation::split_path;
use crate::status::AuthError;

impl Filter {
    /// `None`: allowed, go on. `Some(action)`: denied (replied) or waiting for keys.
    pub(super) fn authenticate(&mut self, host: &mut dyn Host) -> Option<Action> {
        let vm = self.vm.clone();
        let cfg = &vm.config;
        let op = cfg.operations.get(self.op?)?;
        // Borrowed from the configuration (no copy of the requirement's tree per request).
        let requirement = self
            .policy
            .as_ref()
            .and_then(|name| cfg.policies.get(name))
            .and_then(|p| p.auth.as_ref())
            .unwrap_or(&op.auth);
        let now = self.callback_now(host);
        let (_, query) = split_path(&self.req.path);
        self.client_principal = client_cert_identity(host, self.mtls.as_deref());
        let request = auth::Request {
            headers: &self.req.headers,
            query,
            client_cert: self.client_principal.as_deref(),
        };
        let outcome = {
            let mut state = vm.auth.borrow_mut();
            let operation = Some(op.name.as_str());
            auth::authenticate_operation(
                &cfg.auth,
                &mut state,
                requirement,
                &request,
                operation,
                now,
            )
        };
        match outcome {
            AuthOutcome::Allowed(result) => {
                // `cached`: the verified-token cache answered (no signature was checked).
                let reason = if result.cached { "cached" } else { "ok" };
                let name =
                    cfg.observe
                        .names
                        .auth_decisions(&op.name, AuthDecision::Allowed, reason);
                vm.count(host, &name);
                self.principal = result.principal.as_ref().and_then(|p| p.subject.clone());
                self.client = result.client.clone();
                if let Some(id) = self.client_principal.clone() {
                    self.set_request_header(host, auth::client_cert::PRINCIPAL_HEADER, Some(&id));
                }
                for name in &result.remove_headers {
                    self.set_request_header(host, name, None);
                }
                for (name, value) in &result.set_headers {
                    self.set_request_header(host, name, Some(value));
                    if name == ":path" {
                        self.token_left_query(value);
                    }
                }
                None
            }
            AuthOutcome::Denied(err, reason) => {
                let name = cfg.observe.names.auth_decisions(
                    &op.name,
                    AuthDecision::Denied,
                    reason.as_str(),
                );
                vm.count(host, &name);
                host.log(
                    Level::Info,
                    &format!(
                        "meshgate: {} denied: {} ({}){}",
                        self.logged_request(),
                        err.message,
                        reason.as_str(),
                        self.logged_request_id()
                    ),
                );
                Some(self.reply_error(host, err))
            }
            AuthOutcome::Pending { providers } => {
                let bound = providers
                    .iter()
                    .map(|p| cfg.auth.initial_fetch_wait(*p))
                    .max()
                    .unwrap_or_default();
                self.phase = Phase::AwaitKeys {
                    since: now,
                    bound,
                    body_end: None,
                };
                Some(Action::Pause)
            }
        }
    }
}

/// The connection's verified client certificate identity (mTLS): Envoy's `connection.mtls`
/// (`mtls`, read with the request's headers) says a client certificate was presented (and,
/// with a trusted CA, verified at the handshake); the identity is its first URI SAN, else DNS
/// SAN, else subject.
fn client_cert_identity(host: &dyn Host, mtls: Option<&[u8]>) -> Option<String> {
    if mtls?.first().is_none_or(|b| *b == 0) {
        return None;
    }
    let values: Vec<Option<Vec<u8>>> = auth::client_cert::IDENTITY_PROPERTIES
        .iter()
        .map(|p| host.property(&["connection", p]))
        .collect();
    auth::client_cert::identity(values.iter().map(Option::as_deref))
}

impl Filter {
    /// The token was taken out of the query (`path` is the new `:path`): what is forwarded from
    /// now on (a REST upstream's path, `x-envoy-original-path`) is without it. (The query a
    /// transcoded message is built from never holds a token parameter: `classify_http`.)
    fn token_left_query(&mut self, path: &str) {
        self.req.path = path.to_string();
    }

    /// `METHOD path` for a log line, with the value of every token query parameter hidden
    /// (the path still holds a refused or forwarded token).
    fn logged_request(&self) -> String {
        let path = self.vm.config.auth.redact_path(&self.req.path);
        format!("{} {path}", self.req.method)
    }

    /// ` request_id=ID` (empty without one): what finds the request's access record.
    fn logged_request_id(&self) -> String {
        self.req
            .request_id
            .as_deref()
            .map(|id| format!(" request_id={id}"))
            .unwrap_or_default()
    }

    /// Whether a request that waits for a provider's first keys has waited long enough.
    pub fn keys_wait_expired(&self, now: std::time::SystemTime) -> bool {
        match self.phase {
            Phase::AwaitKeys { since, bound, .. } => now
                .duration_since(since)
                .map(|d| d >= bound)
                .unwrap_or(false),
            _ => false,
        }
    }

    /// The keys did not come in time: the request is refused as an outage, not a bad token.
    pub(super) fn keys_timeout(&mut self, host: &mut dyn Host) {
        let waited = match self.phase {
            Phase::AwaitKeys { bound, .. } => bound.as_millis(),
            _ => 0,
        };
        let err = AuthError::KeysUnavailable {
            message: "the token issuer's keys are not available yet; try again".into(),
            status: self.vm.config.auth.unavailable_status,
        };
        host.log(
            Level::Info,
            &format!(
                "meshgate: {} denied: no keys after waiting {waited} ms (keys_unavailable){}",
                self.logged_request(),
                self.logged_request_id()
            ),
        );
        if let Some(op) = self.op.and_then(|i| self.vm.config.operations.get(i)) {
            let names = &self.vm.config.observe.names;
            let name = names.auth_decisions(&op.name, AuthDecision::Denied, "keys_unavailable");
            self.vm.count(host, &name);
        }
        self.reply_error(host, err.into());
    }
}
