//! Money at the edges: `Dec` is a `rust_decimal::Decimal` that is a string in JSON
//! (`"12.50"`, never a float) and `(mantissa, scale)` in bincode. Inside the core,
//! amounts are integers in minor units; `Dec` is only how they travel.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An exact decimal number as it travels on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Dec(pub Decimal);

impl Dec {
    pub const ZERO: Dec = Dec(Decimal::ZERO);

    /// `minor` units at `scale` decimal places: `Dec::from_minor(1250, 2)` is 12.50.
    pub fn from_minor(minor: i128, scale: u32) -> Dec {
        Dec(Decimal::from_i128_with_scale(minor, scale))
    }

    pub fn mantissa(&self) -> i128 {
        self.0.mantissa()
    }

    pub fn scale(&self) -> u32 {
        self.0.scale()
    }

    pub fn is_sign_negative(&self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }
}

impl FromStr for Dec {
    type Err = rust_decimal::Error;
    /// Exact parsing: a string with more digits than a decimal can hold is an error,
    /// never rounded.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decimal::from_str_exact(s).map(Dec)
    }
}

impl From<Decimal> for Dec {
    fn from(d: Decimal) -> Self {
        Dec(d)
    }
}

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl schemars::JsonSchema for Dec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Decimal".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^-?[0-9]+(\\.[0-9]+)?$",
            "description": "An exact decimal as a string, e.g. \"30000.25\"; numbers are refused",
        })
    }
}

impl Serialize for Dec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&self.0)
        } else {
            (self.0.mantissa(), self.0.scale() as u8).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Dec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Dec;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a decimal number as a string, such as \"12.50\"")
                }
                fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dec, E> {
                    Dec::from_str(v)
                        .map_err(|e| E::custom(format_args!("{v:?} is not an exact decimal: {e}")))
                }
                fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dec, E> {
                    Ok(Dec(Decimal::from(v)))
                }
                fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dec, E> {
                    Ok(Dec(Decimal::from(v)))
                }
                fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dec, E> {
                    Err(E::custom(format_args!(
                        "{v} is a JSON float; write decimals as strings, such as \"{v}\""
                    )))
                }
            }
            d.deserialize_any(V)
        } else {
            let (mantissa, scale) = <(i128, u8)>::deserialize(d)?;
            Decimal::try_from_i128_with_scale(mantissa, u32::from(scale))
                .map(Dec)
                .map_err(|e| serde::de::Error::custom(format_args!("decimal out of range: {e}")))
        }
    }
}
