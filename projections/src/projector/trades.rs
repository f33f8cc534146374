//! Trades: the market's and both accounts' trade lists, order fills, candles and tickers.

use super::*;

impl Projector {
    pub(super) fn trades(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        let At { seq, time_ms, .. } = at;
        if let Event::Trade {
            trade,
            market,
            price,
            quantity,
            quote_quantity,
            taker_side,
            maker_order,
            taker_order,
            maker_account,
            taker_account,
            maker_fee,
            taker_fee,
        } = event
        {
            let view = TradeView {
                trade: *trade,
                seq,
                time_ms,
                market: *market,
                price: *price,
                quantity: *quantity,
                quote_quantity: *quote_quantity,
                taker_side: *taker_side,
                maker_order: *maker_order,
                taker_order: *taker_order,
                maker_account: *maker_account,
                taker_account: *taker_account,
                maker_fee: *maker_fee,
                taker_fee: *taker_fee,
            };
            for account in [maker_account, taker_account] {
                let rows = self.batch.account_trades.entry(*account).or_default();
                rows.push(view);
            }
            self.batch
                .market_trades
                .entry(*market)
                .or_default()
                .push(view);
            self.batch.changes.trades.push(view);
            for (id, fee, maker) in [
                (maker_order, maker_fee, true),
                (taker_order, taker_fee, false),
            ] {
                let o = self.order_mut(*id)?;
                o.filled.0 += quantity.0;
                o.filled_quote.0 += quote_quantity.0;
                o.fees.0 += fee.0;
                o.status = OrderStatus::PartiallyFilled;
                o.updated_ms = time_ms;
                o.updated_seq = seq;
                if maker {
                    o.visible.0 -= quantity.0;
                    let side = o.side;
                    change(self.book(*market).side(side), price.0, -quantity.0);
                }
            }
            if let Some(m) = self.markets.get_mut(market) {
                m.last_price = Some(*price);
                m.last_trade_ms = Some(time_ms);
                self.batch.markets.insert(*market);
            }
            self.candle_trade(*market, time_ms, *price, *quantity, *quote_quantity)?;
        }
        Ok(())
    }

    /// Event times are the engine's clock, a running maximum, so a trade never
    /// belongs to a candle before the one in memory.
    fn candle_trade(
        &mut self,
        market: Symbol,
        time_ms: u64,
        price: Dec,
        qty: Dec,
        quote: Dec,
    ) -> Result<(), ProjectionError> {
        for interval in Interval::ALL {
            let start_ms = time_ms - time_ms % interval.ms();
            let slot = (market, interval);
            let current = match self.candles.get(&slot) {
                Some(c) if c.start_ms == start_ms => Some(*c),
                Some(old) => {
                    // The candle closed: keep its final state before the next one opens.
                    let old = *old;
                    let key = Key::new(keys::CANDLE)
                        .name(&market)
                        .u8(interval.key())
                        .u64(old.start_ms)
                        .build();
                    self.put(key, enc(&old));
                    None
                }
                None => self.get::<Candle>(
                    &Key::new(keys::CANDLE)
                        .name(&market)
                        .u8(interval.key())
                        .u64(start_ms)
                        .build(),
                )?,
            };
            let c = match current {
                Some(mut c) => {
                    c.high = c.high.max(price);
                    c.low = c.low.min(price);
                    c.close = price;
                    c.volume.0 += qty.0;
                    c.quote_volume.0 += quote.0;
                    c.trades += 1;
                    c
                }
                None => Candle {
                    start_ms,
                    open: price,
                    high: price,
                    low: price,
                    close: price,
                    volume: qty,
                    quote_volume: quote,
                    trades: 1,
                },
            };
            self.candles.insert(slot, c);
            self.batch.candles.insert(slot);
        }
        Ok(())
    }

    /// Flushes the touched candles and the new trades, per account and per market.
    pub(super) fn flush_trades(
        &self,
        pending: &Pending,
        batch: &mut sled::Batch,
        changes: &mut Changes,
    ) {
        for slot in &pending.candles {
            let c = self.candles[slot];
            let (market, i) = *slot;
            batch.insert(
                Key::new(keys::CANDLE)
                    .name(&market)
                    .u8(i.key())
                    .u64(c.start_ms)
                    .build(),
                enc(&c),
            );
            changes.candles.push((market, i, c));
        }
        for (account, rows) in &pending.account_trades {
            put_groups(batch, rows, |t| {
                Key::new(keys::ACCOUNT_TRADE)
                    .u64(account.0)
                    .u64(t.trade.0)
                    .build()
            });
        }
        for (market, rows) in &pending.market_trades {
            put_groups(batch, rows, |t| {
                Key::new(keys::MARKET_TRADE)
                    .name(market)
                    .u64(t.trade.0)
                    .build()
            });
        }
    }
}
