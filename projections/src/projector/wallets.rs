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
            if *from == Party::Insurance || *to == Party::Insurance {
                let mut totals = self.margin_totals()?;
                let fund = totals.insurance.entry(*asset).or_default();
                let sign = if *to == Party::Insurance { 1 } else { -1 };
                fund.0 += amount.0 * rust_decimal::Decimal::from(sign);
                self.put(keys::MARGIN_TOTALS.to_vec(), enc(&totals));
            }
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
            Party::Fees | Party::World | Party::Clearing(_) | Party::Insurance => None,
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
                Cause::Trade(t)
                    if matches!(from, Party::Clearing(_)) || matches!(to, Party::Clearing(_)) =>
                {
                    (EntryKind::RealizedPnl, Some(t.0))
                }
                Cause::Trade(t) => (EntryKind::Trade, Some(t.0)),
                Cause::Order(o) => (EntryKind::Trade, Some(o.0)),
                // A liquidation's close off the book (holds and releases carry
                // it too, and are not entries).
                Cause::Position(_) => (EntryKind::RealizedPnl, None),
                Cause::Funding(_) => (EntryKind::Funding, None),
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

/// The queries this view answers.
impl Views {
    pub fn wallets(&self, account: AccountId) -> Result<Vec<WalletView>, ProjectionError> {
        let prefix = Key::new(keys::WALLET).u64(account.0).build();
        self.tree
            .scan_prefix(&prefix)
            .map(|kv| {
                let (k, v) = kv?;
                let code = std::str::from_utf8(&k[9..])
                    .unwrap_or("")
                    .trim_end_matches('\0');
                let asset = code
                    .parse()
                    .map_err(|e| ProjectionError::Store(format!("wallet key: {e:?}")))?;
                let row: WalletRow = codec::from_bincode_large(&v)
                    .map_err(|e| ProjectionError::Store(format!("a view does not decode: {e}")))?;
                Ok(WalletView {
                    account,
                    asset,
                    available: row.available,
                    held: row.held,
                })
            })
            .collect()
    }

    /// The value of `amount` of `asset` in `quote` at the last trade price of a market
    /// between them (either way round), rounded down to 18 places; `None` when no
    /// such market has traded.
    pub fn value_in(
        &self,
        asset: &AssetCode,
        amount: Dec,
        quote: &AssetCode,
        markets: &[MarketView],
    ) -> Option<Dec> {
        if asset == quote {
            return Some(amount);
        }
        for m in markets {
            let Some(last) = m.last_price else { continue };
            if m.spec.base == *asset && m.spec.quote == *quote {
                return amount.0.checked_mul(last.0).map(Dec);
            }
            if m.spec.base == *quote && m.spec.quote == *asset && !last.0.is_zero() {
                return amount.0.checked_div(last.0).map(|v| {
                    Dec(v.round_dp_with_strategy(18, rust_decimal::RoundingStrategy::ToZero))
                });
            }
        }
        None
    }

    pub fn ledger(
        &self,
        account: AccountId,
        filter: &EntryFilter,
        page: &Page,
    ) -> Result<Rows<LedgerEntry>, ProjectionError> {
        let prefix = Key::new(keys::ENTRY).u64(account.0).build();
        self.page_groups(
            prefix,
            page,
            |e: &LedgerEntry| e.seq,
            |e| {
                Ok(Some(e).filter(|e| {
                    filter.asset.is_none_or(|a| a == e.asset)
                        && filter.kind.is_none_or(|k| k == e.kind)
                        && in_time(e.time_ms, filter.from_ms, filter.to_ms)
                }))
            },
        )
    }

    pub fn equity_history(
        &self,
        account: AccountId,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<EquityPoint>, ProjectionError> {
        let page = Page {
            newest_first: false,
            first: PAGE_ROWS_MAX,
            from_id: from_ms,
            to_id: to_ms,
            cursor: None,
        };
        let rows = self.page(Key::new(keys::EQUITY).u64(account.0).build(), &page, |t| {
            self.get(&Key::new(keys::EQUITY).u64(account.0).u64(t).build())
        })?;
        Ok(rows.rows.into_iter().map(|(_, p)| p).collect())
    }
}
