//! The key layout of the one sled tree that holds every view. One tree, so that a
//! batch of view changes and the checkpoint land in one atomic `apply_batch`.
//! Numbers are big-endian so that keys sort by them.

use tape_schemas::*;

pub const CHECKPOINT: &[u8] = b"\x00checkpoint";
pub const ASSET: u8 = b'a';
pub const MARKET: u8 = b'm';
pub const WALLET: u8 = b'w';
pub const ENTRY: u8 = b'l';
pub const EQUITY: u8 = b'e';
pub const ORDER: u8 = b'o';
pub const ACCOUNT_ORDER: u8 = b'O';
pub const OPEN_ORDER: u8 = b'p';
pub const TRADE: u8 = b't';
pub const ACCOUNT_TRADE: u8 = b'T';
pub const MARKET_TRADE: u8 = b'M';
pub const CANDLE: u8 = b'c';
pub const DEPTH: u8 = b'd';
pub const SLICED: u8 = b's';
pub const BRACKET: u8 = b'b';
pub const API_KEY: u8 = b'k';
pub const WITHDRAWAL: u8 = b'x';
pub const OUTCOME: u8 = b'C';

/// A key: a tag byte, then fixed-width parts.
pub struct Key(Vec<u8>);

impl Key {
    pub fn new(tag: u8) -> Key {
        let mut v = Vec::with_capacity(40);
        v.push(tag);
        Key(v)
    }
    pub fn u64(mut self, n: u64) -> Key {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }
    pub fn u8(mut self, n: u8) -> Key {
        self.0.push(n);
        self
    }
    /// A short name padded to a fixed width so that later parts line up.
    pub fn name<const N: usize>(mut self, s: &ShortStr<N>) -> Key {
        let b = s.as_str().as_bytes();
        self.0.extend_from_slice(b);
        self.0.extend(std::iter::repeat_n(0u8, N - b.len()));
        self
    }
    pub fn bytes(mut self, b: &[u8]) -> Key {
        self.0.extend_from_slice(b);
        self
    }
    pub fn build(self) -> Vec<u8> {
        self.0
    }
}

/// The last 8 bytes of a key as a number (the id in index keys).
pub fn tail_u64(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[key.len() - 8..]);
    u64::from_be_bytes(b)
}

pub fn side_byte(side: Side) -> u8 {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}
