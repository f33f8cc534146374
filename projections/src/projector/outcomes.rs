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
