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

    fn update_bracket(
        &mut self,
        entry: OrderId,
        change: impl FnOnce(&mut BracketReport),
    ) -> Result<(), ProjectionError> {
        let mut report = self.bracket(entry)?;
        change(&mut report);
        self.put(Key::new(keys::BRACKET).u64(entry.0).build(), enc(&report));
        Ok(())
    }

    fn bracket(&self, entry: OrderId) -> Result<BracketReport, ProjectionError> {
        if let Some(r) = self.get(&Key::new(keys::BRACKET).u64(entry.0).build())? {
            return Ok(r);
        }
        let o = self
            .order_view(entry)?
            .ok_or(ProjectionError::Inconsistent(format!(
                "bracket entry {entry} unknown"
            )))?;
        Ok(BracketReport {
            entry,
            account: o.account,
            market: o.market,
            exit: None,
            closed_quantity: Dec::default(),
            realized_pnl: Dec::default(),
            exit_rejected: None,
        })
    }
}

/// The queries this view answers.
impl Views {
    pub fn sliced(&self, parent: OrderId) -> Result<Option<SlicedReport>, ProjectionError> {
        self.get(&Key::new(keys::SLICED).u64(parent.0).build())
    }

    pub fn bracket(&self, entry: OrderId) -> Result<Option<BracketReport>, ProjectionError> {
        self.get(&Key::new(keys::BRACKET).u64(entry.0).build())
    }
}
