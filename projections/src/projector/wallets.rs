//! Wallets and the ledger: every posting moves a balance and writes an entry.

use super::*;

impl Projector {
    pub(super) fn wallets(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        let At { seq, time_ms, .. } = at;
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
