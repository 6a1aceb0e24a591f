//! How a finished JWKS fetch is counted and logged (`Vm::note_fetch`): a refused document has
//! its own `result` label and a warning with the reason; `oct` keys taken from a fetched JWKS
//! under `allow_symmetric_keys` are warned about each time they load.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{demo_config, FakeHost};
use meshgate::auth::FetchOutcome;
use meshgate::filter::Vm;
use meshgate::host::Level;

fn warnings(h: &FakeHost) -> Vec<String> {
    h.logs
        .borrow()
        .iter()
        .filter(|(l, _)| *l == Level::Warn)
        .map(|(_, m)| m.clone())
        .collect()
}

#[test]
fn a_refused_document_is_counted_as_refused_and_logged_with_its_reason() {
    let vm = Vm::new(demo_config());
    let names = vm.config.observe.names.clone();
    let h = FakeHost::default();
    let refused = FetchOutcome::Refused {
        error: "JWKS has 1300 keys, more than limits.max_jwks_keys (64)".into(),
        kept_keys: true,
    };
    // An index past the demo's providers (it has one, `demo`): named `unknown`.
    vm.note_fetch(&h, 99, &refused);
    assert_eq!(h.counter(&names.jwks_fetch_result("unknown", "refused")), 1);
    assert_eq!(
        h.counter(&names.jwks_fetches("unknown", false)),
        0,
        "not a failure"
    );
    assert_eq!(
        warnings(&h),
        vec![
            "meshgate: provider `unknown`: JWKS refused: JWKS has 1300 keys, more than \
             limits.max_jwks_keys (64); the cached keys stay in use"
                .to_string()
        ]
    );
}

#[test]
fn symmetric_keys_from_a_fetched_jwks_are_warned_about() {
    let vm = Vm::new(demo_config());
    let h = FakeHost::default();
    let loaded = |symmetric| FetchOutcome::Updated {
        keys: 2,
        changed: true,
        skipped: vec![],
        symmetric,
    };
    vm.note_fetch(&h, 0, &loaded(0));
    assert!(warnings(&h).is_empty());
    vm.note_fetch(&h, 0, &loaded(1));
    let w = warnings(&h);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("1 symmetric (oct) keys") && w[0].contains("allow_symmetric_keys"),
        "{w:?}"
    );
}
