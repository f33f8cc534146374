//! Why a command was refused, in a sentence: the rule it broke, the bound and the
//! value. The engine answers with a `RejectReason` alone (the core stays small and
//! deterministic); the sentence is derived here, on the read side, from the command
//! and what the reader knows of the exchange (`Facts`: the read models in the
//! gateway, less in a tool). A bound the reader does not know is named, not guessed.

use tape_projections::MarketView;
use tape_schemas::limits::{ASSET_SCALE_MAX, FEE_PPM_MAX, LIMITS, PRICE_BAND_BPS_MAX};
use tape_schemas::*;

/// What the reader knows of the exchange; every answer may be "unknown".
pub trait Facts {
    /// An asset's scale (decimal places) and whether it is enabled.
    fn asset(&self, _code: &AssetCode) -> Option<(u8, bool)> {
        None
    }
    /// A market as the read models keep it (spec, status, fees, band, reference
    /// and last price).
    fn market(&self, _symbol: &Symbol) -> Option<MarketView> {
        None
    }
    /// An account's available balance of an asset.
    fn available(&self, _account: AccountId, _asset: &AssetCode) -> Option<Dec> {
        None
    }
    /// The market of an order of the account.
    fn order_market(&self, _account: AccountId, _order: &OrderRef) -> Option<Symbol> {
        None
    }
    /// A perpetual's last index price and its `max_move_ppm`.
    fn index(&self, _market: &Symbol) -> Option<(Dec, u32)> {
        None
    }
}

/// Knows nothing: the sentence then has the rule and the command's own values.
pub struct NoFacts;
impl Facts for NoFacts {}

/// The sentence for `reason`, the answer to `envelope`.
pub fn explain(reason: RejectReason, envelope: &CommandEnvelope, facts: &dyn Facts) -> String {
    Explainer {
        envelope,
        command: &envelope.command,
        facts,
    }
    .sentence(reason)
}

/// The sentence for `reason` when the command itself is not at hand: the rule,
/// without the command's values.
pub fn rule(reason: RejectReason) -> String {
    let unknown = CommandEnvelope::new(CommandId::from_u128(0), 0, Command::ClockTick);
    let mut sentence = explain(reason, &unknown, &NoFacts);
    if reason == RejectReason::UnsupportedVersion {
        sentence = format!("the envelope's schema version is not {SCHEMA_VERSION}, the only one this engine speaks");
    }
    sentence
}

/// The sentence for an item of a batch (`command` is the item as a command).
pub fn explain_item(
    reason: RejectReason,
    envelope: &CommandEnvelope,
    command: &Command,
    facts: &dyn Facts,
) -> String {
    Explainer {
        envelope,
        command,
        facts,
    }
    .sentence(reason)
}

struct Explainer<'a> {
    envelope: &'a CommandEnvelope,
    command: &'a Command,
    facts: &'a dyn Facts,
}

/// The prices and quantities an order-like command carries.
#[derive(Default)]
struct Terms {
    account: Option<AccountId>,
    market: Option<Symbol>,
    side: Option<Side>,
    price: Option<Dec>,
    quantity: Option<Dec>,
    quote_quantity: Option<Dec>,
    trigger_price: Option<Dec>,
    time_in_force: Option<TimeInForce>,
    post_only: bool,
    display_quantity: Option<Dec>,
}

fn places(d: Dec) -> u32 {
    d.0.normalize().scale()
}

fn ppm_percent(ppm: u32) -> String {
    format!("{}%", Dec::from_minor(i128::from(ppm), 4).0.normalize())
}

