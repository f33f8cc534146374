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

    #[allow(clippy::too_many_arguments)]
    fn posting(
        &mut self,
        seq: u64,
        time_ms: u64,
        asset: AssetCode,
        from: Party,
        to: Party,
        amount: Dec,
        cause: Cause,
    ) {
        let account_of = |p: Party| match p {
            Party::Available(a) | Party::Held(a) => Some(a),
            Party::Fees | Party::World => None,
        };
        for (party, sign) in [(from, -Decimal::ONE), (to, Decimal::ONE)] {
            let Some(account) = account_of(party) else {
                continue;
            };
            let delta = amount.0 * sign;
            let row = self.wallets.entry((account, asset)).or_insert_with(|| {
                self.account_assets.entry(account).or_default().push(asset);
                WalletRow::default()
            });
            match party {
                Party::Available(_) => row.available.0 += delta,
                _ => row.held.0 += delta,
            }
            let total = row.available.0 + row.held.0;
            self.batch.wallets.insert((account, asset));
            self.batch.equity.insert(account);
            if account_of(from) == account_of(to) {
                continue; // a hold or release: the total does not change
            }
            let (kind, reference) = match cause {
                Cause::Deposit => (EntryKind::Deposit, None),
                Cause::Withdrawal(w) => (EntryKind::Withdrawal, Some(w.0)),
                Cause::Trade(t) if to == Party::Fees => (EntryKind::Fee, Some(t.0)),
                Cause::Trade(t) => (EntryKind::Trade, Some(t.0)),
                Cause::Order(o) => (EntryKind::Trade, Some(o.0)),
            };
            let entry = LedgerEntry {
                seq,
                time_ms,
                account,
                asset,
                kind,
                amount: d(delta),
                balance: d(total),
                reference,
            };
            self.batch.entries.entry(account).or_default().push(entry);
            self.batch.changes.entries.push(entry);
        }
    }

    /// Flushes the touched wallets, the accounts' hourly equity points and the new
    /// ledger entries.
    pub(super) fn flush_wallets(
        &self,
        pending: &Pending,
        batch: &mut sled::Batch,
        changes: &mut Changes,
    ) {
        for &(account, asset) in &pending.wallets {
            let row = self.wallets[&(account, asset)];
            batch.insert(
                Key::new(keys::WALLET).u64(account.0).name(&asset).build(),
                enc(&row),
            );
            changes.wallets.push(WalletView {
                account,
                asset,
                available: row.available,
                held: row.held,
            });
        }
        let hour = self.cp.clock_ms - self.cp.clock_ms % 3_600_000;
        for account in &pending.equity {
            let mut balances: Vec<(AssetCode, Dec)> = self.account_assets[account]
                .iter()
                .map(|a| {
                    let row = self.wallets[&(*account, *a)];
                    (*a, d(row.available.0 + row.held.0))
                })
                .collect();
            balances.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            let point = EquityPoint {
                time_ms: hour,
                balances,
            };
            batch.insert(
                Key::new(keys::EQUITY).u64(account.0).u64(hour).build(),
                enc(&point),
            );
        }
        for (account, rows) in &pending.entries {
            put_groups(batch, rows, |r| {
                Key::new(keys::ENTRY).u64(account.0).u64(r.seq).build()
            });
        }
    }
}
