//! The answers to commands (`Event::Outcome`), kept per batch for `outcome_at`.

use super::*;

impl Projector {
    pub(super) fn outcomes(
        &mut self,
        seq: u64,
        command_offset: u64,
        _time_ms: u64,
        event: &Event,
    ) -> Result<(), ProjectionError> {
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
        Ok(())
    }
}
