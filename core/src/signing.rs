//! Replay protection for signed commands: per API key, its live signing streams, each
//! the highest `seq` seen plus a bitmap of the `SEQ_WINDOW` numbers below it (RFC
//! 4303's anti-replay window). What it keeps grows with keys and streams, never with
//! the command rate; it must never accept a `(key, stream, seq)` twice while a record
//! carrying it could still be valid.
//!
//! A stream is forgotten once the engine's clock passes the latest expiry it
//! accepted: every record it signed is then refused as expired before it gets here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tape_schemas::{RejectReason, SEQ_WINDOW};

const WORDS: usize = (SEQ_WINDOW / 64) as usize;
const _: () = assert!(SEQ_WINDOW.is_multiple_of(64) && WORDS > 0);

/// One signing stream of one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stream {
    pub stream: u64,
    /// The highest `seq` accepted.
    pub top: u64,
    /// Bit `i` (word `i / 64`, bit `i % 64`) set: `top - i` was accepted.
    pub seen: [u64; WORDS],
    /// The latest `expires_ms` accepted: the stream's records are all dead after it.
    pub expires_ms: u64,
}

impl Stream {
    fn new(stream: u64, seq: u64, expires_ms: u64) -> Stream {
        let mut seen = [0; WORDS];
        seen[0] = 1;
        Stream {
            stream,
            top: seq,
            seen,
            expires_ms,
        }
    }

    fn bit(&self, i: u64) -> bool {
        self.seen[(i / 64) as usize] >> (i % 64) & 1 == 1
    }

    fn set(&mut self, i: u64) {
        self.seen[(i / 64) as usize] |= 1 << (i % 64);
    }

    /// Moves the top up by `d`: bit `i` becomes bit `i + d`.
    fn shift(&mut self, d: u64) {
        if d >= SEQ_WINDOW {
            self.seen = [0; WORDS];
            return;
        }
        let (words, bits) = ((d / 64) as usize, (d % 64) as u32);
        for w in (0..WORDS).rev() {
            let lo = w.checked_sub(words).map_or(0, |s| self.seen[s]);
            let below = w.checked_sub(words + 1).map_or(0, |s| self.seen[s]);
            self.seen[w] = if bits == 0 {
                lo
            } else {
                (lo << bits) | (below >> (64 - bits))
            };
        }
    }

    /// Accepts `seq` once: `Err` if it was accepted before or is below the window.
    fn admit(&mut self, seq: u64, expires_ms: u64) -> Result<(), RejectReason> {
        if seq > self.top {
            self.shift(seq - self.top);
            self.top = seq;
            self.set(0);
        } else {
            let i = self.top - seq;
            if i >= SEQ_WINDOW {
                return Err(RejectReason::SeqTooOld);
            }
            if self.bit(i) {
                return Err(RejectReason::ReplayedSeq);
            }
            self.set(i);
        }
        self.expires_ms = self.expires_ms.max(expires_ms);
        Ok(())
    }
}

/// Every key's live streams, sorted by stream within a key.
#[derive(Clone, Debug, Default)]
pub struct Signing {
    keys: BTreeMap<u64, Vec<Stream>>,
}

impl Signing {
    /// Accepts `(key, stream, seq)` of a command valid until `expires_ms`, at engine
    /// time `now_ms`, or says why not; a refusal changes nothing. A new stream takes a
    /// place among the key's `streams_max`, after those that have died are dropped.
    pub fn admit(
        &mut self,
        key: u64,
        stream: u64,
        seq: u64,
        expires_ms: u64,
        now_ms: u64,
        streams_max: usize,
    ) -> Result<(), RejectReason> {
        let streams = self.keys.entry(key).or_default();
        match streams.binary_search_by_key(&stream, |s| s.stream) {
            Ok(i) => streams[i].admit(seq, expires_ms),
            Err(_) => {
                streams.retain(|s| s.expires_ms >= now_ms);
                if streams.len() >= streams_max {
                    if streams.is_empty() {
                        self.keys.remove(&key);
                    }
                    return Err(RejectReason::TooManySigningStreams);
                }
                let at = streams.partition_point(|s| s.stream < stream);
                streams.insert(at, Stream::new(stream, seq, expires_ms));
                Ok(())
            }
        }
    }

    /// Drops the streams whose every record has expired by `now_ms`.
    pub fn sweep(&mut self, now_ms: u64) {
        self.keys.retain(|_, streams| {
            streams.retain(|s| s.expires_ms >= now_ms);
            !streams.is_empty()
        });
    }

