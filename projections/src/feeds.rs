//! Routing the events log into the JSON feeds (`tape_schemas::feeds`): which events
//! an account may see, stripped of every other account's id, and the public L3 book
//! of each market. The router keeps only what routing needs, each map bounded by
//! the engine's own bounds: the live orders' owners and book places (at most the
//! engine's open orders), and the trader keys' accounts (at most its live keys).

use std::collections::HashMap;

use tape_schemas::*;

/// A record for one feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedRecord {
    Account(AccountRecord),
    Market(MarketRecord),
}

impl FeedRecord {
    pub fn seq(&self) -> u64 {
        match self {
            FeedRecord::Account(r) => r.seq,
            FeedRecord::Market(r) => r.seq,
        }
    }
}

#[derive(Default)]
pub struct FeedRouter {
    /// Live orders' accounts (an order's entry goes once the command that ended it
    /// is over: its own later events, such as a bracket's, still find it).
    owners: HashMap<OrderId, AccountId>,
    /// Orders on a book: side and price.
    on_book: HashMap<OrderId, (Side, Dec)>,
    /// Trader keys' accounts.
    keys: HashMap<ApiKeyId, AccountId>,
    /// Orders ended by the current command.
    ended: Vec<OrderId>,
    /// The current command's offset, the account it acts for, and the account its
    /// answers go to.
    offset: Option<u64>,
    acting: Option<AccountId>,
    answered: Option<AccountId>,
}

impl FeedRouter {
    pub fn new() -> Self {
        FeedRouter::default()
    }

    /// Routes one event. `command` is the command at the event's `command_offset`;
    /// only an `Outcome` needs it (to find whose answer it is). Without it the
    /// router's state still moves on (catching up without publishing).
    // One arm per kind of event, matched exhaustively so a new event is routed
    // on purpose.
    #[allow(clippy::too_many_lines)]
    pub fn route(
        &mut self,
        env: &EventEnvelope,
        command: Option<&CommandEnvelope>,
        out: &mut Vec<FeedRecord>,
    ) {
        if self.offset != Some(env.command_offset) {
            for order in self.ended.drain(..) {
                self.owners.remove(&order);
            }
            self.offset = Some(env.command_offset);
            self.acting = None;
            self.answered = None;
        }
        let mut feed = Feed { env, out };
        match &env.event {
            Event::Outcome { .. } => self.outcome(&mut feed, command),
            // A batch item's answer goes where the batch's did.
            Event::ItemOutcome { .. } => {
                if let Some(account) = self.answered {
                    feed.own(account);
                }
            }
            Event::ApiKeyCreated { .. } | Event::ApiKeyRevoked { .. } => self.key(&env.event),
            Event::OrderAccepted { order, account, .. } => {
                self.owners.insert(*order, *account);
                feed.own(*account);
            }
            Event::Trade { .. } => self.trade(&mut feed),
            Event::Posting {
                asset,
                from,
                to,
                amount,
                cause,
            } => balance(&mut feed, *asset, *from, *to, *amount, *cause),
            Event::Deposited { account, .. }
            | Event::WithdrawalRequested { account, .. }
            | Event::WithdrawalCompleted { account, .. }
            | Event::WithdrawalFailed { account, .. }
            | Event::AccountFeesSet { account, .. }
            | Event::AccountRestrictionsSet { account, .. }
            | Event::WithdrawalLimitSet { account, .. }
            | Event::DeadManSwitchSet { account, .. }
            | Event::DeadManSwitchFired { account, .. }
            | Event::AccountTierSet { account, .. }
            | Event::LeverageSet { account, .. }
            | Event::PositionChanged { account, .. }
            | Event::LiquidationStarted { account, .. }
            | Event::LiquidationStep { account, .. }
            | Event::LiquidationEnded { account, .. }
            | Event::Deleveraged { account, .. }
            | Event::FundingPaid { account, .. }
            | Event::NotionalCapSet {
                account: Some(account),
                ..
            } => feed.own(*account),
            Event::SlicedPlaced { .. }
            | Event::BracketExitPlaced { .. }
            | Event::BracketPnl { .. }
            | Event::BracketExitRejected { .. }
            | Event::OrderTriggered { .. } => self.parent_or_trigger(&mut feed),
            Event::OrderRested { .. }
            | Event::OrderAmended { .. }
            | Event::OrderRefilled { .. }
            | Event::OrderDone { .. } => self.book_change(&mut feed),
            Event::IndexPriceSet { .. } | Event::IndexStale { .. } | Event::FundingRound { .. } => {
                prices(&mut feed)
            }
            Event::AssetCreated(_)
            | Event::PerpetualCreated { .. }
            | Event::LeverageTiersSet(_)
            | Event::AssetUpdated { .. }
            | Event::MarketCreated(_)
            | Event::MarketUpdated { .. }
            | Event::Checkpoint { .. }
            | Event::LiabilitiesCommitted(_)
            | Event::InsurancePosition { .. }
            | Event::NotionalCapSet { account: None, .. }
            | Event::CredentialsRequired { .. } => {}
        }
    }

