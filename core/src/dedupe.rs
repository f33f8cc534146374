//! The dedupe window: results of recent command ids, so a repeated id is answered
//! with its original result instead of being executed twice. Bounded by count and
//! by age, both set in `CoreConfig`; entries leave oldest first.

use std::collections::VecDeque;

use tape_schemas::{CommandId, CommandResult};

#[derive(Clone, Default, Debug)]
pub struct Dedupe {
    results: rustc_hash::FxHashMap<CommandId, CommandResult>,
    /// Arrival order, for eviction and for the snapshot.
    pub(crate) arrivals: VecDeque<(u64, CommandId)>,
}

impl Dedupe {
    pub fn get(&self, id: &CommandId) -> Option<CommandResult> {
        self.results.get(id).copied()
    }

    pub fn record(
        &mut self,
        id: CommandId,
        time_ms: u64,
        result: CommandResult,
        capacity: usize,
        window_ms: u64,
    ) {
        if self.results.insert(id, result).is_none() {
            self.arrivals.push_back((time_ms, id));
        }
        while let Some(&(t, old)) = self.arrivals.front() {
            let too_many = self.arrivals.len() > capacity;
            let too_old = t.saturating_add(window_ms) < time_ms;
            if !(too_many || too_old) {
                break;
            }
            self.arrivals.pop_front();
            self.results.remove(&old);
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = (u64, CommandId, CommandResult)> + '_ {
        self.arrivals
            .iter()
            .map(|(t, id)| (*t, *id, self.results[id]))
    }
}
