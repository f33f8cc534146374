//! Withdrawals and their states.

use super::*;

impl Projector {
    pub(super) fn custody(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        let At { time_ms, .. } = at;
        match event {
            Event::WithdrawalRequested {
                withdrawal,
                account,
                asset,
                amount,
            } => {
                let view = WithdrawalView {
                    withdrawal: *withdrawal,
                    account: *account,
                    asset: *asset,
                    amount: *amount,
                    status: WithdrawalStatus::Requested,
                    requested_ms: time_ms,
                    updated_ms: time_ms,
                };
                self.put(
                    Key::new(keys::WITHDRAWAL).u64(withdrawal.0).build(),
                    enc(&view),
                );
            }
            Event::WithdrawalCompleted { withdrawal, .. }
            | Event::WithdrawalFailed { withdrawal, .. } => {
                let key = Key::new(keys::WITHDRAWAL).u64(withdrawal.0).build();
                if let Some(mut view) = self.get::<WithdrawalView>(&key)? {
                    view.status = if matches!(event, Event::WithdrawalCompleted { .. }) {
                        WithdrawalStatus::Completed
                    } else {
                        WithdrawalStatus::Failed
                    };
                    view.updated_ms = time_ms;
                    self.put(key, enc(&view));
                }
            }
            _ => {} // not this view's
        }
        Ok(())
    }
}
