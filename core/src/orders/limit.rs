//! Limit orders: GTC, GTD, IOC and FOK, post-only, and icebergs (`iceberg`). A limit
//! order holds its worst cost up front, takes what crosses, then rests or ends.

use tape_schemas::*;

use super::*;

impl Core {
    pub(crate) fn place_limit(&mut self, p: &Placing, out: &mut Vec<Event>) -> Outcome {
        let OrderType::Limit {
            price,
            quantity,
            time_in_force,
            post_only,
            display_quantity,
        } = p.n.order_type
        else {
            return Err(RejectReason::UnsupportedOrderType);
        };
        let (m, n) = (p.m, p.n);
        let (ticks, lots) = self.check_limit(m, price, quantity)?;
        self.check_tif(time_in_force)?;
        let rests = matches!(time_in_force, TimeInForce::Gtc | TimeInForce::Gtd { .. });
        if post_only && !rests {
            return Err(RejectReason::InvalidTimeInForce);
        }
        let display_lots = self.display_lots(m, display_quantity, lots, rests)?;
        self.check_new_orders(n.account, 1, n.client_order_id.as_ref())?;
        let hold_ppm = crate::fees::hold_ppm(p.fees);
        let (asset, held) = self.limit_hold(m, n.side, ticks, lots, hold_ppm)?;
        self.check_funds(n.account, asset, held)?;
        if post_only && self.would_cross(m, n.side, ticks) {
            return Err(RejectReason::PostOnlyWouldTrade);
        }
        let draft = Draft {
            price_ticks: ticks,
            lots,
            display_lots,
            held_minor: held,
            tif: time_in_force,
            post_only,
            ..p.draft(OrderKind::Limit)
        };
        if time_in_force == TimeInForce::Fok
            && self.fillable_lots(m, &draft.to_order(0), lots) < lots
        {
            return Err(RejectReason::FokCannotFill);
        }
        let o = self.open(p, draft, out);
        let id = o.id;
        self.run_limit(m, o, out);
        Ok(id)
    }
}
