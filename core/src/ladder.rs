//! The price levels of one side of a book. Levels near the action live in a dense
//! window indexed by price (O(1) lookup, insert and remove; best price from a
//! two-level bitmap); the rest live in a `BTreeMap`. The window re-centres when the
//! action moves away from it. Walking levels in price order merges the two, so what
//! the ladder shows never depends on where a level is stored.

use std::collections::BTreeMap;

use crate::book::{Level, NIL};

/// Prices the dense window covers. 64 × 64, so one summary word covers it.
const WINDOW: u64 = 4096;
const WORDS: usize = (WINDOW / 64) as usize;
const EMPTY: Level = Level {
    head: NIL,
    tail: NIL,
};
/// Re-centre once this many more levels live outside than inside the window.
const RECENTRE_SLACK: usize = 64;

#[derive(Clone, Debug)]
pub struct Ladder {
    base: u64,
    window: Vec<Level>,
    words: [u64; WORDS],
    summary: u64,
    in_window: usize,
    outside: BTreeMap<u64, Level>,
}

impl Default for Ladder {
    fn default() -> Self {
        Ladder {
            base: 0,
            window: Vec::new(),
            words: [0; WORDS],
            summary: 0,
            in_window: 0,
            outside: BTreeMap::new(),
        }
    }
}

impl Ladder {
    fn slot(&self, price: u64) -> Option<usize> {
        let offset = price.checked_sub(self.base)?;
        (offset < WINDOW && !self.window.is_empty()).then_some(offset as usize)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.in_window + self.outside.len()
    }

    pub fn get(&self, price: u64) -> Option<&Level> {
        match self.slot(price) {
            Some(i) => (self.words[i / 64] >> (i % 64) & 1 == 1).then(|| &self.window[i]),
            None => self.outside.get(&price),
        }
    }

    pub fn get_mut(&mut self, price: u64) -> Option<&mut Level> {
        match self.slot(price) {
            Some(i) => (self.words[i / 64] >> (i % 64) & 1 == 1).then(|| &mut self.window[i]),
            None => self.outside.get_mut(&price),
        }
    }

    /// The level at `price`, created empty if missing.
    pub fn entry(&mut self, price: u64) -> &mut Level {
        if self.slot(price).is_none()
            && (self.in_window == 0 || self.outside.len() >= self.in_window + RECENTRE_SLACK)
        {
            self.recentre(price);
        }
        match self.slot(price) {
            Some(i) => {
                let (w, b) = (i / 64, i % 64);
                if self.words[w] >> b & 1 == 0 {
                    self.words[w] |= 1 << b;
                    self.summary |= 1 << w;
                    self.in_window += 1;
                    self.window[i] = EMPTY;
                }
                &mut self.window[i]
            }
            None => self.outside.entry(price).or_insert(EMPTY),
        }
    }

    pub fn remove(&mut self, price: u64) {
        match self.slot(price) {
            Some(i) => {
                let (w, b) = (i / 64, i % 64);
                assert!(
                    self.words[w] >> b & 1 == 1,
                    "removing a level that is not there"
                );
                self.words[w] &= !(1 << b);
                if self.words[w] == 0 {
                    self.summary &= !(1 << w);
                }
                self.in_window -= 1;
            }
            None => {
                self.outside.remove(&price);
            }
        }
    }

    /// Moves the window so that it is centred on `price`.
    fn recentre(&mut self, price: u64) {
        let mut all: Vec<(u64, Level)> = self.window_levels().collect();
        all.extend(std::mem::take(&mut self.outside));
        self.words = [0; WORDS];
        self.summary = 0;
        self.in_window = 0;
        if self.window.is_empty() {
            self.window = vec![EMPTY; WINDOW as usize];
        }
        self.base = price.saturating_sub(WINDOW / 2);
        for (p, level) in all {
            *self.entry_no_recentre(p) = level;
        }
    }

    fn entry_no_recentre(&mut self, price: u64) -> &mut Level {
        match self.slot(price) {
            Some(i) => {
                self.words[i / 64] |= 1 << (i % 64);
                self.summary |= 1 << (i / 64);
                self.in_window += 1;
                &mut self.window[i]
            }
            None => self.outside.entry(price).or_insert(EMPTY),
        }
    }

    fn window_max(&self) -> Option<usize> {
        if self.summary == 0 {
            return None;
        }
        let w = 63 - self.summary.leading_zeros() as usize;
        Some(w * 64 + 63 - self.words[w].leading_zeros() as usize)
    }

    fn window_min(&self) -> Option<usize> {
        if self.summary == 0 {
            return None;
        }
        let w = self.summary.trailing_zeros() as usize;
        Some(w * 64 + self.words[w].trailing_zeros() as usize)
    }

    /// The highest level.
    pub fn max(&self) -> Option<(u64, Level)> {
        let above = self
            .outside
            .last_key_value()
            .filter(|(p, _)| **p >= self.base + WINDOW || self.in_window == 0);
        if let Some((p, l)) = above {
            return Some((*p, *l));
        }
        if let Some(i) = self.window_max() {
            return Some((self.base + i as u64, self.window[i]));
        }
        self.outside.last_key_value().map(|(p, l)| (*p, *l))
    }