impl Explainer<'_> {
    fn terms(&self) -> Terms {
        let mut t = Terms {
            account: self.command.account(),
            ..Terms::default()
        };
        match self.command {
            Command::PlaceOrder(o) | Command::PlaceReduceOnly(o) => self.order_terms(&mut t, o),
            Command::PlaceSliced(s) | Command::PlaceSlicedReduceOnly(s) => {
                (t.market, t.side, t.quantity) =
                    (Some(s.market), Some(s.side), Some(s.total_quantity));
                t.price = Some(s.upper_price);
            }
            Command::PlaceBracket(b) => {
                (t.market, t.side) = (Some(b.market), Some(b.side));
                (t.price, t.quantity) = (Some(b.entry_price), Some(b.quantity));
            }
            Command::AmendOrder {
                account,
                order,
                price,
                quantity,
            } => {
                t.market = self.facts.order_market(*account, order);
                (t.price, t.quantity) = (*price, *quantity);
            }
            Command::SetPriceBand {
                market,
                reference_price,
                ..
            } => {
                t.market = Some(*market);
                t.price = *reference_price;
            }
            Command::SetMarketStatus { market, .. }
            | Command::SetMarketFees { market, .. }
            | Command::SetAccountFees { market, .. } => t.market = Some(*market),
            Command::CancelAll { market, .. } => t.market = *market,
            _ => {}
        }
        t
    }

    fn order_terms(&self, t: &mut Terms, o: &NewOrder) {
        t.market = Some(o.market);
        t.side = Some(o.side);
        match o.order_type {
            OrderType::Limit {
                price,
                quantity,
                time_in_force,
                post_only,
                display_quantity,
            } => {
                (t.price, t.quantity, t.time_in_force) =
                    (Some(price), Some(quantity), Some(time_in_force));
                (t.post_only, t.display_quantity) = (post_only, display_quantity);
            }
            OrderType::Market { size } => self.size(t, size),
            OrderType::StopMarket {
                trigger_price,
                size,
            } => {
                t.trigger_price = Some(trigger_price);
                self.size(t, size);
            }
            OrderType::StopLimit {
                trigger_price,
                price,
                quantity,
                time_in_force,
            } => {
                (t.trigger_price, t.price, t.quantity) =
                    (Some(trigger_price), Some(price), Some(quantity));
                t.time_in_force = Some(time_in_force);
            }
        }
    }

    fn size(&self, t: &mut Terms, size: MarketSize) {
        match size {
            MarketSize::Base(q) => t.quantity = Some(q),
            MarketSize::Quote(q) => t.quote_quantity = Some(q),
        }
    }

    fn market(&self) -> Option<MarketView> {
        self.terms().market.and_then(|m| self.facts.market(&m))
    }

    /// The asset and amount of a custody or admin command.
    fn asset_amount(&self) -> Option<(AssetCode, Option<Dec>)> {
        match self.command {
            Command::Deposit { asset, amount, .. }
            | Command::RequestWithdrawal { asset, amount, .. } => Some((*asset, Some(*amount))),
            Command::SetWithdrawalLimit {
                asset, daily_limit, ..
            } => Some((*asset, *daily_limit)),
            Command::SetAssetEnabled { asset, .. } => Some((*asset, None)),
            Command::CreateAsset(spec) => Some((spec.code, spec.daily_withdrawal_limit)),
            _ => None,
        }
    }

    fn sentence(&self, reason: RejectReason) -> String {
        use RejectReason as R;
        match reason {
            R::MalformedCommand => "the record on the commands log does not decode as a command envelope (JSON or bincode, as `schemas/json/command-envelope.schema.json` describes)".into(),
            R::UnsupportedVersion => format!(
                "the envelope says schema version {}; this engine speaks version {SCHEMA_VERSION} only",
                self.envelope.version
            ),
            R::UnknownAsset | R::AssetExists | R::AssetDisabled | R::InvalidAssetScale | R::TooManyAssets => self.asset_sentence(reason),
            R::UnknownMarket | R::MarketExists | R::MarketHalted | R::MarketDisabled | R::TooManyMarkets => self.market_sentence(reason),
            R::InvalidMarketSpec => self.market_spec(),
            R::InvalidFee => self.fee(),
            R::InvalidPrice | R::InvalidQuantity | R::InvalidAmount | R::TooManyDecimals | R::OutOfRange => self.amount_sentence(reason),
            R::PriceNotOnTick | R::QuantityNotOnLot | R::BelowMinQuantity | R::AboveMaxQuantity | R::BelowMinNotional | R::PriceOutsideBand => self.order_bounds(reason),
            R::InsufficientFunds => self.insufficient_funds(),
            R::PostOnlyWouldTrade | R::FokCannotFill | R::NoLiquidity | R::ExpiryInPast | R::InvalidSlice | R::InvalidBracket | R::NotAmendable | R::NothingToChange | R::InvalidTimeInForce | R::UnsupportedOrderType | R::DuplicateClientOrderId => self.order_rules(reason),
            R::UnknownAccount | R::UnknownOrder | R::UnknownWithdrawal | R::TradingRestricted | R::WithdrawalRestricted | R::WithdrawalLimitExceeded | R::DuplicateDepositReference => self.account_sentence(reason),
            R::UnknownApiKey | R::InvalidApiKey | R::MissingCredentials | R::BadSignature | R::CredentialsExpired | R::ExpiryTooFar | R::ReplayedSeq | R::SeqTooOld | R::TooManySigningStreams | R::NotPermitted => self.credentials(reason),
            R::TimeBeyondHorizon | R::ClockJumpTooLarge | R::TimeoutTooLong => self.time(reason),
            R::TooManyOpenOrders | R::TooManyAccounts | R::TooManyApiKeys | R::TooManyPendingWithdrawals | R::TooManyDeposits | R::TooManyParents | R::BatchSize => self.capacity(reason),
            R::InvalidPerpetualSpec | R::NotAPerpetual | R::IndexMoveTooLarge | R::IndexSourceTimeNotAfter | R::IndexSourceTimeAhead | R::IndexOutsideLimits | R::PerpetualTradingNotBuilt | R::InvalidLeverage | R::LeverageAboveCap | R::InsufficientMargin | R::NoIndexPrice | R::MarketReduceOnly | R::WouldIncreasePosition | R::NoPosition | R::OpenInterestCap | R::PositionNotionalCap | R::AccountNotionalCap => self.perpetual(reason),
            R::LiabilityRound => self.liabilities(true),
            R::LiabilityRecord => self.liabilities(false),
        }
    }

    fn liabilities(&self, round: bool) -> String {
        let Command::CommitLiabilities(c) = self.command else {
            return "only a liabilities commitment is refused this way".into();
        };
        match round {
            true => format!("round {} at checkpoint {} is not the next round, or its checkpoint is not after the last round's (`liabilityRounds` lists them)", c.round, c.checkpoint),
            false => format!("round {}'s record is not in this engine's shape: algorithm {} (this build: 1), height {} (1 to 32) and one total per asset, in the assets' order", c.round, c.algorithm, c.height),
        }
    }

    fn perpetual(&self, reason: RejectReason) -> String {
        use RejectReason as R;
        let market = match self.command {
            Command::CreatePerpetual(spec) => Some(spec.market.symbol),
            Command::SetIndexPrice { market, .. }
            | Command::SetLeverage { market, .. }
            | Command::ClosePosition { market, .. } => Some(*market),
            _ => self.terms().market,
        };
        let market = market.map_or_else(|| "the market".into(), |s| s.to_string());
        match (reason, self.command) {
            (R::InvalidPerpetualSpec, _) => "a perpetual needs 1 to 16 brackets with rising notional caps, leverage from 1 to 1,000 and not rising, maintenance rates not falling and below the initial rate (1 / leverage); a max index move of 1 to 1,000,000 ppm; an index staleness limit of 1 ms to one day; a mark basis of at most 100,000 ppm; a funding interval of one minute to one day; index limits on the tick with min ≤ max; and an open interest cap on the lot (docs/margin.md)".into(),
            (R::NotAPerpetual, Command::SetIndexPrice { .. }) => format!("{market} is a spot market; index prices are for perpetual markets"),
            (R::NotAPerpetual, _) => format!("{market} is a spot market; positions, leverage, reduce-only orders and `ClosePosition` are for perpetual markets"),
            (R::IndexMoveTooLarge, Command::SetIndexPrice { market: m, price, .. }) => match self.facts.index(m) {
                Some((last, ppm)) => format!(
                    "one update moves the index of {market} at most {} ({ppm} ppm) from its last, {last}; {price} is {} away: post intermediate prices to move further",
                    percent(ppm),
                    percent_of(price.0 - last.0, last.0),
                ),
                None => format!("the index of {market} may move at most its `max_move_ppm` per update; {price} is further than that from its last: post intermediate prices to move further"),
            },
            (R::IndexSourceTimeNotAfter, Command::SetIndexPrice { source_ms, .. }) => format!("the index of {market} already has a source time at or after {source_ms}; each update's source time must be later than the last"),
            (R::IndexSourceTimeAhead, Command::SetIndexPrice { source_ms, .. }) => format!("source time {source_ms} is after the command's own time ({}): an index cannot be priced in the future", self.envelope.time_ms),
            (R::IndexOutsideLimits, Command::SetIndexPrice { price, .. }) => format!("index {price} is outside the limits {market} was created with (`index.min_price` to `index.max_price`)"),
            (R::InvalidLeverage, Command::SetLeverage { leverage, .. }) => format!("a leverage is 1 to 1,000; {leverage} was asked for"),
            (R::InvalidLeverage, _) => "tier caps are 1 to 1,000 and do not fall from beginner to intermediate to advanced".into(),
            (R::LeverageAboveCap, Command::SetLeverage { account, leverage, .. }) => format!("{leverage}x is above what account {account} may use on {market}: the lower of its tier's cap (5x, 10x or 20x by default) and the market's first bracket's max leverage (the `leverage` query shows both)"),
            (R::PerpetualTradingNotBuilt, _) => format!("{market} is a perpetual market, and the engine that refused this took no sliced or bracket orders on perpetuals; engines since take every order type there, so send it again"),
            (R::InsufficientMargin, Command::SetLeverage { leverage, .. }) => format!("at {leverage}x the position on {market} needs more initial margin than the account can spend (its available balance less unrealized losses): deposit, or reduce the position first"),
            (R::InsufficientMargin, _) => format!("the account cannot carry this order on {market}: its initial margin (the notional at the limit price over the leverage, net of orders that reduce the position), its worst fee and its loss against the mark need more than the account can spend (available less unrealized losses); or the account is short of margin and may only reduce (docs/margin.md)"),
            (R::NoIndexPrice, _) => format!("{market} has no index price yet, so no mark to margin against: the oracle posts one first (`tape oracle`)"),
            (R::MarketReduceOnly, _) => format!("the index of {market} is stale, so the market only reduces positions: send the order reduce-only (`PlaceReduceOnly`) or close the position until a fresh index arrives"),
            (R::WouldIncreasePosition, _) => format!("a reduce-only order on {market} must be on the side opposite the position and no larger than it (a reduce-only sliced order's children together)"),
            (R::NoPosition, _) => format!("the account has no position on {market} to reduce or close"),
            (R::OpenInterestCap, _) => format!("the order would take the open interest of {market} above the cap it was created with (`open_interest_max`)"),
            (R::PositionNotionalCap, _) => format!("the position on {market} with its open orders would be larger than the last leverage bracket's notional cap"),
            (R::AccountNotionalCap, _) => format!("the account's positions and open orders on the perpetuals settled like {market} would add up to more notional than its cap (`SetNotionalCap`); orders that reduce a position are not capped"),
            _ => format!("the index update for {market} was refused: {reason:?}"),
        }
    }

    fn asset_sentence(&self, reason: RejectReason) -> String {
        let asset = self
            .asset_amount()
            .map(|(a, _)| a.to_string())
            .or_else(|| {
                self.market()
                    .map(|m| format!("{} or {}", m.spec.base, m.spec.quote))
            })
            .or_else(|| match self.command {
                Command::CreateMarket(spec) => Some(format!("{} or {}", spec.base, spec.quote)),
                _ => None,
            })
            .unwrap_or_else(|| "the asset".into());
        match reason {
            RejectReason::UnknownAsset => {
                format!("no asset {asset} exists: create it first (createAsset)")
            }
            RejectReason::AssetExists => {
                format!("asset {asset} already exists; an asset is created once")
            }
            RejectReason::AssetDisabled => {
                format!("asset {asset} is disabled: nothing moves in it until an admin enables it")
            }
            RejectReason::InvalidAssetScale => {
                let scale = match self.command {
                    Command::CreateAsset(spec) => spec.scale.to_string(),
                    _ => "the scale given".into(),
                };
                format!("an asset's scale is at most {ASSET_SCALE_MAX} decimal places; {asset} asks for {scale}")
            }
            _ => format!(
                "the engine keeps at most {} assets and has that many; {asset} is refused",
                LIMITS.assets_max
            ),
        }
    }

    fn market_sentence(&self, reason: RejectReason) -> String {
        let symbol = match self.command {
            Command::CreateMarket(spec) => Some(spec.symbol),
            _ => self.terms().market,
        };
        let market = symbol.map_or_else(|| "the order's market".into(), |s| s.to_string());
        match reason {
            RejectReason::UnknownMarket => format!("no market {market} exists (the `markets` query lists them)"),
            RejectReason::MarketExists => format!("market {market} already exists; a market is created once"),
            RejectReason::MarketHalted => format!("market {market} is halted: no new orders or amends until an admin resumes it; cancels still work"),
            RejectReason::MarketDisabled => format!("market {market} is disabled: it accepts nothing"),
            _ => format!(
                "the engine keeps at most {} markets and has that many; {market} is refused",
                LIMITS.markets_max
            ),
        }
    }

    fn market_spec(&self) -> String {
        match self.command {
            Command::CreateMarket(spec) => {
                if spec.base == spec.quote {
                    return format!(
                        "a market trades two different assets; {} is both base and quote",
                        spec.base
                    );
                }
                if spec.tick_size.0 <= rust_decimal::Decimal::ZERO
                    || spec.lot_size.0 <= rust_decimal::Decimal::ZERO
                {
                    return format!(
                        "tick and lot sizes must be positive; tick {} and lot {} were given",
                        spec.tick_size, spec.lot_size
                    );
                }
                if let Some(problem) = self.scale_problem(spec) {
                    return problem;
                }
                for (what, q) in [
                    ("minimum", spec.min_quantity),
                    ("maximum", spec.max_quantity),
                ] {
                    if let Some(q) = q {
                        if q.0 <= rust_decimal::Decimal::ZERO || !(q.0 % spec.lot_size.0).is_zero()
                        {
                            return format!("the {what} quantity {q} must be a positive whole number of lots of {}", spec.lot_size);
                        }
                    }
                }
                if let (Some(lo), Some(hi)) = (spec.min_quantity, spec.max_quantity) {
                    if lo > hi {
                        return format!("the minimum quantity {lo} is above the maximum {hi}");
                    }
                }
                if spec.price_band_bps.is_some_and(|b| b > PRICE_BAND_BPS_MAX) {
                    return format!(
                        "a price band is at most {PRICE_BAND_BPS_MAX} bps (100%); {} bps was given",
                        spec.price_band_bps.unwrap_or(0)
                    );
                }
                "tick, lot, notional and quantity limits must let every trade be settled exactly in whole minor units of both assets".into()
            }
            Command::SetPriceBand { band_bps, .. } => format!(
                "a price band is at most {PRICE_BAND_BPS_MAX} bps (100%); {} bps was given",
                band_bps.map_or_else(|| "no".into(), |b| b.to_string())
            ),
            _ => "the market's settings cannot be traded exactly".into(),
        }
    }

    /// A lot, tick × lot or minimum notional finer than its asset's scale.
    fn scale_problem(&self, spec: &MarketSpec) -> Option<String> {
        let (base, quote) = (self.facts.asset(&spec.base), self.facts.asset(&spec.quote));
        if let Some((base_scale, _)) = base {
            if places(spec.lot_size) > u32::from(base_scale) {
                return Some(format!(
                    "the lot {} {} is finer than {}'s scale of {base_scale} decimals",
                    spec.lot_size, spec.base, spec.base
                ));
            }
        }
        if let Some((quote_scale, _)) = quote {
            let tick_lot = spec
                .tick_size
                .0
                .checked_mul(spec.lot_size.0)
                .map(|d| Dec(d.normalize()));
            match tick_lot {
                Some(tl) if places(tl) > u32::from(quote_scale) => {
                    return Some(format!(
                        "tick × lot = {tl} {} is finer than {}'s scale of {quote_scale} decimals: every trade's value must be a whole number of {}'s minor units",
                        spec.quote, spec.quote, spec.quote
                    ))
                }
                None => return Some(format!("tick {} × lot {} is too large to compute exactly", spec.tick_size, spec.lot_size)),
                _ => {}
            }
            if places(spec.min_notional) > u32::from(quote_scale) {
                return Some(format!(
                    "the minimum notional {} {} is finer than {}'s scale of {quote_scale} decimals",
                    spec.min_notional, spec.quote, spec.quote
                ));
            }
        }
        None
    }

    fn fee(&self) -> String {
        let rates = match self.command {
            Command::CreateMarket(spec) => Some(spec.fees),
            Command::SetMarketFees { fees, .. } => Some(*fees),
            Command::SetAccountFees { fees, .. } => *fees,
            _ => None,
        };
        let given = rates.map_or_else(String::new, |f| {
            format!(
                "; maker {} ppm and taker {} ppm were given",
                f.maker_ppm, f.taker_ppm
            )
        });
        format!(
            "a fee rate is at most {FEE_PPM_MAX} ppm ({}){given}",
            ppm_percent(FEE_PPM_MAX)
        )
    }

    fn amount_sentence(&self, reason: RejectReason) -> String {
        let t = self.terms();
        let custody = self.asset_amount();
        match reason {
            RejectReason::InvalidPrice => format!(
                "a price must be positive; {} was given",
                t.price.or(t.trigger_price).map_or_else(|| "zero or less".into(), |p| p.to_string())
            ),
            RejectReason::InvalidQuantity => format!(
                "a quantity must be positive; {} was given",
                t.quantity.or(t.display_quantity).map_or_else(|| "zero or less".into(), |q| q.to_string())
            ),
            RejectReason::InvalidAmount => format!(
                "an amount must be positive; {} was given",
                custody.and_then(|(_, a)| a).or(t.quote_quantity).map_or_else(|| "zero or less".into(), |a| a.to_string())
            ),
            RejectReason::TooManyDecimals => {
                let (asset, amount) = match (custody, t.quote_quantity, self.market()) {
                    (Some((asset, Some(a))), _, _) => (asset, a),
                    (_, Some(q), Some(m)) => (m.spec.quote, q),
                    _ => return "the amount has more decimal places than its asset's scale allows (amounts are never rounded)".into(),
                };
                match self.facts.asset(&asset) {
                    Some((scale, _)) => format!(
                        "{amount} {asset} has {} decimal places; {asset}'s scale allows {scale} (amounts are never rounded)",
                        places(amount)
                    ),
                    None => format!("{amount} {asset} has more decimal places than {asset}'s scale allows (amounts are never rounded)"),
                }
            }
            _ => "a value is too large to hold or to multiply exactly in the asset's minor units (price × quantity, or an amount above 2^64 minor units)".into(),
        }
    }

    fn order_bounds(&self, reason: RejectReason) -> String {
        let t = self.terms();
        let m = self.market();
        let spec = m.as_ref().map(|m| &m.spec);
        let name = t
            .market
            .map_or_else(|| "the market".into(), |s| s.to_string());
        let value = |d: Option<Dec>| d.map_or_else(|| "the value given".into(), |d| d.to_string());
        match reason {
            RejectReason::PriceNotOnTick => match spec {
                Some(s) => format!(
                    "{name}'s prices move in ticks of {}; {} is not a multiple of it",
                    s.tick_size,
                    value(t.price.or(t.trigger_price))
                ),
                None => format!(
                    "the price {} is not a multiple of {name}'s tick size",
                    value(t.price.or(t.trigger_price))
                ),
            },
            RejectReason::QuantityNotOnLot => match spec {
                Some(s) => format!(
                    "{name}'s quantities move in lots of {}; {} is not a multiple of it",
                    s.lot_size,
                    value(t.quantity.or(t.display_quantity))
                ),
                None => format!(
                    "the quantity {} is not a multiple of {name}'s lot size",
                    value(t.quantity)
                ),
            },
            RejectReason::BelowMinQuantity => match spec {
                Some(s) => format!(
                    "{name}'s smallest order is {} {}; {} was asked",
                    s.min_quantity.unwrap_or(s.lot_size),
                    s.base,
                    value(t.quantity)
                ),
                None => format!(
                    "the quantity {} is below {name}'s minimum",
                    value(t.quantity)
                ),
            },
            RejectReason::AboveMaxQuantity => {
                match spec.and_then(|s| s.max_quantity.map(|q| (q, s.base))) {
                    Some((max, base)) => format!(
                        "{name}'s largest order is {max} {base}; {} was asked",
                        value(t.quantity)
                    ),
                    None => format!(
                        "the quantity {} is above {name}'s maximum",
                        value(t.quantity)
                    ),
                }
            }
            RejectReason::BelowMinNotional => min_notional(&t, spec, &name),
            _ => self.band(&t, m.as_ref(), &name),
        }
    }

    fn band(&self, t: &Terms, m: Option<&MarketView>, name: &str) -> String {
        let price = t
            .price
            .or(t.trigger_price)
            .map_or_else(|| "the price".into(), |p| p.to_string());
        let Some(m) = m else {
            return format!("{price} is outside {name}'s price band around its reference price");
        };
        let (Some(bps), Some(reference)) = (m.price_band_bps, m.last_price.or(m.reference_price))
        else {
            return format!("{price} is outside {name}'s price band around its reference price");
        };
        let which = if m.last_price.is_some() {
            "the last trade"
        } else {
            "the admin's reference price"
        };
        // As the core computes it: in ticks, the low bound rounded up and the high
        // bound down, so both are prices the market takes.
        let tick = m.spec.tick_size.0;
        let ticks = (reference.0 / tick).trunc();
        let scale = |bps_total: u32| {
            ticks * rust_decimal::Decimal::from(bps_total) / rust_decimal::Decimal::from(10_000u32)
        };
        let lo = scale(10_000u32.saturating_sub(bps)).ceil() * tick;
        let hi = scale(10_000 + bps).floor() * tick;
        format!(
            "{name} takes prices within {bps} bps of {which} ({}): from {} to {}; {price} is outside",
            reference.0.normalize(),
            lo.normalize(),
            hi.normalize()
        )
    }

    fn insufficient_funds(&self) -> String {
        if let Some((asset, Some(amount))) = self.asset_amount() {
            let account = self.command.account();
            let available = account.and_then(|a| self.facts.available(a, &asset));
            return match available {
                Some(av) => format!("the withdrawal of {amount} {asset} needs that much available; the account has {av} {asset} available"),
                None => format!("the withdrawal of {amount} {asset} needs that much available, and the account has less"),
            };
        }
        let t = self.terms();
        let (Some(m), Some(side), Some(account)) = (self.market(), t.side, t.account) else {
            return "the account's available balance does not cover what the order must hold"
                .into();
        };
        let fee_ppm = m.fees.maker_ppm.max(m.fees.taker_ppm);
        let (asset, need) = match (side, t.price, t.quantity, t.quote_quantity) {
            (Side::Buy, Some(p), Some(q), _) => {
                let n = p.0 * q.0;
                let fee = n * rust_decimal::Decimal::from(fee_ppm)
                    / rust_decimal::Decimal::from(1_000_000u32);
                (
                    m.spec.quote,
                    format!(
                        "{} {} (price × quantity = {} plus the fee at up to {})",
                        (n + fee).normalize(),
                        m.spec.quote,
                        n.normalize(),
                        ppm_percent(fee_ppm)
                    ),
                )
            }
            (Side::Buy, _, _, Some(budget)) => (
                m.spec.quote,
                format!("its budget of {budget} {}", m.spec.quote),
            ),
            (Side::Sell, _, Some(q), _) => (m.spec.base, format!("{q} {}", m.spec.base)),
            (Side::Buy, _, Some(_), None) => (
                m.spec.quote,
                "the quote its quantity costs at the book's prices".into(),
            ),
            _ => (m.spec.base, "what it sells".into()),
        };
        match self.facts.available(account, &asset) {
            Some(av) => format!(
                "the order must hold {need}; account {} has {av} {asset} available",
                account.0
            ),
            None => format!(
                "the order must hold {need}; account {} has less {asset} available",
                account.0
            ),
        }
    }

    fn order_rules(&self, reason: RejectReason) -> String {
        let t = self.terms();
        match reason {
            RejectReason::PostOnlyWouldTrade => format!(
                "a post-only order must rest without trading; at {} it would take liquidity from the book",
                t.price.map_or_else(|| "its price".into(), |p| p.to_string())
            ),
            RejectReason::FokCannotFill => format!(
                "a fill-or-kill order fills all of its {}{} at once or not at all; the book cannot fill it all at its price",
                t.quantity.map_or_else(|| "quantity".into(), |q| q.to_string()),
                self.market().map_or_else(String::new, |m| format!(" {}", m.spec.base))
            ),
            RejectReason::NoLiquidity => "a market order needs orders on the other side of the book, and there are none".into(),
            RejectReason::ExpiryInPast => match t.time_in_force {
                Some(TimeInForce::Gtd { expires_at_ms }) => format!(
                    "a GTD order must expire after the engine's clock; expires_at_ms {expires_at_ms} is not after it (the command's time was {})",
                    self.envelope.time_ms
                ),
                _ => "a GTD order must expire after the engine's clock".into(),
            },
            RejectReason::InvalidSlice => match self.command {
                Command::PlaceSliced(s) | Command::PlaceSlicedReduceOnly(s) => format!(
                    "a sliced order has 1 to {} children, a lower price at or below the upper one (different when there are several), and at least one lot a child; {} children from {} to {} for {} were asked",
                    LIMITS.slices_max, s.count, s.lower_price, s.upper_price, s.total_quantity
                ),
                _ => format!("a sliced order has 1 to {} children, ordered prices and a lot a child at least", LIMITS.slices_max),
            },
            RejectReason::InvalidBracket => match self.command {
                Command::PlaceBracket(b) => format!(
                    "a bracket's exit must be on the profitable side of its entry ({} for a {}); entry {} and exit {} were given",
                    if b.side == Side::Buy { "above" } else { "below" },
                    if b.side == Side::Buy { "buy" } else { "sell" },
                    b.entry_price, b.exit_price
                ),
                _ => "a bracket's exit must be on the profitable side of its entry".into(),
            },
            RejectReason::NotAmendable => "only a resting limit order's price and quantity can be amended; stops, market orders and an iceberg's display cannot".into(),
            RejectReason::NothingToChange => "the amend gives the order's current price and quantity: there is nothing to change".into(),
            RejectReason::InvalidTimeInForce => "post-only and iceberg orders must be able to rest, so they cannot be IOC or FOK".into(),
            RejectReason::UnsupportedOrderType => "this combination is not offered (a stop-market sell is sized in base, not in quote)".into(),
            _ => match self.command {
                Command::PlaceOrder(NewOrder { client_order_id: Some(id), .. }) => format!(
                    "the account already has an open order with client order id {id}; a client order id names one open order"
                ),
                _ => "the account already has an open order with this client order id".into(),
            },
        }
    }

    fn account_sentence(&self, reason: RejectReason) -> String {
        let account = self
            .command
            .account()
            .map_or_else(|| "the account".into(), |a| format!("account {}", a.0));
        match reason {
            RejectReason::UnknownAccount => format!("{account} has never been credited: an account exists once it has had a deposit"),
            RejectReason::UnknownOrder => format!("{account} has no open order by that reference (it may have filled, been cancelled or expired)"),
            RejectReason::UnknownWithdrawal => "no pending withdrawal has that id (it may already be completed or failed)".into(),
            RejectReason::TradingRestricted => format!("{account} is restricted from trading by an admin (setAccountRestrictions)"),
            RejectReason::WithdrawalRestricted => format!("{account} is restricted from withdrawing by an admin (setAccountRestrictions)"),
            RejectReason::WithdrawalLimitExceeded => match self.asset_amount() {
                Some((asset, Some(amount))) => format!(
                    "{account}'s daily withdrawal limit for {asset} would be passed: {amount} {asset} more than today's (UTC) remaining allowance"
                ),
                _ => format!("{account}'s daily withdrawal limit would be passed"),
            },
            _ => match self.command {
                Command::Deposit { reference, asset, .. } => format!(
                    "a deposit with reference {reference} was already credited in {asset}; each external reference is credited once"
                ),
                _ => "this deposit reference was already credited; each is credited once".into(),
            },
        }
    }

    fn credentials(&self, reason: RejectReason) -> String {
        let auth = self.envelope.auth.as_ref();
        match reason {
            RejectReason::UnknownApiKey => format!(
                "API key {} does not exist or was revoked",
                auth.map_or_else(|| "given".into(), |a| a.key.0.to_string())
            ),
            RejectReason::InvalidApiKey => "a trader key acts for exactly one account; auditor and admin keys name none".into(),
            RejectReason::MissingCredentials => "the engine requires credentials on every command, and this one is unsigned: sign it with an API key (`auth`)".into(),
            RejectReason::BadSignature => "the MAC does not match the command and the key: the record was altered, or signed with another key's secret".into(),
            RejectReason::CredentialsExpired => match auth {
                Some(a) => format!(
                    "the signature expired at {} ms, before the engine's clock reached this command (its time was {} ms)",
                    a.expires_ms, self.envelope.time_ms
                ),
                None => "the signature expired before the engine's clock reached the command".into(),
            },
            RejectReason::ExpiryTooFar => match auth {
                Some(a) => format!(
                    "a signature may be valid for at most {} s past the engine's clock; this one expires at {} ms, and the command's time is {} ms",
                    MAX_VALIDITY_MS / 1_000,
                    a.expires_ms,
                    self.envelope.time_ms
                ),
                None => format!("a signature may be valid for at most {} s past the engine's clock", MAX_VALIDITY_MS / 1_000),
            },
            RejectReason::ReplayedSeq => match auth {
                Some(a) => format!("signing stream {} already used seq {}: a copy of a signed record runs nothing", a.stream, a.seq),
                None => "the signing stream already used this seq: a copy of a signed record runs nothing".into(),
            },
            RejectReason::SeqTooOld => format!(
                "seq {} is more than {SEQ_WINDOW} below the highest its stream has used, so it cannot be told from a replay: sign in order, or use a new stream",
                auth.map_or_else(|| "the one given".into(), |a| a.seq.to_string())
            ),
            RejectReason::TooManySigningStreams => format!(
                "a key may have {} signing streams live at once, and this key has that many; a stream lives until a minute after its last command",
                LIMITS.signing_streams_per_key_max
            ),
            _ => "the key may not issue this command: a trader key acts only for its own account and issues no admin command, and an auditor key issues none".into(),
        }
    }

    fn time(&self, reason: RejectReason) -> String {
        match reason {
            RejectReason::TimeBeyondHorizon => format!(
                "a trusted time is at most {} ms (the year 2100); this command says {} ms (a clock in microseconds or nanoseconds?)",
                LIMITS.time_max_ms, self.envelope.time_ms
            ),
            RejectReason::ClockJumpTooLarge => format!(
                "a trusted time may move the engine's clock at most {} days at once; {} ms is further ahead: after a real outage send AllowClockJump (`tape clock --allow-jump`)",
                LIMITS.clock_jump_max_ms / 86_400_000,
                self.envelope.time_ms
            ),
            _ => {
                let given = match self.command {
                    Command::CancelAllAfter { timeout_ms, .. } => format!("; {timeout_ms} ms was given"),
                    _ => String::new(),
                };
                format!("a dead-man switch timeout is at most {DEAD_MAN_TIMEOUT_MAX_MS} ms (a day){given}")
            }
        }
    }

    fn capacity(&self, reason: RejectReason) -> String {
        let account = self
            .command
            .account()
            .map_or_else(|| "the account".into(), |a| format!("account {}", a.0));
        match reason {
            RejectReason::TooManyOpenOrders => format!(
                "an account may have {} open orders and the engine {} in all; {account} or the engine has that many",
                LIMITS.open_orders_per_account_max, LIMITS.open_orders_max
            ),
            RejectReason::TooManyAccounts => format!("the engine keeps at most {} accounts and has that many: {account} cannot be opened", LIMITS.accounts_max),
            RejectReason::TooManyApiKeys => format!("the engine keeps at most {} live API keys and has that many: revoke one first", LIMITS.api_keys_max),
            RejectReason::TooManyPendingWithdrawals => format!("the engine keeps at most {} pending withdrawals and has that many: custody must complete or fail some first", LIMITS.pending_withdrawals_max),
            RejectReason::TooManyDeposits => format!("the engine remembers at most {} deposit references and has that many", LIMITS.deposit_references_max),
            RejectReason::TooManyParents => format!("the engine keeps at most {} live sliced and bracket orders and has that many", LIMITS.parents_max),
            _ => {
                let items = match self.command {
                    Command::Batch { items, .. } => items.len().to_string(),
                    _ => "another number of".into(),
                };
                format!("a batch carries 1 to {} items; this one has {items}", LIMITS.batch_items_max)
            }
        }
    }
}

