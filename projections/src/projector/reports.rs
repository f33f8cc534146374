//! Sliced and bracket order reports.

use super::*;

impl Projector {
    pub(super) fn reports(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        let At { time_ms, .. } = at;
        match event {
            Event::SlicedPlaced {
                parent,
                market,
                children,
            } => {
                let report = SlicedReport {
                    parent: *parent,
                    account: AccountId(0),
                    market: *market,
                    children: children.clone(),
                    created_ms: time_ms,
                };
                self.put(Key::new(keys::SLICED).u64(parent.0).build(), enc(&report));
            }
            Event::BracketExitPlaced { entry, exit } => {
                self.update_bracket(*entry, |r| r.exit = Some(*exit))?;
            }
            Event::BracketPnl {
                entry,
                closed_quantity,
                realized_pnl,
                ..
            } => self.update_bracket(*entry, |r| {
                r.closed_quantity = *closed_quantity;
                r.realized_pnl = *realized_pnl;
            })?,
            Event::BracketExitRejected { entry, reason } => {
                self.update_bracket(*entry, |r| r.exit_rejected = Some(*reason))?;
            }
            _ => {} // not this view's
        }
        Ok(())
    }
}