    /// Trader keys and their accounts, for the commands they sign.
    fn key(&mut self, event: &Event) {
        match event {
            Event::ApiKeyCreated {
                key,
                role: ApiRole::Trader,
                account: Some(account),
                ..
            } => {
                self.keys.insert(*key, *account);
            }
            Event::ApiKeyRevoked { key } => {
                self.keys.remove(key);
            }
            _ => {}
        }
    }

    /// A command's answer, to the account it answers; remembers who acted, for
    /// the events that follow it.
    fn outcome(&mut self, feed: &mut Feed<'_>, command: Option<&CommandEnvelope>) {
        let Event::Outcome {
            command: id,
            result,
            duplicate,
        } = &feed.env.event
        else {
            return;
        };
        self.acting = command.and_then(|c| c.command.account());
        self.answered = command.and_then(|c| self.answered_to(c));
        if let Some(account) = self.answered {
            let update = AccountUpdate::Outcome {
                command: *id,
                result: *result,
                duplicate: *duplicate,
            };
            feed.account(account, update);
        }
    }

    /// A sliced order's placement goes to the account whose command placed it
    /// (before its children); a bracket's or a stop's event to the order's owner.
    fn parent_or_trigger(&mut self, feed: &mut Feed<'_>) {
        let owner = match &feed.env.event {
            Event::SlicedPlaced { .. } => self.acting,
            Event::BracketExitPlaced { exit: order, .. }
            | Event::BracketPnl { exit: order, .. }
            | Event::BracketExitRejected { entry: order, .. }
            | Event::OrderTriggered { order, .. } => self.owners.get(order).copied(),
            _ => None,
        };
        if let Some(account) = owner {
            feed.own(account);
        }
    }

    /// Whose answer a command's outcome is: the account of the trader key that
    /// signed it, or — unsigned, while credentials are optional — the account a
    /// trading command names. An admin's commands, and a forger's, reach no feed.
    fn answered_to(&self, command: &CommandEnvelope) -> Option<AccountId> {
        match command.auth {
            Some(auth) => self.keys.get(&auth.key).copied(),
            None if !command.command.is_admin() => command.command.account(),
            None => None,
        }
    }

    fn trade(&mut self, feed: &mut Feed<'_>) {
        let Event::Trade {
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
        } = &feed.env.event
        else {
            return;
        };
        let maker = FillSide {
            order: *maker_order,
            fee: *maker_fee,
        };
        let taker = FillSide {
            order: *taker_order,
            fee: *taker_fee,
        };
        let fill = |maker: Option<FillSide>, taker: Option<FillSide>| AccountUpdate::Fill {
            trade: *trade,
            market: *market,
            price: *price,
            quantity: *quantity,
            quote_quantity: *quote_quantity,
            taker_side: *taker_side,
            maker,
            taker,
        };
        if maker_account == taker_account {
            feed.account(*maker_account, fill(Some(maker), Some(taker)));
        } else {
            feed.account(*maker_account, fill(Some(maker), None));
            feed.account(*taker_account, fill(None, Some(taker)));
        }
        feed.market(
            *market,
            MarketUpdate::Trade {
                trade: *trade,
                price: *price,
                quantity: *quantity,
                taker_side: *taker_side,
                maker_order: *maker_order,
                taker_order: *taker_order,
            },
        );
    }

