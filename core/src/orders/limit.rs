//! Limit orders: GTC, GTD, IOC and FOK, post-only, and icebergs (`iceberg`). A limit
//! order holds its worst cost up front, takes what crosses, then rests or ends.

use tape_schemas::*;

use super::*;

/// A limit order's terms once its price, size, time in force and post-only have
/// passed the checks every market shares.
pub(crate) struct LimitTerms {
    pub ticks: u64,
    pub lots: u64,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
    /// GTC or GTD: what it does not fill may rest.
    pub rests: bool,
    pub display_quantity: Option<Dec>,
}

impl Core {
    /// The checks a limit order's own terms pass on any market.
    pub(crate) fn limit_terms(&self, p: &Placing) -> Result<LimitTerms, RejectReason> {
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
        let (ticks, lots) = self.check_limit(p.m, price, quantity)?;
        self.check_tif(time_in_force)?;
        let rests = matches!(time_in_force, TimeInForce::Gtc | TimeInForce::Gtd { .. });
        if post_only && !rests {
            return Err(RejectReason::InvalidTimeInForce);
        }
        Ok(LimitTerms {
            ticks,
            lots,
            time_in_force,
            post_only,
            rests,
            display_quantity,
        })
    }

    pub(crate) fn place_limit(&mut self, p: &Placing, out: &mut Vec<Event>) -> Outcome {
        let LimitTerms {
            ticks,
            lots,
            time_in_force,
            post_only,
            rests,
            display_quantity,
        } = self.limit_terms(p)?;
        let (m, n) = (p.m, p.n);
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
