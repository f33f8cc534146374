//! Market orders, sized in base or in quote: no price, no hold up front; the funds
//! are checked fill by fill, and the price band stops them from walking the book.

use tape_schemas::*;

use super::*;

impl Core {
    pub(crate) fn place_market(&mut self, p: &Placing, out: &mut Vec<Event>) -> Outcome {
        let OrderType::Market { size } = p.n.order_type else {
            return Err(RejectReason::UnsupportedOrderType);
        };
        let (m, n) = (p.m, p.n);
        let mk = &self.markets[m];
        let (lots, quote_left) = self.market_size(m, size)?;
        if mk.book.best(n.side.opposite()).is_none() {
            return Err(RejectReason::NoLiquidity);
        }
        // The least a first fill needs: the whole budget or size where it is known.
        let (asset, need) = match (n.side, size) {
            (Side::Buy, MarketSize::Quote(_)) => (mk.quote, quote_left.unwrap_or(1)),
            (Side::Buy, MarketSize::Base(_)) => (mk.quote, 1),
            (Side::Sell, MarketSize::Base(_)) => (mk.base, mk.base_minor(lots)?),
            (Side::Sell, MarketSize::Quote(_)) => (mk.base, mk.lot_minor),
        };
        self.check_funds(n.account, asset, need)?;
        let draft = Draft {
            lots,
            ..p.draft(OrderKind::Limit)
        };
        self.open_market(p, draft, quote_left, out)
    }

    /// Announces a drafted market order and runs it against the book; its id.
    pub(crate) fn open_market(
        &mut self,
        p: &Placing,
        draft: Draft,
        quote_left: Option<u64>,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let o = self.open(p, draft, out);
        let id = o.id;
        let t = Taker {
            order: o,
            market_order: true,
            from_held: false,
            quote_left,
        };
        self.run_market(p.m, t, out);
        Ok(id)
    }
}
