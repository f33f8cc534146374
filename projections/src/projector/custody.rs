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

/// The queries this view answers.
impl Views {
    pub fn withdrawal(&self, id: WithdrawalId) -> Result<Option<WithdrawalView>, ProjectionError> {
        self.get(&Key::new(keys::WITHDRAWAL).u64(id.0).build())
    }

    /// Withdrawals by id, paged, keeping those of `account` (all when none) in one
    /// of `statuses` (any when empty). A filter that matches few rows reads many.
    pub fn withdrawals(
        &self,
        account: Option<AccountId>,
        statuses: &[WithdrawalStatus],
        page: &Page,
    ) -> Result<Rows<WithdrawalView>, ProjectionError> {
        self.page(vec![keys::WITHDRAWAL], page, |id| {
            Ok(self.withdrawal(WithdrawalId(id))?.filter(|w| {
                account.is_none_or(|a| w.account == a)
                    && (statuses.is_empty() || statuses.contains(&w.status))
            }))
        })
    }
}
