//! Durations written as `"250ms"`, `"1.5s"`, `"1m30s"`, or as integer milliseconds.

use std::time::Duration;

/// Nanoseconds in one of each unit a duration string can use.
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Why a duration string was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DurationError {
    /// Not of the form `<number><unit>...`.
    Syntax,
    /// Longer than [`Duration::MAX`].
    TooLarge,
}

/// Parses a sequence of `<number><unit>` parts, such as `"250ms"`, `"1.5s"` or `"1h30m"`.
///
/// Numbers are decimal, with an optional fraction; units are `ns`, `us` (or `µs`), `ms`, `s`,
/// `m` and `h`. A fraction finer than a nanosecond is truncated.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let mut rest = text;
    let mut total: u128 = 0;
    if rest.is_empty() {
        return Err(DurationError::Syntax);
    }
    while !rest.is_empty() {
        let whole_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (whole, after) = rest.split_at(whole_len);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(after) => {
                let len = after
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after.len());
                if len == 0 {
                    return Err(DurationError::Syntax);
                }
                after.split_at(len)
            }
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(DurationError::Syntax);
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let nanos_per_unit = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, nanos)| *nanos)
            .ok_or(DurationError::Syntax)?;
        let part = whole_nanos(whole, nanos_per_unit)?
            .checked_add(fraction_nanos(fraction, nanos_per_unit))
            .ok_or(DurationError::TooLarge)?;
        total = total.checked_add(part).ok_or(DurationError::TooLarge)?;
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| DurationError::TooLarge)?;
    // The remainder is below 1e9, so it fits in a u32.
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| DurationError::TooLarge)?;
    Ok(Duration::new(secs, nanos))
}

/// `digits` units, in nanoseconds.
fn whole_nanos(digits: &str, nanos_per_unit: u128) -> Result<u128, DurationError> {
    let mut value: u128 = 0;
    for digit in digits.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(digit - b'0')))
            .ok_or(DurationError::TooLarge)?;
    }
    value
        .checked_mul(nanos_per_unit)
        .ok_or(DurationError::TooLarge)
}

/// `0.<digits>` units, in nanoseconds, truncated to whole nanoseconds.
fn fraction_nanos(digits: &str, nanos_per_unit: u128) -> u128 {
    let mut numerator: u128 = 0;
    let mut denominator: u128 = 1;
    // Past 20 digits, the fraction of an hour is already finer than a nanosecond.
    for digit in digits.bytes().take(20) {
        numerator = numerator * 10 + u128::from(digit - b'0');
        denominator *= 10;
    }
    numerator * nanos_per_unit / denominator
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_duration_reads_each_unit() {
        assert_eq!(parse_duration("10ns"), Ok(Duration::from_nanos(10)));
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("100µs"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn parse_duration_reads_fractions_and_sequences() {
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0.0000000001s"), Ok(Duration::from_nanos(0)));
    }

    #[test]
    fn parse_duration_rejects_malformed_text() {
        for text in [
            "", "5", "s", "5 s", "-5s", "5x", "1.s", "5S", "1e3ms", "5s ",
        ] {
            assert_eq!(parse_duration(text), Err(DurationError::Syntax), "{text:?}");
        }
    }

    #[test]
    fn parse_duration_rejects_overflow() {
        assert_eq!(
            parse_duration("99999999999999999999999999999999999999999h"),
            Err(DurationError::TooLarge)
        );
        assert_eq!(
            parse_duration("18446744073709551616s"),
            Err(DurationError::TooLarge)
        );
        assert_eq!(
            parse_duration("18446744073709551615s"),
            Ok(Duration::from_secs(u64::MAX))
        );
    }
}