    /// A revoked key's streams go with it.
    pub fn forget_key(&mut self, key: u64) {
        self.keys.remove(&key);
    }

    /// Live streams of all keys, by key then stream (the snapshot's order).
    pub fn entries(&self) -> impl Iterator<Item = (u64, Stream)> + '_ {
        self.keys
            .iter()
            .flat_map(|(k, streams)| streams.iter().map(move |s| (*k, *s)))
    }

    /// Rebuilds from `entries()`; `None` if they are out of order or repeat.
    pub fn from_entries(entries: Vec<(u64, Stream)>) -> Option<Signing> {
        let mut keys: BTreeMap<u64, Vec<Stream>> = BTreeMap::new();
        for (k, s) in entries {
            let streams = keys.entry(k).or_default();
            if streams.last().is_some_and(|l| l.stream >= s.stream) {
                return None;
            }
            streams.push(s);
        }
        Some(Signing { keys })
    }

    /// Live streams in all.
    pub fn streams(&self) -> usize {
        self.keys.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_000;

    fn admit(s: &mut Signing, stream: u64, seq: u64) -> Result<(), RejectReason> {
        s.admit(1, stream, seq, T + 10, T, 4)
    }

    #[test]
    fn each_seq_is_accepted_once_in_any_order_within_the_window() {
        let mut s = Signing::default();
        let order = [5u64, 1, 3, 2, 4, 9, 7, 6, 8, 300, 100, 299, 45];
        for seq in order {
            assert_eq!(admit(&mut s, 7, seq), Ok(()), "first {seq}");
        }
        for seq in order {
            let again = admit(&mut s, 7, seq);
            assert!(
                again == Err(RejectReason::ReplayedSeq) || again == Err(RejectReason::SeqTooOld),
                "{seq}: {again:?}"
            );
        }
        // Numbers never used inside the window are still fresh.
        assert_eq!(admit(&mut s, 7, 298), Ok(()));
        // 300 - 256 = 44 is the edge: 45 is inside (and used), 44 is outside.
        assert_eq!(admit(&mut s, 7, 44), Err(RejectReason::SeqTooOld));
    }

    #[test]
    fn the_bitmap_matches_a_set_model_under_random_shifts() {
        let mut s = Signing::default();
        let mut model = std::collections::BTreeSet::new();
        let mut top = 0u64;
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let seq = (top + 70).saturating_sub(x % 400).max(1);
            let want = if seq + SEQ_WINDOW <= top {
                Err(RejectReason::SeqTooOld)
            } else if model.contains(&seq) {
                Err(RejectReason::ReplayedSeq)
            } else {
                Ok(())
            };
            let got = admit(&mut s, 3, seq);
            assert_eq!(got, want, "seq {seq} top {top}");
            if got.is_ok() {
                model.insert(seq);
                top = top.max(seq);
            }
        }
    }

    #[test]
    fn a_key_keeps_at_most_its_streams_until_they_expire() {
        let mut s = Signing::default();
        for stream in 0..4 {
            assert_eq!(admit(&mut s, stream, 1), Ok(()));
        }
        assert_eq!(
            admit(&mut s, 99, 1),
            Err(RejectReason::TooManySigningStreams)
        );
        // After every record of the four has expired, their places are free.
        assert_eq!(s.admit(1, 99, 1, T + 100, T + 11, 4), Ok(()));
        assert_eq!(s.streams(), 1);
        s.sweep(T + 101);
        assert_eq!(s.streams(), 0);
    }

    #[test]
    fn entries_round_trip_in_canonical_order() {
        let mut s = Signing::default();
        for (key, stream) in [(2, 9), (1, 5), (2, 3), (1, 1)] {
            s.admit(key, stream, 10, T + 10, T, 4).unwrap();
        }
        let entries: Vec<_> = s.entries().collect();
        let keys: Vec<_> = entries.iter().map(|(k, st)| (*k, st.stream)).collect();
        assert_eq!(keys, vec![(1, 1), (1, 5), (2, 3), (2, 9)]);
        let back = Signing::from_entries(entries.clone()).unwrap();
        assert_eq!(back.entries().collect::<Vec<_>>(), entries);
        let mut repeated = entries.clone();
        repeated.push(entries[3]);
        assert!(Signing::from_entries(repeated).is_none());
    }
}
