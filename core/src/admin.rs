//! The operator's set-up commands: assets, markets (status, fees, price band) and
//! per-account settings (fee tiers, restrictions, withdrawal limits).

use std::collections::BTreeSet;

use tape_schemas::*;

use crate::assets::{Asset, ASSET_SCALE_MAX};
use crate::exchange::{amount_minor, Core, Outcome};
use crate::market::Market;

impl Core {
    /// Runs a set-up command (`execute` sends only those here).
    pub(crate) fn administer(&mut self, command: &Command, out: &mut Vec<Event>) -> Outcome {
        match command {
            Command::CreateAsset(spec) => self.create_asset(spec, out),
            Command::SetAssetEnabled { asset, enabled } => {
                self.set_asset_enabled(asset, *enabled, out)
            }
            Command::CreateMarket(spec) => self.create_market(spec, out),
            Command::SetMarketStatus { market, status } => {
                self.set_market_status(market, *status, out)
            }
            Command::SetMarketFees { market, fees } => self.set_market_fees(market, fees, out),
            Command::SetPriceBand {
                market,
                band_bps,
                reference_price,
            } => self.set_price_band(market, *band_bps, *reference_price, out),
            Command::SetAccountFees {
                account,
                market,
                fees,
            } => self.set_account_fees(*account, market, fees.as_ref(), out),
            Command::SetAccountRestrictions {
                account,
                can_trade,
                can_withdraw,
            } => self.set_account_restrictions(*account, *can_trade, *can_withdraw, out),
            Command::SetWithdrawalLimit {
                account,
                asset,
                daily_limit,
            } => self.set_withdrawal_limit(*account, asset, *daily_limit, out),
            Command::CreatePerpetual(spec) => self.create_perpetual(spec, out),
            // `execute` matches every command exhaustively and sends only the set-up
            // commands above here, so no command a stranger writes reaches this arm.
            other => unreachable!("execute runs {other:?} itself"),
        }
    }

    fn set_asset_enabled(
        &mut self,
        asset: &AssetCode,
        enabled: bool,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let a = self.assets.find(asset).ok_or(RejectReason::UnknownAsset)?;
        self.assets.set_enabled(a, enabled);
        out.push(Event::AssetUpdated {
            asset: *asset,
            enabled,
        });
        Ok(0)
    }

    fn set_price_band(
        &mut self,
        market: &Symbol,
        band_bps: Option<u32>,
        reference_price: Option<Dec>,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let m = self.markets.id(market)?;
        let mk = &self.markets[m];
        if band_bps.is_some_and(|b| b > tape_schemas::limits::PRICE_BAND_BPS_MAX) {
            return Err(RejectReason::InvalidMarketSpec);
        }
        let reference = reference_price.map(|p| mk.price_ticks(p)).transpose()?;
        self.markets[m].set_band(band_bps, reference);
        self.push_market_updated(m, out);
        Ok(0)
    }

    fn create_asset(&mut self, spec: &AssetSpec, out: &mut Vec<Event>) -> Outcome {
        if self.assets.find(&spec.code).is_some() {
            return Err(RejectReason::AssetExists);
        }
        if self.assets.len() >= usize::from(self.cfg.assets_max) {
            return Err(RejectReason::TooManyAssets);
        }
        if spec.scale > ASSET_SCALE_MAX {
            return Err(RejectReason::InvalidAssetScale);
        }
        let limit = spec
            .daily_withdrawal_limit
            .map(|l| amount_minor(l, spec.scale, true))
            .transpose()?;
        self.assets.add(Asset {
            code: spec.code,
            scale: spec.scale,
            enabled: true,
            daily_withdrawal_limit_minor: limit,
        });
        out.push(Event::AssetCreated(spec.clone()));
        Ok(0)
    }

    fn create_market(&mut self, spec: &MarketSpec, out: &mut Vec<Event>) -> Outcome {
        if self.markets.contains(&spec.symbol) {
            return Err(RejectReason::MarketExists);
        }
        if self.markets.len() >= self.cfg.markets_max as usize {
            return Err(RejectReason::TooManyMarkets);
        }
        let market = Market::new(spec.clone(), &self.assets)?;
        let m = self.markets.push(market);
        out.push(Event::MarketCreated(spec.clone()));
        Ok(u64::from(m))
    }

    fn set_market_status(
        &mut self,
        symbol: &Symbol,
        status: MarketStatus,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let m = self.markets.id(symbol)?;
        self.markets[m].set_status(status);
        self.push_market_updated(m, out);
        if status == MarketStatus::Disabled {
            let ids: BTreeSet<u64> = self.markets[m].book.orders().map(|o| o.id).collect();
            for id in ids {
                let (mm, slot) = self.orders.locate(id);
                self.remove_order(mm, slot, DoneReason::MarketDisabled, out);
            }
        }
        Ok(0)
    }

    pub(crate) fn push_market_updated(&self, m: u32, out: &mut Vec<Event>) {
        let mk = &self.markets[m];
        out.push(Event::MarketUpdated {
            market: mk.spec.symbol,
            status: mk.status(),
            fees: mk.fees(),
            price_band_bps: mk.price_band_bps(),
            reference_price: mk.reference_ticks().map(|t| mk.price_dec(t)),
        });
    }
}
