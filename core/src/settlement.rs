//! Settlement of one fill: the postings that move base and quote between buyer and
//! seller and charge both fees, then each side's hold recomputed for what is still
//! open, with any excess released at once.

use tape_schemas::*;

use crate::book::Slot;
use crate::checked::{add, sub};
use crate::exchange::Core;
use crate::fees::max_ppm;
use crate::matching::Taker;

/// The amounts of one fill, in minor units.
pub(crate) struct Fill {
    pub trade: u64,
    pub lots: u64,
    pub notional: u64,
    pub base: u64,
    pub base_asset: u16,
    pub quote_asset: u16,
    pub maker_id: u64,
    pub maker_account: AccountId,
    pub maker_parent: u64,
    pub maker_fee: u64,
    pub taker_fee: u64,
}

impl Fill {
    /// Quote that moved for (maker, taker): what the buyer paid with its fee, what
    /// the seller kept after its fee.
    pub fn quote_flows(&self, taker_side: Side) -> (u64, u64) {
        let (buyer_fee, seller_fee) = match taker_side {
            Side::Buy => (self.taker_fee, self.maker_fee),
            Side::Sell => (self.maker_fee, self.taker_fee),
        };
        let buyer = add(self.notional, buyer_fee, "buyer flow");
        let seller = sub(self.notional, seller_fee, "seller flow");
        match taker_side {
            Side::Buy => (seller, buyer),
            Side::Sell => (buyer, seller),
        }
    }
}

/// Balances a fill changes, read before and after its postings.
struct FillParties {
    buyer_quote: u128,
    seller_quote: u128,
    buyer_base: u128,
    seller_base: u128,
    fees: u128,
}

impl Core {
    /// The fill's four postings: base to the buyer, quote to the seller, and each
    /// side's fee to the fee account.
    pub(crate) fn post_fill(&mut self, f: &Fill, t: &Taker, out: &mut Vec<Event>) {
        let taker_src = if t.from_held {
            Party::Held(t.order.account)
        } else {
            Party::Available(t.order.account)
        };
        let maker_src = Party::Held(f.maker_account);
        let (buyer, seller, buyer_src, seller_src, buyer_fee, seller_fee) = match t.order.side {
            Side::Buy => (
                t.order.account,
                f.maker_account,
                taker_src,
                maker_src,
                f.taker_fee,
                f.maker_fee,
            ),
            Side::Sell => (
                f.maker_account,
                t.order.account,
                maker_src,
                taker_src,
                f.maker_fee,
                f.taker_fee,
            ),
        };
        assert!(buyer != seller, "no account trades with itself");
        self.touch_margin_accounts(&[buyer, seller]);
        let before = self.fill_parties(f, buyer, seller);
        let cause = Cause::Trade(TradeId(f.trade));
        let (base, quote) = (f.base_asset, f.quote_asset);
        let a = &self.assets;
        let l = &mut self.ledger;
        l.post(
            a,
            base,
            seller_src,
            Party::Available(buyer),
            f.base,
            cause,
            out,
        );
        l.post(
            a,
            quote,
            buyer_src,
            Party::Available(seller),
            f.notional,
            cause,
            out,
        );
        l.post(a, quote, buyer_src, Party::Fees, buyer_fee, cause, out);
        let seller_pays = Party::Available(seller);
        l.post(a, quote, seller_pays, Party::Fees, seller_fee, cause, out);
        // The buyer paid what the seller got plus both fees, and the base moved.
        let after = self.fill_parties(f, buyer, seller);
        let paid = u128::from(f.notional) + u128::from(buyer_fee);
        let got = u128::from(f.notional) - u128::from(seller_fee);
        let fees = u128::from(buyer_fee) + u128::from(seller_fee);
        assert!(
            before.buyer_quote - after.buyer_quote == paid
                && after.seller_quote - before.seller_quote == got
                && after.fees - before.fees == fees
                && paid == got + fees,
            "trade {}: the buyer pays what the seller gets plus both fees",
            f.trade
        );
        assert!(
            after.buyer_base - before.buyer_base == u128::from(f.base)
                && before.seller_base - after.seller_base == u128::from(f.base),
            "trade {}: the seller's base reaches the buyer",
            f.trade
        );
    }

