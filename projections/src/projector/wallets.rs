//! Wallets and the ledger: every posting moves a balance and writes an entry.

use super::*;

impl Projector {
    pub(super) fn wallets(
        &mut self,
        seq: u64,
        _command_offset: u64,
        time_ms: u64,
        event: &Event,
    ) -> Result<(), ProjectionError> {
        if let Event::Posting {
            asset,
            from,
            to,
            amount,
            cause,
        } = event
        {
            self.posting(seq, time_ms, *asset, *from, *to, *amount, *cause);
        }
        Ok(())
    }
}
