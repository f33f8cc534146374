//! Identifiers. Numeric ids (`AccountId`, `OrderId`, …) are assigned by the engine's
//! sequence, never at random; names (`Symbol`, `AssetCode`, client ids, references)
//! are short inline ASCII strings so that carrying them never allocates.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

numeric_id!(
    /// An account, as the custody/admin side names it.
    AccountId
);
numeric_id!(
    /// An order (or a sliced/bracket parent), from the engine's order sequence.
    OrderId
);
numeric_id!(
    /// A trade, from the engine's trade sequence.
    TradeId
);
numeric_id!(
    /// A withdrawal request, from the engine's withdrawal sequence.
    WithdrawalId
);
numeric_id!(
    /// An API key, from the engine's key sequence.
    ApiKeyId
);

/// The client's idempotency key for one command. A command whose id its signer used
/// within the engine's answer window is answered with the original outcome, not
/// re-executed (copies of signed records are stopped by their stream and `seq`).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Debug,
    Default,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct CommandId(pub uuid::Uuid);

impl CommandId {
    pub const fn from_u128(v: u128) -> Self {
        CommandId(uuid::Uuid::from_u128(v))
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a short string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShortStrError {
    #[error("must not be empty")]
    Empty,
    #[error("is {len} bytes long; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error("may hold only printable ASCII without spaces")]
    BadChar,
}

/// A printable-ASCII string of 1 to `N` bytes stored inline. It serializes as a plain
/// string in every codec.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShortStr<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> ShortStr<N> {
    pub fn new(s: &str) -> Result<Self, ShortStrError> {
        const { assert!(N <= u8::MAX as usize) };
        if s.is_empty() {
            return Err(ShortStrError::Empty);
        }
        if s.len() > N {
            return Err(ShortStrError::TooLong {
                len: s.len(),
                max: N,
            });
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ShortStrError::BadChar);
        }
        let mut bytes = [0u8; N];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Ok(ShortStr {
            len: s.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `new`).
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("ShortStr holds ASCII")
    }
}

impl<const N: usize> FromStr for ShortStr<N> {
    type Err = ShortStrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<const N: usize> fmt::Display for ShortStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> fmt::Debug for ShortStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl<const N: usize> Serialize for ShortStr<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de, const N: usize> Deserialize<'de> for ShortStr<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const N: usize>;
        impl<const N: usize> serde::de::Visitor<'_> for V<N> {
            type Value = ShortStr<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a printable ASCII string of 1 to {N} bytes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                ShortStr::new(v).map_err(|e| E::custom(format_args!("{v:?} {e}")))
            }
        }
        d.deserialize_str(V::<N>)
    }
}

impl<const N: usize> schemars::JsonSchema for ShortStr<N> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("ShortStr{N}").into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "minLength": 1,
            "maxLength": N,
            "pattern": "^[!-~]+$",
            "description": format!("1 to {N} printable ASCII characters, no spaces"),
        })
    }
}

/// A market's name, such as `BTC-USDT`.
pub type Symbol = ShortStr<16>;
/// An asset's code, such as `BTC`.
pub type AssetCode = ShortStr<12>;
/// The client's own order id: any printable ASCII up to 36 bytes (a UUID fits).
pub type ClientOrderId = ShortStr<36>;
/// An external reference (a custody transaction id, a chain hash).
pub type ExternalRef = ShortStr<64>;