    /// What a fill's two parties own of its assets, and the fee account's quote.
    fn fill_parties(&self, f: &Fill, buyer: AccountId, seller: AccountId) -> FillParties {
        let total = |account, asset| {
            self.ledger
                .balance(account, asset)
                .expect("a trading account exists")
                .total()
        };
        FillParties {
            buyer_quote: total(buyer, f.quote_asset),
            seller_quote: total(seller, f.quote_asset),
            buyer_base: total(buyer, f.base_asset),
            seller_base: total(seller, f.base_asset),
            fees: u128::from(self.ledger.system(f.quote_asset).fees),
        }
    }

    /// The maker after a fill: what is left of its order and of its hold.
    pub(crate) fn settle_maker(&mut self, m: u32, slot: Slot, f: &Fill, out: &mut Vec<Event>) {
        let mk = &mut self.markets[m];
        let maker = mk.book.get_mut(slot);
        maker.open_lots = sub(maker.open_lots, f.lots, "maker open lots");
        maker.visible_lots = sub(maker.visible_lots, f.lots, "maker visible lots");
        maker.filled_lots = add(maker.filled_lots, f.lots, "maker filled lots");
        let release = match maker.side {
            Side::Buy => {
                let (ticks, open, ppm) = (maker.price_ticks, maker.open_lots, max_ppm(maker));
                let keep = mk.buy_hold(ticks, open, ppm).expect("a smaller hold fits");
                let maker = mk.book.get_mut(slot);
                let spent = add(f.notional, f.maker_fee, "maker buy cost");
                let release = sub(
                    sub(maker.held_minor, spent, "maker buy hold"),
                    keep,
                    "maker buy hold kept",
                );
                maker.held_minor = keep;
                release
            }
            Side::Sell => {
                maker.held_minor = sub(maker.held_minor, f.base, "maker sell hold");
                0
            }
        };
        let cause = Cause::Order(OrderId(f.maker_id));
        let (quote, account) = (f.quote_asset, f.maker_account);
        self.ledger
            .release(&self.assets, quote, account, release, cause, out);
    }

    /// The taker after a fill: its open size, its quote budget and its hold.
    pub(crate) fn settle_taker(&mut self, m: u32, f: &Fill, t: &mut Taker, out: &mut Vec<Event>) {
        t.order.open_lots = sub(t.order.open_lots, f.lots, "taker open lots");
        t.order.filled_lots = add(t.order.filled_lots, f.lots, "taker filled lots");
        match t.order.side {
            Side::Buy => {
                let cost = add(f.notional, f.taker_fee, "taker buy cost");
                if let Some(q) = t.quote_left.as_mut() {
                    *q = sub(*q, cost, "taker quote budget");
                }
                if !t.market_order {
                    let keep = self.markets[m]
                        .buy_hold(t.order.price_ticks, t.order.open_lots, max_ppm(&t.order))
                        .expect("a smaller hold fits");
                    let release = sub(
                        sub(t.order.held_minor, cost, "taker buy hold"),
                        keep,
                        "taker buy hold kept",
                    );
                    t.order.held_minor = keep;
                    let account = t.order.account;
                    let cause = Cause::Order(OrderId(t.order.id));
                    self.ledger
                        .release(&self.assets, f.quote_asset, account, release, cause, out);
                } else if t.from_held {
                    t.order.held_minor = sub(t.order.held_minor, cost, "taker market hold");
                }
            }
            Side::Sell => {
                if let Some(q) = t.quote_left.as_mut() {
                    *q = sub(*q, f.notional, "taker quote budget");
                }
                if t.from_held {
                    t.order.held_minor = sub(t.order.held_minor, f.base, "taker sell hold");
                }
            }
        }
    }
}
