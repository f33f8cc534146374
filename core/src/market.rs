//! A market: its spec as created, the integer constants derived from it (so the hot
//! path never touches a decimal), its adjustable controls, and its book and stops.

use std::collections::BTreeSet;

use tape_schemas::{Dec, FeeRates, MarketSpec, MarketStatus, RejectReason, Side};

use crate::assets::Assets;
use crate::book::{Book, Order, OrderKind, Slot};
use crate::units::{to_units, to_units_allow_zero, UnitError};

#[derive(Clone, Debug)]
pub struct Market {
    pub spec: MarketSpec,
    pub base: u16,
    pub quote: u16,
    pub base_scale: u8,
    pub quote_scale: u8,
    /// Tick size as (mantissa, scale): a price of `t` ticks is `t × tick`.
    pub tick_mantissa: i128,
    pub tick_scale: u32,
    /// One lot in base minor units.
    pub lot_minor: u64,
    /// Quote minor units of one tick × one lot: notional = ticks × lots × this.
    pub notional_per_tick_lot: u64,
    pub min_notional_minor: u64,
    pub min_lots: u64,
    pub max_lots: u64,
    status: MarketStatus,
    fees: FeeRates,
    price_band_bps: Option<u32>,
    reference_ticks: Option<u64>,
    last_ticks: Option<u64>,
    /// A perpetual's mark price (kept by `perps`): the band's reference there.
    mark_ticks: Option<u64>,
    /// The resting orders and the waiting stops' storage.
    pub book: Book,
    /// Waiting stops: (side, trigger ticks, order id).
    stops: BTreeSet<(Side, u64, u64)>,
}

/// A market as the snapshot lists it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct MarketSnapshot {
    spec: MarketSpec,
    controls: Controls,
    /// Bids best first, then asks best first, each level oldest first.
    resting: Vec<Order>,
    /// Waiting stops in (side, trigger, id) order.
    stops: Vec<Order>,
}

/// A market's adjustable controls and last trade, as the snapshot keeps them.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Controls {
    pub status: MarketStatus,
    pub fees: FeeRates,
    pub price_band_bps: Option<u32>,
    pub reference_ticks: Option<u64>,
    pub last_ticks: Option<u64>,
}

impl Market {
    /// Checks a spec and derives the market's integer constants.
    pub fn new(spec: MarketSpec, assets: &Assets) -> Result<Market, RejectReason> {
        let base = assets.find(&spec.base).ok_or(RejectReason::UnknownAsset)?;
        let quote = assets.find(&spec.quote).ok_or(RejectReason::UnknownAsset)?;
        if base == quote {
            return Err(RejectReason::InvalidMarketSpec);
        }
        crate::fees::check_fees(&spec.fees)?;
        let (base_scale, quote_scale) = (assets.get(base).scale, assets.get(quote).scale);
        let bad = |_| RejectReason::InvalidMarketSpec;
        if spec.tick_size.mantissa() <= 0 || spec.lot_size.mantissa() <= 0 {
            return Err(RejectReason::InvalidMarketSpec);
        }
        let lot_minor = crate::units::to_minor(spec.lot_size, base_scale).map_err(bad)?;
        // tick × lot must be a whole number of quote minor units, so every notional is.
        let tick_lot = spec
            .tick_size
            .0
            .checked_mul(spec.lot_size.0)
            .ok_or(RejectReason::InvalidMarketSpec)?;
        let notional_per_tick_lot =
            crate::units::to_minor(Dec(tick_lot), quote_scale).map_err(bad)?;
        let min_notional_minor =
            to_units_allow_zero(spec.min_notional, crate::units::minor_unit(quote_scale))
                .map_err(bad)?;
        let lots = |q: Option<Dec>, default: u64| match q {
            None => Ok(default),
            Some(q) => to_units(q, spec.lot_size).map_err(|e: UnitError| bad(e)),
        };
        let min_lots = lots(spec.min_quantity, 1)?;
        let max_lots = lots(spec.max_quantity, u64::MAX)?;
        if min_lots > max_lots {
            return Err(RejectReason::InvalidMarketSpec);
        }
        Ok(Market {
            base,
            quote,
            base_scale,
            quote_scale,
            tick_mantissa: spec.tick_size.mantissa(),
            tick_scale: spec.tick_size.scale(),
            lot_minor,
            notional_per_tick_lot,
            min_notional_minor,
            min_lots,
            max_lots,
            status: MarketStatus::Active,
            fees: spec.fees,
            price_band_bps: spec.price_band_bps,
            reference_ticks: None,
            last_ticks: None,
            mark_ticks: None,
            book: Book::default(),
            stops: BTreeSet::new(),
            spec,
        })
    }

