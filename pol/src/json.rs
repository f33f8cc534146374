//! The JSON forms: hashes and salts as 64 lowercase hex digits, sums as decimal
//! strings (a JavaScript number cannot hold a `u128`).

pub mod hex32 {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&text, &mut out)
            .map_err(|e| D::Error::custom(format!("a hash is 64 hex digits: {e}")))?;
        Ok(out)
    }
}

pub mod u128s {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u128], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| x.to_string()))
    }

    /// Only digits: a sign, a fraction or anything past 2^128 - 1 is refused.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u128>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .iter()
            .map(
                |t| match t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() {
                    true => t
                        .parse::<u128>()
                        .map_err(|_| D::Error::custom(format!("sum {t} does not fit in 128 bits"))),
                    false => Err(D::Error::custom(format!(
                        "sum {t:?} is not an unsigned integer"
                    ))),
                },
            )
            .collect()
    }
}
