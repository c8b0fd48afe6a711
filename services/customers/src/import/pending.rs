//! The batches of an import decided but not yet committed, so a later batch finds its
//! duplicates among them while the writer is still committing.

use std::collections::HashMap;

use uuid::Uuid;

use super::{Decided, rules};

/// The decided batches not yet committed: the keys of their customers, with their rows and
/// ids (a later batch's rows with these keys are duplicates of them), and how many there are.
#[derive(Default)]
pub(super) struct Pending {
    state: std::sync::Mutex<PendingState>,
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct PendingState {
    keys: HashMap<String, (i64, Uuid)>,
    batches: usize,
    abandoned: bool,
}

impl Pending {
    fn state(&self) -> std::sync::MutexGuard<'_, PendingState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The pending customers holding any of `keys`, as the database look-up gives them.
    pub(super) fn matching(&self, keys: &[String]) -> Vec<(String, Uuid, Option<i64>)> {
        let state = self.state();
        keys.iter()
            .filter_map(|k| {
                state
                    .keys
                    .get(k)
                    .map(|(row, id)| (k.clone(), *id, Some(*row)))
            })
            .collect()
    }

    /// Holds a decided batch's keys until it is committed (those an earlier pending batch
    /// already holds stay that batch's).
    pub(super) fn add(&self, batch: &mut Decided) {
        let mut state = self.state();
        state.batches += 1;
        for c in &batch.created {
            for key in rules::dedup_keys(&c.fields) {
                if let std::collections::hash_map::Entry::Vacant(e) = state.keys.entry(key) {
                    batch.pending_keys.push(e.key().clone());
                    e.insert((c.row, c.id));
                }
            }
        }
    }

    /// Forgets a committed batch's keys (the look-ups find them in the database now).
    pub(super) fn done(&self, batch: &Decided) {
        let mut state = self.state();
        state.batches -= 1;
        for key in &batch.pending_keys {
            state.keys.remove(key);
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// The writers stopped (one failed): nothing pending will be committed.
    pub(super) fn abandon(&self) {
        self.state().abandoned = true;
        self.changed.notify_waiters();
    }

    /// Waits until every decided batch is committed, or the writers stopped.
    pub(super) async fn drained(&self) {
        loop {
            let changed = self.changed.notified();
            {
                let state = self.state();
                if state.batches == 0 || state.abandoned {
                    return;
                }
            }
            changed.await;
        }
    }
}
