//! Records kept by account in hash maps (the ledger's balances, the margin
//! records of `Positions` and `Watch`): one probe finds an account's record.
//! Such a map is never walked as it stands, since its order depends on its
//! layout; a walk over all of it goes through `in_order`, so nothing that
//! reaches an event, a snapshot or an invariant's report depends on that.

use rustc_hash::FxHashMap;
use tape_schemas::AccountId;

/// Every record of `map` with its account, in account order.
pub(crate) fn in_order<V>(map: &FxHashMap<AccountId, V>) -> Vec<(AccountId, &V)> {
    let mut all: Vec<(AccountId, &V)> = map.iter().map(|(a, v)| (*a, v)).collect();
    all.sort_unstable_by_key(|e| e.0);
    all
}