    /// The lowest level.
    pub fn min(&self) -> Option<(u64, Level)> {
        let below = self
            .outside
            .first_key_value()
            .filter(|(p, _)| **p < self.base || self.in_window == 0);
        if let Some((p, l)) = below {
            return Some((*p, *l));
        }
        if let Some(i) = self.window_min() {
            return Some((self.base + i as u64, self.window[i]));
        }
        self.outside.first_key_value().map(|(p, l)| (*p, *l))
    }

    fn window_levels(&self) -> WindowLevels<'_> {
        WindowLevels {
            ladder: self,
            front: 0,
            back: if self.window.is_empty() {
                0
            } else {
                WINDOW as usize
            },
        }
    }

    /// Levels from lowest to highest price.
    pub fn iter_asc(&self) -> impl DoubleEndedIterator<Item = (u64, Level)> + '_ {
        let below = self.outside.range(..self.base).map(|(p, l)| (*p, *l));
        let above = self.outside.range(self.base..).map(|(p, l)| (*p, *l));
        below.chain(self.window_levels()).chain(above)
    }
}

/// The window's levels in price order, found a word of the bitmap at a time
/// (a sparse window costs its 64 words, not its 4,096 slots).
struct WindowLevels<'a> {
    ladder: &'a Ladder,
    /// Slots not yet given: `front..back`.
    front: usize,
    back: usize,
}

impl WindowLevels<'_> {
    fn level(&self, i: usize) -> (u64, Level) {
        (self.ladder.base + i as u64, self.ladder.window[i])
    }
}

impl Iterator for WindowLevels<'_> {
    type Item = (u64, Level);

    fn next(&mut self) -> Option<(u64, Level)> {
        while self.front < self.back {
            let (w, b) = (self.front / 64, self.front % 64);
            let word = self.ladder.words[w] >> b;
            if word == 0 {
                self.front = (w + 1) * 64;
                continue;
            }
            let i = self.front + word.trailing_zeros() as usize;
            if i >= self.back {
                break;
            }
            self.front = i + 1;
            return Some(self.level(i));
        }
        self.front = self.back;
        None
    }
}

impl DoubleEndedIterator for WindowLevels<'_> {
    fn next_back(&mut self) -> Option<(u64, Level)> {
        while self.back > self.front {
            // The highest slot not yet given is `back - 1`.
            let last = self.back - 1;
            let (w, b) = (last / 64, last % 64);
            let word = self.ladder.words[w] << (63 - b);
            if word == 0 {
                self.back = w * 64;
                continue;
            }
            let i = last - word.leading_zeros() as usize;
            if i < self.front {
                break;
            }
            self.back = i;
            return Some(self.level(i));
        }
        self.back = self.front;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The ladder behaves exactly like a `BTreeMap` of levels, wherever its window is.
        #[test]
        fn matches_a_btreemap(ops in prop::collection::vec((any::<bool>(), 0u64..3, 0u64..20_000), 1..600)) {
            let mut ladder = Ladder::default();
            let mut model: BTreeMap<u64, Level> = BTreeMap::new();
            for (i, (insert, region, offset)) in ops.into_iter().enumerate() {
                let price = [1_000_000, 1_010_000, 5][region as usize] + offset;
                if insert {
                    let tag = i as u32;
                    ladder.entry(price).head = tag;
                    model.entry(price).or_insert(EMPTY).head = tag;
                } else if model.remove(&price).is_some() {
                    ladder.remove(price);
                }
                prop_assert_eq!(ladder.len(), model.len());
                prop_assert_eq!(ladder.max(), model.last_key_value().map(|(p, l)| (*p, *l)));
                prop_assert_eq!(ladder.min(), model.first_key_value().map(|(p, l)| (*p, *l)));
                let got: Vec<_> = ladder.iter_asc().collect();
                let want: Vec<_> = model.iter().map(|(p, l)| (*p, *l)).collect();
                prop_assert_eq!(got, want);
                let got: Vec<_> = ladder.iter_asc().rev().collect();
                let want: Vec<_> = model.iter().rev().map(|(p, l)| (*p, *l)).collect();
                prop_assert_eq!(got, want);
                // Both ends at once, as a walk that stops part way may leave it.
                let mut both = ladder.iter_asc();
                let (first, last) = (both.next(), both.next_back());
                prop_assert_eq!(first, model.first_key_value().map(|(p, l)| (*p, *l)));
                if model.len() > 1 {
                    prop_assert_eq!(last, model.last_key_value().map(|(p, l)| (*p, *l)));
                } else {
                    prop_assert_eq!(last, None);
                }
                prop_assert_eq!(both.count(), model.len().saturating_sub(2));
                prop_assert_eq!(ladder.get_mut(price).copied(), model.get(&price).copied());
            }
        }
    }
}