    pub fn status(&self) -> MarketStatus {
        self.status
    }

    pub fn set_status(&mut self, status: MarketStatus) {
        self.status = status;
    }

    /// The rates the market charges accounts without their own tier.
    pub fn fees(&self) -> FeeRates {
        self.fees
    }

    pub fn set_fees(&mut self, fees: FeeRates) {
        assert!(
            crate::fees::check_fees(&fees).is_ok(),
            "fees within the limit"
        );
        self.fees = fees;
    }

    pub fn price_band_bps(&self) -> Option<u32> {
        self.price_band_bps
    }

    pub fn reference_ticks(&self) -> Option<u64> {
        self.reference_ticks
    }

    /// Sets the band and the admin's reference price.
    pub fn set_band(&mut self, band_bps: Option<u32>, reference_ticks: Option<u64>) {
        self.price_band_bps = band_bps;
        self.reference_ticks = reference_ticks;
    }

    /// The last trade's price, in ticks.
    pub fn last_ticks(&self) -> Option<u64> {
        self.last_ticks
    }

    /// A perpetual's mark price, in ticks.
    pub fn mark(&self) -> Option<u64> {
        self.mark_ticks
    }

    /// Sets a perpetual's mark price, which its band is then centred on.
    pub fn set_mark(&mut self, ticks: u64) {
        self.mark_ticks = Some(ticks);
    }

    /// Records a trade at `ticks`.
    pub fn traded_at(&mut self, ticks: u64) {
        assert!(ticks > 0, "a trade has a price");
        self.last_ticks = Some(ticks);
    }

    pub fn controls(&self) -> Controls {
        Controls {
            status: self.status,
            fees: self.fees,
            price_band_bps: self.price_band_bps,
            reference_ticks: self.reference_ticks,
            last_ticks: self.last_ticks,
        }
    }

    pub fn set_controls(&mut self, c: Controls) -> Result<(), RejectReason> {
        crate::fees::check_fees(&c.fees)?;
        self.status = c.status;
        self.fees = c.fees;
        self.price_band_bps = c.price_band_bps;
        self.reference_ticks = c.reference_ticks;
        self.last_ticks = c.last_ticks;
        Ok(())
    }

    pub fn snapshot(&self) -> MarketSnapshot {
        let mut resting = Vec::new();
        for side in [Side::Buy, Side::Sell] {
            for (_, level) in self.book.levels(side) {
                resting.extend(self.book.queue(level).map(|s| self.book.get(s).clone()));
            }
        }
        let mut stops: Vec<Order> = self
            .book
            .orders()
            .filter(|o| o.kind != OrderKind::Limit)
            .cloned()
            .collect();
        stops.sort_unstable_by_key(|o| (o.side, o.trigger_ticks, o.id));
        assert_eq!(
            stops.len(),
            self.stops.len(),
            "every waiting stop is indexed"
        );
        MarketSnapshot {
            spec: self.spec.clone(),
            controls: self.controls(),
            resting,
            stops,
        }
    }

