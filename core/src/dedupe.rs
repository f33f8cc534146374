//! The answer window: results of recent command ids, so a repeated id (a retry with
//! a new signature, an unsigned command sent twice) is answered with its original
//! result instead of being executed twice. Bounded by count and by age (both in
//! `CoreConfig`); entries leave oldest first. It is not what stops replays of signed
//! records (`signing` does, whatever the rate). Ids are matched per signer: each key's
//! ids are its own (unsigned commands share signer 0), so one key can neither learn
//! nor block another's outcome by using its id, nor lose its own deduplication to
//! an id another key used first.
//!
//! Every command looks its id up and records it, so this sits on the hot path. The
//! store is a ring of entries in arrival order plus an open-addressing index of
//! single `u64` slots (hash bits and ring position), at most half full. A lookup
//! touches one index cache line; eviction deletes by backward shift, so the index
//! never fills with tombstones and never pauses to rebuild once grown.

use std::collections::VecDeque;

use tape_schemas::{CommandId, CommandResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    time_ms: u64,
    id: CommandId,
    /// The API key whose credentials the command carried; 0 for unsigned.
    signer: u64,
    result: CommandResult,
}

#[derive(Clone, Debug, Default)]
pub struct Dedupe {
    /// Live entries, oldest first.
    entries: VecDeque<Entry>,
    /// Arrival number of `entries[0]`.
    first_seq: u64,
    /// Ring positions are `seq % ring_capacity`; fixed once the first entry arrives.
    ring_capacity: u64,
    pos_bits: u32,
    /// 0 is empty; otherwise the id's hash with its low `pos_bits` replaced by
    /// `position + 1`.
    slots: Vec<u64>,
}

fn hash(id: &CommandId) -> u64 {
    let v = id.0.as_u128();
    let folded = (v as u64) ^ ((v >> 64) as u64).rotate_left(29);
    // A fixed odd multiplier (Fibonacci hashing) and a final mix: deterministic,
    // and good enough for ids that are random (UUIDv4) or sequential.
    let x = folded.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^ (x >> 31)
}

impl Dedupe {
    fn home(&self, h: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        (h >> (64 - bits)) as usize
    }

    fn position(&self, seq: u64) -> u64 {
        seq % self.ring_capacity
    }

    fn entry_at_position(&self, pos: u64) -> &Entry {
        // Live positions are contiguous in the ring starting at `first_seq`.
        let first = self.position(self.first_seq);
        let offset = (pos + self.ring_capacity - first) % self.ring_capacity;
        &self.entries[offset as usize]
    }

    /// The result of `id` from `signer` (0: unsigned), if remembered.
    pub fn get(&self, id: &CommandId, signer: u64) -> Option<CommandResult> {
        self.index_of(id, signer).map(|e| e.result)
    }

