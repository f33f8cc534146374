//! The answers to commands (`Event::Outcome`), kept per batch for `outcome_at`, and
//! to the items of batches (`Event::ItemOutcome`), for `item_outcomes`.

use super::*;

impl Projector {
    pub(super) fn outcomes(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        let At {
            seq,
            command_offset,
            ..
        } = at;
        if let Event::Outcome {
            command,
            result,
            duplicate,
        } = event
        {
            let view = OutcomeView {
                command: *command,
                seq,
                command_offset,
                result: *result,
                duplicate: *duplicate,
            };
            self.batch.changes.outcomes.push(view);
        }
        if let Event::ItemOutcome { item, result, .. } = event {
            self.batch
                .changes
                .items
                .push((command_offset, *item, *result));
        }
        Ok(())
    }
}

/// Writes the batch's answers: commands' outcomes in groups, items' one by one.
pub(super) fn flush_outcomes(batch: &mut sled::Batch, changes: &Changes) {
    put_groups(batch, &changes.outcomes, |o| {
        Key::new(keys::OUTCOME).u64(o.command_offset).build()
    });
    for (offset, item, result) in &changes.items {
        let key = Key::new(keys::ITEM_OUTCOME)
            .u64(*offset)
            .u64(u64::from(*item));
        batch.insert(key.build(), enc(result));
    }
}

/// The queries this view answers.
impl Views {
    /// The engine's answer to the command at `command_offset` on the commands log.
    /// The answers to the items of the batch at `command_offset`, in item order.
    pub fn item_outcomes(
        &self,
        command_offset: u64,
    ) -> Result<Vec<CommandResult>, ProjectionError> {
        let prefix = Key::new(keys::ITEM_OUTCOME).u64(command_offset).build();
        self.tree
            .scan_prefix(&prefix)
            .map(|kv| {
                let (_, v) = kv?;
                codec::from_bincode_large(&v)
                    .map_err(|e| ProjectionError::Store(format!("a view does not decode: {e}")))
            })
            .collect()
    }

    pub fn outcome_at(&self, command_offset: u64) -> Result<Option<OutcomeView>, ProjectionError> {
        let key = Key::new(keys::OUTCOME).u64(command_offset).build();
        let Some(kv) = self.tree.range(vec![keys::OUTCOME]..=key).next_back() else {
            return Ok(None);
        };
        let (_, v) = kv?;
        let group: Vec<OutcomeView> = codec::from_bincode_large(&v)
            .map_err(|e| ProjectionError::Store(format!("a view does not decode: {e}")))?;
        Ok(group
            .binary_search_by_key(&command_offset, |o| o.command_offset)
            .ok()
            .map(|i| group[i]))
    }
}
