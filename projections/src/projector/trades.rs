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
}
