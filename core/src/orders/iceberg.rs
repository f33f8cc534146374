//! Icebergs: a limit order that shows only `display_quantity` at a time. When the
//! shown part is filled, the next slice is shown at the back of its price level.

use tape_schemas::*;

use super::*;

/// What an order shows of `open` lots: a slice for an iceberg, else all of it.
pub(crate) fn shown(o: &Order, open: u64) -> u64 {
    if o.is_iceberg() {
        o.display_lots.min(open)
    } else {
        open
    }
}

impl Core {
    /// The display size of a new limit order in lots (0: not an iceberg). Only an
    /// order that can rest may hide, and it must hide something.
    pub(crate) fn display_lots(
        &self,
        m: u32,
        display_quantity: Option<Dec>,
        lots: u64,
        rests: bool,
    ) -> Result<u64, RejectReason> {
        let Some(d) = display_quantity else {
            return Ok(0);
        };
        if !rests {
            return Err(RejectReason::InvalidTimeInForce);
        }
        let d = self.markets[m].quantity_lots(d)?;
        if d >= lots {
            return Err(RejectReason::InvalidQuantity);
        }
        Ok(d)
    }

    /// After a fill: if a resting iceberg has shown all of its slice, shows the next
    /// one at the back of its level.
    pub(crate) fn refill_if_shown_out(&mut self, m: u32, slot: Slot, out: &mut Vec<Event>) {
        let mk = &mut self.markets[m];
        let maker = mk.book.get_mut(slot);
        if maker.visible_lots != 0 {
            return;
        }
        maker.visible_lots = maker.display_lots.min(maker.open_lots);
        let hidden = sub(maker.open_lots, maker.visible_lots, "iceberg hidden lots");
        let (id, visible) = (maker.id, maker.visible_lots);
        mk.book.unlink(slot);
        mk.book.push_back(slot);
        out.push(Event::OrderRefilled {
            order: OrderId(id),
            market: mk.spec.symbol,
            visible: mk.qty_dec(visible),
            hidden: mk.qty_dec(hidden),
        });
    }
}
