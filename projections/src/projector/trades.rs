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

/// The queries this view answers.
impl Views {
    /// The close of the last 1-hour candle at or before `time_ms` of `market`.
    pub fn close_at(&self, market: &Symbol, time_ms: u64) -> Result<Option<Dec>, ProjectionError> {
        let hour = Interval::H1.key();
        let start = Key::new(keys::CANDLE).name(market).u8(hour).build();
        let end = Key::new(keys::CANDLE)
            .name(market)
            .u8(hour)
            .u64(time_ms)
            .build();
        match self.tree.range(start..=end).next_back() {
            Some(kv) => {
                let (_, v) = kv?;
                let c: Candle = codec::from_bincode_large(&v)
                    .map_err(|e| ProjectionError::Store(e.to_string()))?;
                Ok(Some(c.close))
            }
            None => Ok(None),
        }
    }

    /// A trade by id (from its market's tape).
    pub fn trade(&self, id: TradeId) -> Result<Option<TradeView>, ProjectionError> {
        for m in self.markets()? {
            let prefix = Key::new(keys::MARKET_TRADE).name(&m.spec.symbol).build();
            let key = [prefix.as_slice(), &id.0.to_be_bytes()].concat();
            if let Some(kv) = self.tree.range(prefix.clone()..=key).next_back() {
                let (_, v) = kv?;
                let group: Vec<TradeView> = codec::from_bincode_large(&v)
                    .map_err(|e| ProjectionError::Store(format!("a view does not decode: {e}")))?;
                if let Some(t) = group.into_iter().find(|t| t.trade == id) {
                    return Ok(Some(t));
                }
            }
        }
        Ok(None)
    }

    fn trades_under(
        &self,
        prefix: Vec<u8>,
        filter: &TradeFilter,
        page: &Page,
    ) -> Result<Rows<TradeView>, ProjectionError> {
        self.page_groups(
            prefix,
            page,
            |t: &TradeView| t.trade.0,
            |t| {
                Ok(Some(t).filter(|t| {
                    filter.market.is_none_or(|m| m == t.market)
                        && in_time(t.time_ms, filter.from_ms, filter.to_ms)
                }))
            },
        )
    }

    pub fn account_trades(
        &self,
        account: AccountId,
        filter: &TradeFilter,
        page: &Page,
    ) -> Result<Rows<TradeView>, ProjectionError> {
        self.trades_under(
            Key::new(keys::ACCOUNT_TRADE).u64(account.0).build(),
            filter,
            page,
        )
    }

    pub fn market_trades(
        &self,
        market: &Symbol,
        filter: &TradeFilter,
        page: &Page,
    ) -> Result<Rows<TradeView>, ProjectionError> {
        self.trades_under(
            Key::new(keys::MARKET_TRADE).name(market).build(),
            filter,
            page,
        )
    }

    /// Candles of `interval` starting in
    /// `[from_ms, to_ms]`, oldest first, at most `limit`.
    pub fn candles(
        &self,
        market: &Symbol,
        interval: Interval,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<Candle>, ProjectionError> {
        let page = Page {
            newest_first: false,
            first: limit,
            from_id: from_ms,
            to_id: to_ms,
            cursor: None,
        };
        let prefix = Key::new(keys::CANDLE)
            .name(market)
            .u8(interval.key())
            .build();
        let rows = self.page(prefix, &page, |start| {
            self.get(
                &Key::new(keys::CANDLE)
                    .name(market)
                    .u8(interval.key())
                    .u64(start)
                    .build(),
            )
        })?;
        Ok(rows.rows.into_iter().map(|(_, c)| c).collect())
    }

    /// The rolling 24 hours before the projector's clock, from 1-minute candles.
    pub fn ticker(&self, market: &Symbol) -> Result<Option<Ticker>, ProjectionError> {
        let Some(m) = self.market(market)? else {
            return Ok(None);
        };
        let (_, now_ms) = self.checkpoint()?;
        let from_ms = now_ms.saturating_sub(86_400_000 - 60_000);
        let from_ms = from_ms - from_ms % 60_000;
        let candles = self.candles(market, Interval::M1, from_ms, now_ms, 1_440)?;
        let depth = self.depth(market, 1)?;
        let mut t = Ticker {
            market: *market,
            last: m.last_price,
            open: candles.first().map(|c| c.open),
            high: None,
            low: None,
            volume: Dec::default(),
            quote_volume: Dec::default(),
            trades: 0,
            best_bid: depth.bids.first().map(|l| l.0),
            best_ask: depth.asks.first().map(|l| l.0),
        };
        let mut volume = Decimal::ZERO;
        let mut quote_volume = Decimal::ZERO;
        for c in &candles {
            t.high = Some(t.high.map_or(c.high, |h| h.max(c.high)));
            t.low = Some(t.low.map_or(c.low, |l| l.min(c.low)));
            volume += c.volume.0;
            quote_volume += c.quote_volume.0;
            t.trades += c.trades;
        }
        t.volume = Dec(volume);
        t.quote_volume = Dec(quote_volume);
        Ok(Some(t))
    }
}
