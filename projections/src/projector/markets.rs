//! Assets and markets as the admin events define them.

use super::*;

impl Projector {
    pub(super) fn markets(&mut self, _at: At, event: &Event) -> Result<(), ProjectionError> {
        match event {
            Event::AssetCreated(spec) => {
                let view = AssetView {
                    code: spec.code,
                    scale: spec.scale,
                    enabled: true,
                };
                self.put(Key::new(keys::ASSET).name(&spec.code).build(), enc(&view));
            }
            Event::AssetUpdated { asset, enabled } => {
                let key = Key::new(keys::ASSET).name(asset).build();
                if let Some(mut view) = self.get::<AssetView>(&key)? {
                    view.enabled = *enabled;
                    self.put(key, enc(&view));
                }
            }
            Event::MarketCreated(spec) => self.market_created(spec),
            Event::MarketUpdated {
                market,
                status,
                fees,
                price_band_bps,
                reference_price,
            } => {
                if let Some(m) = self.markets.get_mut(market) {
                    m.status = *status;
                    m.fees = *fees;
                    m.price_band_bps = *price_band_bps;
                    m.reference_price = *reference_price;
                    self.batch.markets.insert(*market);
                }
            }
            _ => {} // not this view's
        }
        Ok(())
    }

    /// Perpetuals: their rules and prices, and accounts' leverage.
    pub(super) fn perpetuals(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        match event {
            Event::PerpetualCreated { spec, brackets } => {
                self.market_created(&spec.market);
                let view = PerpetualView {
                    spec: spec.clone(),
                    brackets: brackets.clone(),
                    index: None,
                    index_source_ms: None,
                    index_at_ms: None,
                    mark: None,
                    stale: false,
                    open_interest: Dec::ZERO,
                    funding_rate: None,
                    funding_at_ms: None,
                };
                self.perpetuals.insert(spec.market.symbol, view);
                self.batch.perpetuals.insert(spec.market.symbol);
            }
            Event::IndexPriceSet {
                market,
                index,
                mark,
                source_ms,
            } => {
                if let Some(p) = self.perpetuals.get_mut(market) {
                    p.index = Some(*index);
                    p.mark = Some(*mark);
                    p.index_source_ms = Some(*source_ms);
                    p.index_at_ms = Some(at.time_ms);
                    p.stale = false;
                    self.batch.perpetuals.insert(*market);
                }
            }
            Event::IndexStale { market, .. } => {
                if let Some(p) = self.perpetuals.get_mut(market) {
                    p.stale = true;
                    self.batch.perpetuals.insert(*market);
                }
            }
            Event::LeverageTiersSet(caps) => self.put(keys::LEVERAGE_TIERS.to_vec(), enc(caps)),
            Event::AccountTierSet { account, tier } => {
                self.put(Key::new(keys::TIER).u64(account.0).build(), enc(tier))
            }
            Event::LeverageSet {
                account,
                market,
                leverage,
            } => {
                let key = Key::new(keys::LEVERAGE).u64(account.0).name(market).build();
                self.put(key, enc(leverage))
            }
            Event::PositionChanged { .. } => self.position_changed(at, event)?,
            Event::LiquidationStarted { .. }
            | Event::LiquidationStep { .. }
            | Event::LiquidationEnded { .. }
            | Event::Deleveraged { .. } => self.liquidation(at, event)?,
            Event::InsurancePosition { .. } => self.fund_position(event)?,
            Event::NotionalCapSet {
                account,
                asset,
                cap,
            } => self.notional_cap_set(*account, asset, *cap),
            Event::FundingRound { .. } | Event::FundingPaid { .. } => self.funding(at, event)?,
            _ => {} // not this view's
        }
        Ok(())
    }

