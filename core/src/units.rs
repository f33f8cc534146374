//! Exact conversion between wire decimals and the integers the core computes with:
//! price in ticks, quantity in lots, amounts in an asset's minor units. Nothing here
//! rounds; a value that is not an exact multiple of its unit is an error.

use tape_schemas::Dec;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitError {
    /// Zero or negative.
    NotPositive,
    /// Not a whole number of units (too many decimals, off tick, off lot).
    NotMultiple,
    /// Too large for the integer range the core uses.
    OutOfRange,
}

const POW10: [i128; 29] = {
    let mut t = [1i128; 29];
    let mut i = 1;
    while i < 29 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// `10^n` for `n <= 28`.
pub fn pow10(n: u32) -> i128 {
    POW10[n as usize]
}

/// `value / unit` when it is a positive whole number that fits a `u64`.
pub fn to_units(value: Dec, unit: Dec) -> Result<u64, UnitError> {
    let quotient = to_units_allow_zero(value, unit)?;
    if quotient == 0 {
        return Err(UnitError::NotPositive);
    }
    Ok(quotient)
}

/// Like [`to_units`], but zero is allowed (minimum notional, limits).
pub fn to_units_allow_zero(value: Dec, unit: Dec) -> Result<u64, UnitError> {
    let (mv, sv) = (value.mantissa(), value.scale());
    let (mu, su) = (unit.mantissa(), unit.scale());
    if mv < 0 {
        return Err(UnitError::NotPositive);
    }
    // The common case, a value written at the unit's own scale, in 64-bit arithmetic.
    if sv == su {
        if let (Ok(a), Ok(b)) = (u64::try_from(mv), u64::try_from(mu)) {
            return if a % b == 0 {
                Ok(a / b)
            } else {
                Err(UnitError::NotMultiple)
            };
        }
    }
    assert!(mu > 0, "units are positive");
    let s = sv.max(su);
    let a = mv.checked_mul(pow10(s - sv)).ok_or(UnitError::OutOfRange)?;
    let b = mu.checked_mul(pow10(s - su)).ok_or(UnitError::OutOfRange)?;
    if a % b != 0 {
        return Err(UnitError::NotMultiple);
    }
    u64::try_from(a / b).map_err(|_| UnitError::OutOfRange)
}

/// An asset amount in minor units (`scale` decimal places).
pub fn to_minor(value: Dec, scale: u8) -> Result<u64, UnitError> {
    to_units(value, minor_unit(scale))
}

pub fn minor_unit(scale: u8) -> Dec {
    Dec::from_minor(1, u32::from(scale))
}

/// `units × unit` as a decimal; `unit` is (mantissa, scale).
pub fn from_units(units: u64, unit_mantissa: i128, unit_scale: u32) -> Dec {
    Dec::from_minor(i128::from(units) * unit_mantissa, unit_scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        s.parse().unwrap()
    }

    #[test]
    fn whole_multiples_convert_exactly() {
        assert_eq!(to_units(d("101.25"), d("0.25")), Ok(405));
        assert_eq!(to_units(d("3"), d("0.001")), Ok(3000));
        assert_eq!(to_minor(d("1.5"), 8), Ok(150_000_000));
    }

    #[test]
    fn off_unit_zero_negative_and_huge_values_are_errors() {
        assert_eq!(to_units(d("101.3"), d("0.25")), Err(UnitError::NotMultiple));
        assert_eq!(to_minor(d("0.123"), 2), Err(UnitError::NotMultiple));
        assert_eq!(to_units(d("0"), d("1")), Err(UnitError::NotPositive));
        assert_eq!(to_units(d("-1"), d("1")), Err(UnitError::NotPositive));
        assert_eq!(
            to_minor(d("79228162514264337593543950335"), 18),
            Err(UnitError::OutOfRange)
        );
    }
}