    /// An order's own event to its account, and what it does to the public book.
    fn book_change(&mut self, feed: &mut Feed<'_>) {
        let (order, market, update) = match &feed.env.event {
            Event::OrderRested {
                order,
                market,
                side,
                price,
                visible,
                ..
            } => {
                self.on_book.insert(*order, (*side, *price));
                let update = MarketUpdate::OrderAdded {
                    order: *order,
                    side: *side,
                    price: *price,
                    visible: *visible,
                };
                (*order, *market, Some(update))
            }
            Event::OrderAmended { order, market, .. } => {
                (*order, *market, self.amended(&feed.env.event))
            }
            Event::OrderRefilled {
                order,
                market,
                visible,
                ..
            } => {
                let update = self.on_book.get(order).map(|&(side, price)| {
                    let (order, visible, requeued) = (*order, *visible, true);
                    MarketUpdate::OrderChanged {
                        order,
                        side,
                        price,
                        visible,
                        requeued,
                    }
                });
                (*order, *market, update)
            }
            Event::OrderDone { order, market, .. } => {
                self.ended.push(*order);
                let update = self.on_book.remove(order).map(|_| removed(*order));
                (*order, *market, update)
            }
            _ => return,
        };
        if let Some(&account) = self.owners.get(&order) {
            feed.own(account);
        }
        if let Some(update) = update {
            feed.market(market, update);
        }
    }

    /// What an amend does to the public book. One that loses priority leaves the
    /// book; the order rests again at the back (`OrderRested`) unless it trades at
    /// once.
    fn amended(&mut self, event: &Event) -> Option<MarketUpdate> {
        let Event::OrderAmended {
            order,
            side,
            price,
            visible,
            requeued,
            ..
        } = event
        else {
            return None;
        };
        if *requeued {
            return self.on_book.remove(order).map(|_| removed(*order));
        }
        self.on_book.get_mut(order).map(|place| {
            *place = (*side, *price);
            MarketUpdate::OrderChanged {
                order: *order,
                side: *side,
                price: *price,
                visible: *visible,
                requeued: false,
            }
        })
    }
}

fn removed(order: OrderId) -> MarketUpdate {
    MarketUpdate::OrderRemoved { order }
}

/// A posting's change to each account it touches: one record an account, so a
/// hold (available to held of the same account) is one record with both parts.
fn balance(
    feed: &mut Feed<'_>,
    asset: AssetCode,
    from: Party,
    to: Party,
    amount: Dec,
    cause: Cause,
) {
    let minus = Dec(-amount.0);
    let part = |party: Party, amount: Dec| match party {
        Party::Available(a) => Some((a, amount, Dec::ZERO)),
        Party::Held(a) => Some((a, Dec::ZERO, amount)),
        Party::Fees | Party::World | Party::Clearing(_) | Party::Insurance => None,
    };
    let (debit, credit) = (part(from, minus), part(to, amount));
    let changes = match (debit, credit) {
        (Some(d), Some(c)) if d.0 == c.0 => vec![(d.0, Dec(d.1 .0 + c.1 .0), Dec(d.2 .0 + c.2 .0))],
        (d, c) => d.into_iter().chain(c).collect(),
    };
    for (account, available, held) in changes {
        feed.account(
            account,
            AccountUpdate::Balance {
                asset,
                available,
                held,
                cause,
            },
        );
    }
}

/// Where one event's records go.
struct Feed<'a> {
    env: &'a EventEnvelope,
    out: &'a mut Vec<FeedRecord>,
}

impl Feed<'_> {
    fn account(&mut self, account: AccountId, update: AccountUpdate) {
        self.out.push(FeedRecord::Account(AccountRecord {
            seq: self.env.seq,
            command_offset: self.env.command_offset,
            time_ms: self.env.time_ms,
            account,
            update,
        }));
    }

    /// The event itself, to the one account it is about.
    fn own(&mut self, account: AccountId) {
        let event = self.env.event.clone();
        self.account(account, AccountUpdate::Event(event));
    }

    fn market(&mut self, market: Symbol, update: MarketUpdate) {
        self.out.push(FeedRecord::Market(MarketRecord {
            seq: self.env.seq,
            time_ms: self.env.time_ms,
            market,
            update,
        }));
    }
}

/// A perpetual's prices, on its market's feed.
fn prices(feed: &mut Feed<'_>) {
    match &feed.env.event {
        Event::IndexPriceSet {
            market,
            index,
            mark,
            source_ms,
        } => {
            let update = MarketUpdate::Prices {
                index: *index,
                mark: *mark,
                source_ms: *source_ms,
            };
            feed.market(*market, update)
        }
        Event::IndexStale { market, source_ms } => {
            let update = MarketUpdate::IndexStale {
                source_ms: *source_ms,
            };
            feed.market(*market, update)
        }
        Event::FundingRound {
            market,
            at_ms,
            rate,
            premium,
            mark,
        } => {
            let update = MarketUpdate::Funding {
                at_ms: *at_ms,
                rate: *rate,
                premium: *premium,
                mark: *mark,
            };
            feed.market(*market, update)
        }
        _ => {}
    }
}