    /// A position's row, and its market's open interest.
    fn position_changed(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        let Event::PositionChanged {
            account,
            market,
            size,
            cost,
            realized_pnl,
            leverage,
            initial_margin,
            ..
        } = event
        else {
            return Ok(());
        };
        let key = Key::new(keys::POSITION).u64(account.0).name(market).build();
        let old: Option<PositionView> = self.get(&key)?;
        let longs = |s: Dec| s.0.max(rust_decimal::Decimal::ZERO);
        if let Some(p) = self.perpetuals.get_mut(market) {
            let before = old.map_or(rust_decimal::Decimal::ZERO, |o| longs(o.size));
            p.open_interest = Dec(p.open_interest.0 + longs(*size) - before);
            self.batch.perpetuals.insert(*market);
        }
        let realized = old.map_or(Dec::ZERO, |o| o.realized_pnl);
        let funding = old.map_or(Dec::ZERO, |o| o.funding);
        let view = PositionView {
            account: *account,
            market: *market,
            size: *size,
            cost: *cost,
            realized_pnl: Dec(realized.0 + realized_pnl.0),
            leverage: *leverage,
            initial_margin: *initial_margin,
            updated_ms: at.time_ms,
            funding,
        };
        self.put(key, enc(&view));
        self.batch.changes.positions.push(view);
        Ok(())
    }

    /// An account's liquidation record, and the counts.
    fn liquidation(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        let mut view = LiquidationView {
            seq: at.seq,
            time_ms: at.time_ms,
            account: AccountId(0),
            what: LiquidationWhat::Ended,
            market: None,
            asset: None,
            quantity: None,
            price: None,
            equity: None,
            maintenance: None,
        };
        match event {
            Event::LiquidationStarted {
                account,
                asset,
                equity,
                maintenance,
            }
            | Event::LiquidationEnded {
                account,
                asset,
                equity,
                maintenance,
            } => {
                view.account = *account;
                view.asset = Some(*asset);
                view.equity = Some(*equity);
                view.maintenance = Some(*maintenance);
                if matches!(event, Event::LiquidationStarted { .. }) {
                    view.what = LiquidationWhat::Started;
                }
            }
            Event::LiquidationStep {
                account,
                market,
                stage,
                quantity,
                price,
            } => {
                view.account = *account;
                view.what = LiquidationWhat::Step(*stage);
                view.market = Some(*market);
                view.quantity = Some(*quantity);
                view.price = *price;
            }
            Event::Deleveraged {
                account,
                market,
                quantity,
                price,
                ..
            } => {
                view.account = *account;
                view.what = LiquidationWhat::Deleveraged;
                view.market = Some(*market);
                view.quantity = Some(*quantity);
                view.price = Some(*price);
            }
            _ => return Ok(()),
        }
        let key = Key::new(keys::LIQUIDATION)
            .u64(view.account.0)
            .u64(at.seq)
            .build();
        self.put(key, enc(&view));
        self.count_liquidation(event)
    }

    /// Liquidation counts by stage and collateral, for the metrics.
    fn count_liquidation(&mut self, event: &Event) -> Result<(), ProjectionError> {
        let mut totals = self.margin_totals()?;
        match event {
            Event::LiquidationStarted { asset, .. } => {
                *totals.started.entry(*asset).or_default() += 1
            }
            Event::LiquidationEnded { asset, .. } => *totals.ended.entry(*asset).or_default() += 1,
            Event::LiquidationStep { market, stage, .. } => {
                let stage = stage.name().to_string();
                *totals.steps.entry((*market, stage)).or_default() += 1;
            }
            Event::Deleveraged { market, .. } => {
                *totals.deleveraged.entry(*market).or_default() += 1
            }
            _ => {}
        }
        self.put(keys::MARGIN_TOTALS.to_vec(), enc(&totals));
        Ok(())
    }

    fn notional_cap_set(
        &mut self,
        account: Option<AccountId>,
        asset: &AssetCode,
        cap: Option<Dec>,
    ) {
        let who = account.map_or(u64::MAX, |a| a.0);
        let key = Key::new(keys::NOTIONAL_CAP).u64(who).name(asset).build();
        match cap {
            Some(cap) => self.put(key, enc(&cap)),
            None => self.del(key),
        }
    }