/// The read models as facts: what the gateway knows when it explains a refusal
/// (as they stand when the answer is read, a moment after the engine decided).
impl Facts for tape_projections::Views {
    fn asset(&self, code: &AssetCode) -> Option<(u8, bool)> {
        self.asset(code)
            .ok()
            .flatten()
            .map(|a| (a.scale, a.enabled))
    }

    fn market(&self, symbol: &Symbol) -> Option<MarketView> {
        self.market(symbol).ok().flatten()
    }

    fn available(&self, account: AccountId, asset: &AssetCode) -> Option<Dec> {
        let wallets = self.wallets(account).ok()?;
        Some(
            wallets
                .iter()
                .find(|w| w.asset == *asset)
                .map_or(Dec::ZERO, |w| w.available),
        )
    }

    fn order_market(&self, account: AccountId, order: &OrderRef) -> Option<Symbol> {
        match order {
            OrderRef::Id(id) => self
                .order(*id)
                .ok()
                .flatten()
                .filter(|o| o.account == account)
                .map(|o| o.market),
            OrderRef::Client(_) => None,
        }
    }

    fn index(&self, market: &Symbol) -> Option<(Dec, u32)> {
        let p = self.perpetual(market).ok().flatten()?;
        Some((p.index?, p.spec.index.max_move_ppm))
    }
}