    /// The entry for `id` from `signer`: each signer's ids are its own, so the same
    /// id from two signers is two entries (probed past like any other collision).
    fn index_of(&self, id: &CommandId, signer: u64) -> Option<&Entry> {
        if self.slots.is_empty() {
            return None;
        }
        let h = hash(id);
        let pos_mask = (1u64 << self.pos_bits) - 1;
        let mask = self.slots.len() - 1;
        let mut i = self.home(h);
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if (s & !pos_mask) == (h & !pos_mask) {
                let e = self.entry_at_position((s & pos_mask) - 1);
                if e.id == *id && e.signer == signer {
                    return Some(e);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Hints the CPU to fetch what recording `id` will touch: its index slot, and the
    /// slot of the entry that `ahead` more records from now will evict. Only the cache
    /// changes; the result of every call is the same with or without it.
    pub fn prefetch(&self, id: &CommandId, ahead: usize) {
        if self.slots.is_empty() {
            return;
        }
        prefetch_read(&self.slots[self.home(hash(id))]);
        let room = (self.ring_capacity as usize).saturating_sub(self.entries.len());
        if ahead >= room {
            if let Some(old) = self.entries.get(ahead - room) {
                prefetch_read(&self.slots[self.home(hash(&old.id))]);
            }
        }
    }

    fn insert_slot(&mut self, h: u64, pos: u64) {
        let pos_mask = (1u64 << self.pos_bits) - 1;
        let mask = self.slots.len() - 1;
        let mut i = self.home(h);
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = (h & !pos_mask) | (pos + 1);
    }

    fn remove_slot(&mut self, h: u64, pos: u64) {
        let pos_mask = (1u64 << self.pos_bits) - 1;
        let mask = self.slots.len() - 1;
        let want = (h & !pos_mask) | (pos + 1);
        let mut i = self.home(h);
        while self.slots[i] != want {
            assert_ne!(self.slots[i], 0, "a live entry is indexed");
            i = (i + 1) & mask;
        }
        // Backward-shift deletion: pull later members of the run into the hole when
        // their home allows it, so no tombstones are left behind.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if s == 0 {
                break;
            }
            let home = self.home(s);
            // Move `s` into the hole unless its home lies cyclically in (hole, j].
            let in_range = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !in_range {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = 0;
    }

    fn grow(&mut self, capacity: usize) {
        let max_slots = (capacity.max(1) * 2).next_power_of_two();
        let want = (self.entries.len() * 2 + 2)
            .next_power_of_two()
            .clamp(1024, max_slots.max(1024));
        if want <= self.slots.len() {
            return;
        }
        self.slots = vec![0; want];
        for k in 0..self.entries.len() {
            let seq = self.first_seq + k as u64;
            let h = hash(&self.entries[k].id);
            let pos = self.position(seq);
            self.insert_slot(h, pos);
        }
    }

    /// Records the result of a command whose id is not in the window.
    pub fn record(
        &mut self,
        id: CommandId,
        signer: u64,
        time_ms: u64,
        result: CommandResult,
        capacity: usize,
        window_ms: u64,
    ) {
        if capacity == 0 {
            return;
        }
        if self.ring_capacity == 0 {
            self.ring_capacity = capacity as u64;
            self.pos_bits = 64 - (capacity as u64).leading_zeros();
            // Slots keep the hash above the position bits; the index needs pos_bits + 1
            // of them for its home slot.
            assert!(self.pos_bits <= 31, "dedupe capacity must be below 2^31");
        }
        assert_eq!(
            self.ring_capacity, capacity as u64,
            "the dedupe capacity is fixed for a core's life"
        );
        // Callers look an id up before they record it; a second copy would shadow.
        if self.index_of(&id, signer).is_some() {
            return;
        }
        while self.entries.len() as u64 >= self.ring_capacity {
            self.evict_oldest();
        }
        if self.slots.len() < (self.entries.len() + 1) * 2 {
            self.grow(capacity);
        }
        let seq = self.first_seq + self.entries.len() as u64;
        self.entries.push_back(Entry {
            time_ms,
            id,
            signer,
            result,
        });
        let pos = self.position(seq);
        self.insert_slot(hash(&id), pos);
        while let Some(front) = self.entries.front() {
            if front.time_ms.saturating_add(window_ms) >= time_ms {
                break;
            }
            self.evict_oldest();
        }
    }

    /// Evicts the oldest entry.
    fn evict_oldest(&mut self) {
        let e = self
            .entries
            .pop_front()
            .expect("evict from a non-empty window");
        let pos = self.position(self.first_seq);
        self.remove_slot(hash(&e.id), pos);
        self.first_seq += 1;
    }

    /// Entries oldest first, for the snapshot: (time, id, signer, result).
    pub fn entries(&self) -> impl Iterator<Item = (u64, CommandId, u64, CommandResult)> + '_ {
        self.entries
            .iter()
            .map(|e| (e.time_ms, e.id, e.signer, e.result))
    }
}

#[inline(always)]
fn prefetch_read<T>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults and changes no memory.
    unsafe {
        std::arch::x86_64::_mm_prefetch(
            at as *const T as *const i8,
            std::arch::x86_64::_MM_HINT_T0,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> CommandId {
        CommandId::from_u128(n.wrapping_mul(0x2545_F491_4F6C_DD1D_0000_0001))
    }

    const OK: CommandResult = CommandResult::Accepted { id: 7 };

    #[test]
    fn remembers_the_last_capacity_ids_and_forgets_older_ones() {
        let mut d = Dedupe::default();
        for n in 0..5_000 {
            d.record(id(n), 0, n as u64, OK, 3_000, u64::MAX);
        }
        assert!(d.get(&id(1_999), 0).is_none());
        for n in 2_000..5_000 {
            assert_eq!(d.get(&id(n), 0), Some(OK), "{n}");
        }
        assert_eq!(d.entries().count(), 3_000);
    }

    #[test]
    fn forgets_ids_older_than_the_window() {
        let mut d = Dedupe::default();
        d.record(id(1), 0, 1_000, OK, 10, 500);
        d.record(id(2), 0, 1_400, OK, 10, 500);
        assert_eq!(d.get(&id(1), 0), Some(OK));
        d.record(id(3), 0, 1_501, OK, 10, 500);
        assert_eq!(d.get(&id(1), 0), None);
        assert_eq!(d.get(&id(2), 0), Some(OK));
    }

    #[test]
    fn each_signer_has_its_own_ids_and_answers() {
        let mut d = Dedupe::default();
        d.record(id(1), 7, 0, OK, 10, u64::MAX);
        assert_eq!(d.get(&id(1), 8), None);
        // The same id from another signer is that signer's own: it is remembered
        // too (else every copy of it would run), and neither answer leaks.
        d.record(id(1), 8, 0, CommandResult::Accepted { id: 9 }, 10, u64::MAX);
        assert_eq!(d.get(&id(1), 7), Some(OK));
        assert_eq!(d.get(&id(1), 8), Some(CommandResult::Accepted { id: 9 }));
        assert_eq!(d.get(&id(1), 0), None);
        assert_eq!(d.entries().count(), 2);
    }

    #[test]
    fn the_index_stays_exact_under_heavy_churn() {
        // Small capacity: many collisions, wraps and backward shifts.
        let mut d = Dedupe::default();
        let mut model = std::collections::VecDeque::new();
        for n in 0..50_000u128 {
            let key = if n % 7 == 0 { n / 2 } else { n }; // some repeats
            if d.get(&id(key), 0).is_none() {
                let result = CommandResult::Accepted { id: key as u64 };
                d.record(id(key), 0, 0, result, 97, u64::MAX);
            }
            if !model.contains(&key) {
                model.push_back(key);
                if model.len() > 97 {
                    model.pop_front();
                }
            }
            if n % 101 == 0 {
                for k in n.saturating_sub(300)..=n {
                    assert_eq!(
                        d.get(&id(k), 0).is_some(),
                        model.contains(&k),
                        "key {k} at step {n}"
                    );
                }
            }
        }
    }
}
