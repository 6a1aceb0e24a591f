//! [`Host::properties`](crate::host::Host::properties) in one host call: the paths become one
//! CEL list expression, compiled once per VM by Envoy's `expr_create` and evaluated per call by
//! `expr_evaluate` (`crate::host::batch`). `None` sends the caller back to one read per path:
//! a proxy without CEL (the expression is then never tried again), or an evaluation that
//! failed.

use std::cell::RefCell;

use super::abi;
use crate::host::batch;

/// Envoy's `WasmResult::NotFound`: the token is not (or no longer) the root context's.
const NOT_FOUND: u32 = 1;

/// The compiled expression of a list of paths: Envoy's token, or `None` where Envoy refused it.
struct Compiled {
    paths: Vec<Vec<String>>,
    token: Option<u32>,
}

thread_local! {
    static COMPILED: RefCell<Vec<Compiled>> = const { RefCell::new(Vec::new()) };
}

pub fn properties(paths: &[&[&str]]) -> Option<Vec<Option<Vec<u8>>>> {
    let token = token(paths)?;
    match abi::call_foreign("expr_evaluate", &token.to_le_bytes()) {
        Ok(bytes) => {
            let values = batch::decode(&bytes, paths.len());
            if values.is_none() {
                abi::log(
                    1,
                    "meshgate: a CEL list of properties did not decode; read one by one",
                );
            }
            values
        }
        Err(NOT_FOUND) => {
            // A new root context (configuration update) has its own expressions: compile
            // again on the next call.
            COMPILED.with(|c| c.borrow_mut().retain(|e| e.token != Some(token)));
            None
        }
        Err(status) => {
            // Debug level: a request the list cannot describe (e.g. no route) reads the
            // properties one by one; seen at `--component-log-level wasm:debug`.
            abi::log(
                1,
                &format!(
                    "meshgate: a CEL list of properties failed (status {status}); read one by one"
                ),
            );
            None
        }
    }
}

fn same(a: &[Vec<String>], b: &[&[&str]]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.iter().eq(y.iter()))
}

fn token(paths: &[&[&str]]) -> Option<u32> {
    let known = COMPILED.with(|c| {
        c.borrow()
            .iter()
            .find(|e| same(&e.paths, paths))
            .map(|e| e.token)
    });
    if let Some(token) = known {
        return token;
    }
    let token = batch::expression(paths).and_then(|e| create(&e, paths.len()));
    let paths = paths
        .iter()
        .map(|p| p.iter().map(|s| s.to_string()).collect())
        .collect();
    COMPILED.with(|c| c.borrow_mut().push(Compiled { paths, token }));
    token
}

/// Compile `expression` (a list of `n` properties): Envoy's token for it.
fn create(expression: &str, n: usize) -> Option<u32> {
    match abi::call_foreign("expr_create", expression.as_bytes()) {
        Ok(bytes) => {
            let b: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
            let note = format!("meshgate: {n} properties read in one call (CEL: {expression})");
            abi::log(1, &note);
            Some(u32::from_le_bytes(b))
        }
        Err(status) => {
            let note = format!(
                "meshgate: the proxy evaluates no CEL (expr_create: status {status}): \
                 properties are read one call each"
            );
            abi::log(2, &note);
            None
        }
    }
}
