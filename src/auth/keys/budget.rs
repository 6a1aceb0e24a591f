//! The VM's budget for ECDSA tables, and an ECDSA key that earns its table on first use.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The VM's allowance of memory for ECDSA tables, shared by every provider's keys. A table's
/// bytes are taken when it is built and given back when its key is dropped.
#[derive(Debug)]
pub struct TableBudget {
    limit: usize,
    used: AtomicUsize,
}

impl TableBudget {
    pub fn new(limit: usize) -> Arc<TableBudget> {
        Arc::new(TableBudget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes held by built tables now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .ok()?;
        Some(Reservation {
            bytes,
            budget: self.clone(),
        })
    }
}

/// Bytes of the budget held by one table; given back on drop.
#[derive(Debug)]
struct Reservation {
    bytes: usize,
    budget: Arc<TableBudget>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// An ECDSA public key, and its table once it has earned one.
pub(super) struct EcKey<K, T> {
    key: K,
    /// Set once: the table (with the budget it holds), or `None` when the budget was spent.
    table: OnceLock<Option<(T, Reservation)>>,
    budget: Arc<TableBudget>,
}

impl<K, T> EcKey<K, T> {
    pub(super) fn new(key: K, budget: &Arc<TableBudget>) -> Self {
        EcKey {
            key,
            table: OnceLock::new(),
            budget: budget.clone(),
        }
    }

    /// With the table when there is one; otherwise with `plain`, and on success the table is
    /// built (while the budget lasts) for the next tokens.
    pub(super) fn verify(
        &self,
        with_table: impl Fn(&T) -> bool,
        plain: impl Fn(&K) -> bool,
        build: impl FnOnce(&K) -> T,
        bytes: usize,
    ) -> bool {
        if let Some(Some((table, _))) = self.table.get() {
            return with_table(table);
        }
        if !plain(&self.key) {
            return false;
        }
        self.table.get_or_init(|| {
            self.budget
                .reserve(bytes)
                .map(|reservation| (build(&self.key), reservation))
        });
        true
    }

    pub(super) fn has_table(&self) -> bool {
        matches!(self.table.get(), Some(Some(_)))
    }
}