    /// A funding round's rate on its perpetual; a payment on its position.
    fn funding(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        match event {
            Event::FundingRound {
                market,
                at_ms,
                rate,
                ..
            } => {
                if let Some(p) = self.perpetuals.get_mut(market) {
                    p.funding_rate = Some(*rate);
                    p.funding_at_ms = Some(*at_ms);
                    self.batch.perpetuals.insert(*market);
                }
            }
            Event::FundingPaid {
                account,
                market,
                amount,
                ..
            } => {
                let key = Key::new(keys::POSITION).u64(account.0).name(market).build();
                if let Some(mut view) = self.get::<PositionView>(&key)? {
                    view.funding = Dec(view.funding.0 + amount.0);
                    view.updated_ms = at.time_ms;
                    self.put(key, enc(&view));
                    self.batch.changes.positions.push(view);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The insurance fund's position, and its market's open interest.
    fn fund_position(&mut self, event: &Event) -> Result<(), ProjectionError> {
        let Event::InsurancePosition { market, size, cost } = event else {
            return Ok(());
        };
        let mut totals = self.margin_totals()?;
        let longs = |s: Dec| s.0.max(rust_decimal::Decimal::ZERO);
        let before = totals
            .fund_positions
            .get(market)
            .map_or(rust_decimal::Decimal::ZERO, |p| longs(p.0));
        if let Some(p) = self.perpetuals.get_mut(market) {
            p.open_interest = Dec(p.open_interest.0 + longs(*size) - before);
            self.batch.perpetuals.insert(*market);
        }
        if size.0.is_zero() {
            totals.fund_positions.remove(market);
        } else {
            totals.fund_positions.insert(*market, (*size, *cost));
        }
        self.put(keys::MARGIN_TOTALS.to_vec(), enc(&totals));
        Ok(())
    }

    pub(super) fn margin_totals(&self) -> Result<MarginTotals, ProjectionError> {
        Ok(self.get(keys::MARGIN_TOTALS)?.unwrap_or_default())
    }

    fn market_created(&mut self, spec: &MarketSpec) {
        self.markets.insert(spec.symbol, MarketView::created(spec));
        self.batch.markets.insert(spec.symbol);
        self.books.entry(spec.symbol).or_default();
        self.batch.books.insert(spec.symbol);
    }

    /// Flushes the touched books' depth (whole, and the top levels) and markets.
    pub(super) fn flush_markets(
        &self,
        pending: &Pending,
        batch: &mut sled::Batch,
        changes: &mut Changes,
    ) {
        for symbol in &pending.books {
            let depth = self.books[symbol].to_depth();
            let top = Depth {
                bids: depth.bids.iter().take(DEPTH_TOP_LEVELS).copied().collect(),
                asks: depth.asks.iter().take(DEPTH_TOP_LEVELS).copied().collect(),
            };
            batch.insert(Key::new(keys::DEPTH_TOP).name(symbol).build(), enc(&top));
            batch.insert(
                Key::new(keys::DEPTH).name(symbol).build(),
                enc(&(*symbol, depth)),
            );
            changes.depth.push(*symbol);
        }
        for symbol in &pending.markets {
            batch.insert(
                Key::new(keys::MARKET).name(symbol).build(),
                enc(&self.markets[symbol]),
            );
        }
        for symbol in &pending.perpetuals {
            batch.insert(
                Key::new(keys::PERPETUAL).name(symbol).build(),
                enc(&self.perpetuals[symbol]),
            );
            changes.perpetuals.push(*symbol);
        }
    }
}

/// The queries this view answers.
impl Views {
    pub fn assets(&self) -> Result<Vec<AssetView>, ProjectionError> {
        self.scan(vec![keys::ASSET])
    }

    pub fn asset(&self, code: &AssetCode) -> Result<Option<AssetView>, ProjectionError> {
        self.get(&Key::new(keys::ASSET).name(code).build())
    }

    pub fn markets(&self) -> Result<Vec<MarketView>, ProjectionError> {
        self.scan(vec![keys::MARKET])
    }

    pub fn market(&self, symbol: &Symbol) -> Result<Option<MarketView>, ProjectionError> {
        self.get(&Key::new(keys::MARKET).name(symbol).build())
    }

    /// An account's leverage on a perpetual; `None` when the market is not one.
    pub fn leverage(
        &self,
        account: AccountId,
        market: &Symbol,
    ) -> Result<Option<LeverageView>, ProjectionError> {
        let Some(perp) = self.perpetual(market)? else {
            return Ok(None);
        };
        let caps: TierCaps = self.get(keys::LEVERAGE_TIERS)?.unwrap_or_default();
        let tier: LeverageTier = self
            .get(&Key::new(keys::TIER).u64(account.0).build())?
            .unwrap_or_default();
        let key = Key::new(keys::LEVERAGE).u64(account.0).name(market).build();
        let chosen: Option<u32> = self.get(&key)?;
        let first = perp.brackets.first().map_or(1, |b| b.max_leverage);
        let cap = caps.cap(tier);
        let most = cap.min(first);
        Ok(Some(LeverageView {
            tier,
            cap,
            chosen,
            leverage: chosen.map_or(most, |c| c.min(most)),
        }))
    }

    /// An account's notional cap in a collateral: its own, else the default.
    pub fn notional_cap(
        &self,
        account: AccountId,
        asset: &AssetCode,
    ) -> Result<Option<Dec>, ProjectionError> {
        let key = |who: u64| Key::new(keys::NOTIONAL_CAP).u64(who).name(asset).build();
        match self.get(&key(account.0))? {
            Some(cap) => Ok(Some(cap)),
            None => self.get(&key(u64::MAX)),
        }
    }

    /// Liquidation counts and the insurance fund, for the metrics.
    pub fn margin_totals(&self) -> Result<MarginTotals, ProjectionError> {
        Ok(self.get(keys::MARGIN_TOTALS)?.unwrap_or_default())
    }

    /// An account's liquidation records, oldest first, at most the last `last`.
    pub fn liquidations(
        &self,
        account: AccountId,
        last: usize,
    ) -> Result<Vec<LiquidationView>, ProjectionError> {
        let all: Vec<LiquidationView> =
            self.scan(Key::new(keys::LIQUIDATION).u64(account.0).build())?;
        Ok(all[all.len().saturating_sub(last)..].to_vec())
    }

    /// An account's positions on perpetuals, closed ones included, by market.
    pub fn positions(&self, account: AccountId) -> Result<Vec<PositionView>, ProjectionError> {
        self.scan(Key::new(keys::POSITION).u64(account.0).build())
    }

    pub fn position(
        &self,
        account: AccountId,
        market: &Symbol,
    ) -> Result<Option<PositionView>, ProjectionError> {
        self.get(&Key::new(keys::POSITION).u64(account.0).name(market).build())
    }

    pub fn perpetuals(&self) -> Result<Vec<PerpetualView>, ProjectionError> {
        self.scan(vec![keys::PERPETUAL])
    }

    pub fn perpetual(&self, symbol: &Symbol) -> Result<Option<PerpetualView>, ProjectionError> {
        self.get(&Key::new(keys::PERPETUAL).name(symbol).build())
    }

    /// The best `levels` price levels of each side.
    pub fn depth(&self, market: &Symbol, levels: usize) -> Result<Depth, ProjectionError> {
        let mut depth: Depth = if levels <= crate::projector::DEPTH_TOP_LEVELS {
            self.get(&Key::new(keys::DEPTH_TOP).name(market).build())?
                .unwrap_or_default()
        } else {
            let stored: Option<(Symbol, Depth)> =
                self.get(&Key::new(keys::DEPTH).name(market).build())?;
            stored.map(|(_, d)| d).unwrap_or_default()
        };
        depth.bids.truncate(levels);
        depth.asks.truncate(levels);
        Ok(depth)
    }
}