/// The order's value against the market's smallest.
fn min_notional(t: &Terms, spec: Option<&MarketSpec>, name: &str) -> String {
    let notional = match (t.price, t.quantity) {
        (Some(p), Some(q)) => p.0.checked_mul(q.0).map(|n| Dec(n.normalize())),
        _ => t.quote_quantity,
    };
    let value = notional.map_or_else(|| "the value given".into(), |d| d.to_string());
    match spec {
        Some(s) => format!(
            "{name}'s smallest order value (price × quantity) is {} {}; this one is {value}",
            s.min_notional, s.quote
        ),
        None => format!("the order's value {value} is below {name}'s minimum notional"),
    }
}

/// `ppm` parts per million as a percentage ("5%", "0.25%").
fn percent(ppm: u32) -> String {
    let p = rust_decimal::Decimal::from(ppm) / rust_decimal::Decimal::from(10_000);
    format!("{}%", p.normalize())
}

/// `part` of `whole` as a percentage, to two decimals, without its sign.
fn percent_of(part: rust_decimal::Decimal, whole: rust_decimal::Decimal) -> String {
    if whole.is_zero() {
        return "an unknown share".into();
    }
    let p = (part.abs() * rust_decimal::Decimal::from(100) / whole).round_dp(2);
    format!("{}%", p.normalize())
}