    /// The market a snapshot lists, and where each of its orders went (for the
    /// orders' index). `Err` says what is wrong with it.
    pub fn restore(
        s: MarketSnapshot,
        assets: &Assets,
    ) -> Result<(Market, Vec<(Slot, Order)>), String> {
        let symbol = s.spec.symbol;
        let mut mk = Market::new(s.spec, assets).map_err(|r| format!("{symbol}: {r:?}"))?;
        mk.set_controls(s.controls)
            .map_err(|r| format!("{symbol}: {r:?}"))?;
        // As many as the snapshot already decoded: no larger than what it holds.
        let mut placed = Vec::with_capacity(s.resting.len() + s.stops.len());
        for o in s.resting {
            if o.kind != OrderKind::Limit || o.open_lots == 0 {
                return Err(format!("{symbol}: order {} cannot rest", o.id));
            }
            let slot = mk.book.insert(o.clone());
            mk.book.push_back(slot);
            placed.push((slot, o));
        }
        for o in s.stops {
            if o.kind == OrderKind::Limit || !mk.add_stop((o.side, o.trigger_ticks, o.id)) {
                return Err(format!("{symbol}: stop {} listed wrongly", o.id));
            }
            placed.push((mk.book.insert(o.clone()), o));
        }
        Ok((mk, placed))
    }

    /// Whether any stop waits here.
    pub fn has_stops(&self) -> bool {
        !self.stops.is_empty()
    }

    /// Indexes a waiting stop by (side, trigger, id).
    pub fn add_stop(&mut self, key: (Side, u64, u64)) -> bool {
        self.stops.insert(key)
    }

    pub fn remove_stop(&mut self, key: (Side, u64, u64)) -> bool {
        self.stops.remove(&key)
    }

    /// Ids of the stops a last price of `last` triggers: buys at or below it, sells
    /// at or above it.
    pub fn triggered_stops(&self, last: u64) -> Vec<u64> {
        self.stops
            .range((Side::Buy, 0, 0)..=(Side::Buy, last, u64::MAX))
            .chain(
                self.stops
                    .range((Side::Sell, last, 0)..=(Side::Sell, u64::MAX, u64::MAX)),
            )
            .map(|k| k.2)
            .collect()
    }

    pub fn price_ticks(&self, price: Dec) -> Result<u64, RejectReason> {
        to_units(price, self.spec.tick_size).map_err(|e| match e {
            UnitError::NotPositive => RejectReason::InvalidPrice,
            UnitError::NotMultiple => RejectReason::PriceNotOnTick,
            UnitError::OutOfRange => RejectReason::OutOfRange,
        })
    }

    pub fn quantity_lots(&self, quantity: Dec) -> Result<u64, RejectReason> {
        to_units(quantity, self.spec.lot_size).map_err(|e| match e {
            UnitError::NotPositive => RejectReason::InvalidQuantity,
            UnitError::NotMultiple => RejectReason::QuantityNotOnLot,
            UnitError::OutOfRange => RejectReason::OutOfRange,
        })
    }

    pub fn quote_minor(&self, amount: Dec) -> Result<u64, RejectReason> {
        crate::units::to_minor(amount, self.quote_scale).map_err(|e| match e {
            UnitError::NotPositive => RejectReason::InvalidAmount,
            UnitError::NotMultiple => RejectReason::TooManyDecimals,
            UnitError::OutOfRange => RejectReason::OutOfRange,
        })
    }

    /// Checks a quantity against the market's size limits.
    pub fn check_size(&self, lots: u64) -> Result<(), RejectReason> {
        if lots < self.min_lots {
            return Err(RejectReason::BelowMinQuantity);
        }
        if lots > self.max_lots {
            return Err(RejectReason::AboveMaxQuantity);
        }
        Ok(())
    }

    /// price × quantity in quote minor units, or `OutOfRange`.
    pub fn notional(&self, ticks: u64, lots: u64) -> Result<u64, RejectReason> {
        let n = u128::from(ticks) * u128::from(lots) * u128::from(self.notional_per_tick_lot);
        u64::try_from(n).map_err(|_| RejectReason::OutOfRange)
    }

