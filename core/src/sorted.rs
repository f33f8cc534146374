//! The short lists inside an account's records (its positions by market, its
//! margins, triggers and covers by market or asset), kept sorted by key: a
//! lookup is a search by halves over a few entries, and a walk over a list goes
//! in key order with no sort. Every index below comes from the list's own binary
//! search, so none is out of bounds.

/// The value under `key`.
pub(crate) fn get<K: Ord + Copy, V>(list: &[(K, V)], key: K) -> Option<&V> {
    let i = list.binary_search_by_key(&key, |e| e.0).ok()?;
    Some(&list[i].1)
}

/// The value under `key`, to change.
pub(crate) fn get_mut<K: Ord + Copy, V>(list: &mut [(K, V)], key: K) -> Option<&mut V> {
    let i = list.binary_search_by_key(&key, |e| e.0).ok()?;
    Some(&mut list[i].1)
}

/// The value under `key`, put in by `new` if there was none.
pub(crate) fn get_or_insert_with<K: Ord + Copy, V>(
    list: &mut Vec<(K, V)>,
    key: K,
    new: impl FnOnce() -> V,
) -> &mut V {
    let i = match list.binary_search_by_key(&key, |e| e.0) {
        Ok(i) => i,
        Err(i) => {
            list.insert(i, (key, new()));
            i
        }
    };
    &mut list[i].1
}

/// Sets the value under `key`.
pub(crate) fn set<K: Ord + Copy, V>(list: &mut Vec<(K, V)>, key: K, value: V) {
    match list.binary_search_by_key(&key, |e| e.0) {
        Ok(i) => list[i].1 = value,
        Err(i) => list.insert(i, (key, value)),
    }
}

/// Takes the value under `key` out.
pub(crate) fn remove<K: Ord + Copy, V>(list: &mut Vec<(K, V)>, key: K) -> Option<V> {
    let i = list.binary_search_by_key(&key, |e| e.0).ok()?;
    Some(list.remove(i).1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_stays_sorted_and_finds_what_it_holds() {
        let mut list: Vec<(u16, u32)> = Vec::new();
        for (k, v) in [(7, 70), (2, 20), (9, 90), (2, 21)] {
            set(&mut list, k, v);
        }
        assert_eq!(list, vec![(2, 21), (7, 70), (9, 90)]);
        *get_or_insert_with(&mut list, 5, || 50) += 1;
        *get_or_insert_with(&mut list, 7, || 0) += 1;
        assert_eq!(list, vec![(2, 21), (5, 51), (7, 71), (9, 90)]);
        assert_eq!(get(&list, 9), Some(&90));
        assert_eq!(get(&list, 3), None);
        *get_mut(&mut list, 2).unwrap() = 22;
        assert_eq!(remove(&mut list, 2), Some(22));
        assert_eq!(remove(&mut list, 2), None);
        assert_eq!(list, vec![(5, 51), (7, 71), (9, 90)]);
    }
}