    pub fn base_minor(&self, lots: u64) -> Result<u64, RejectReason> {
        lots.checked_mul(self.lot_minor)
            .ok_or(RejectReason::OutOfRange)
    }

    pub fn price_dec(&self, ticks: u64) -> Dec {
        crate::units::from_units(ticks, self.tick_mantissa, self.tick_scale)
    }

    pub fn qty_dec(&self, lots: u64) -> Dec {
        Dec::from_minor(
            i128::from(lots) * i128::from(self.lot_minor),
            u32::from(self.base_scale),
        )
    }

    /// A position's signed size in lots, in the underlying.
    pub fn size_dec(&self, lots: i64) -> Dec {
        Dec::from_minor(
            i128::from(lots) * i128::from(self.lot_minor),
            u32::from(self.base_scale),
        )
    }

    pub fn quote_dec(&self, minor: u64) -> Dec {
        Dec::from_minor(i128::from(minor), u32::from(self.quote_scale))
    }

    pub fn base_dec(&self, minor: u64) -> Dec {
        Dec::from_minor(i128::from(minor), u32::from(self.base_scale))
    }

    /// The reference price for the band: a perpetual's mark, else the last trade,
    /// else the admin's reference.
    pub fn reference(&self) -> Option<u64> {
        self.mark_ticks.or(self.last_ticks).or(self.reference_ticks)
    }

    /// The band's inclusive price bounds, when a band and a reference exist.
    pub fn band(&self) -> Option<(u64, u64)> {
        let bps = u128::from(self.price_band_bps?);
        let r = u128::from(self.reference()?);
        let lo = (r * (10_000u128.saturating_sub(bps))).div_ceil(10_000);
        let hi = (r * (10_000 + bps)) / 10_000;
        Some((lo as u64, u64::try_from(hi).unwrap_or(u64::MAX)))
    }

    pub fn check_band(&self, ticks: u64) -> Result<(), RejectReason> {
        match self.band() {
            Some((lo, hi)) if ticks < lo || ticks > hi => Err(RejectReason::PriceOutsideBand),
            _ => Ok(()),
        }
    }
}

/// Every market, in creation order (a market's number is its place here), found by
/// symbol; and the trade id counter they share.
#[derive(Clone, Debug, Default)]
pub(crate) struct Markets {
    list: Vec<Market>,
    index: rustc_hash::FxHashMap<tape_schemas::Symbol, u32>,
    next_trade: u64,
}

impl Markets {
    pub fn new() -> Self {
        Markets {
            next_trade: 1,
            ..Markets::default()
        }
    }

    pub fn id(&self, symbol: &tape_schemas::Symbol) -> Result<u32, RejectReason> {
        self.index
            .get(symbol)
            .copied()
            .ok_or(RejectReason::UnknownMarket)
    }

    pub fn contains(&self, symbol: &tape_schemas::Symbol) -> bool {
        self.index.contains_key(symbol)
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Adds a market and returns its number. Callers check `markets_max` (a `u32`)
    /// first, so the count always fits.
    pub fn push(&mut self, market: Market) -> u32 {
        let m = self.list.len() as u32;
        self.index.insert(market.spec.symbol, m);
        self.list.push(market);
        m
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Market> {
        self.list.iter()
    }

    /// The next trade id, for the snapshot.
    pub fn next_trade(&self) -> u64 {
        self.next_trade
    }

    /// Markets restored with the trade counter where it was.
    pub fn restored(next_trade: u64) -> Self {
        Markets {
            next_trade,
            ..Markets::default()
        }
    }

    /// A new trade id.
    pub fn take_trade_id(&mut self) -> u64 {
        let id = self.next_trade;
        self.next_trade += 1;
        id
    }
}

impl std::ops::Index<u32> for Markets {
    type Output = Market;
    fn index(&self, m: u32) -> &Market {
        &self.list[m as usize]
    }
}

impl std::ops::IndexMut<u32> for Markets {
    fn index_mut(&mut self, m: u32) -> &mut Market {
        &mut self.list[m as usize]
    }
}
