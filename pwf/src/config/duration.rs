//! Durations written as `"250ms"`, `"1.5s"`, `"1m30s"`, or as integer milliseconds.

use std::fmt::{self, Write as _};
use std::time::Duration;

use super::Invalid;

/// Each unit a duration string can use: its name, and its length as `c * 10^-j` seconds,
/// given as `(c, j)`.
const UNITS: &[(&str, u64, usize)] = &[
    ("ns", 1, 9),
    ("us", 1, 6),
    ("µs", 1, 6),
    ("ms", 1, 3),
    ("s", 1, 0),
    ("m", 60, 0),
    ("h", 3_600, 0),
];

/// Nanoseconds in a second.
const NANOS_PER_SEC: u64 = 1_000_000_000;

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
    // Read as bytes: every byte that ends a number is ASCII, and the units are compared
    // whole, so no slice splits a character (and nothing links str's slicing panic).
    let mut rest = text.as_bytes();
    // Seconds and nanoseconds, below `Duration::MAX`.
    let mut total = Some((0, 0));
    if rest.is_empty() {
        return Err(DurationError::Syntax);
    }
    while !rest.is_empty() {
        let (whole, after) = split_digits(rest);
        let (fraction, after) = match after.split_first() {
            Some((b'.', after)) => match split_digits(after) {
                ([], _) => return Err(DurationError::Syntax),
                split => split,
            },
            _ => (&[][..], after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(DurationError::Syntax);
        }
        let unit_len = after
            .iter()
            .position(|b| b.is_ascii_digit() || *b == b'.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let (_, factor, shift) = UNITS
            .iter()
            .find(|(name, _, _)| name.as_bytes() == unit)
            .ok_or(DurationError::Syntax)?;
        // Past `Duration::MAX`, reading goes on: a syntax error further on wins.
        total = total.and_then(|total| add(total, whole, fraction, *factor, *shift));
        rest = after;
    }
    let (secs, nanos) = total.ok_or(DurationError::TooLarge)?;
    Ok(Duration::new(secs, (nanos % NANOS_PER_SEC) as u32))
}

/// The ASCII digits `bytes` starts with, and the rest.
fn split_digits(bytes: &[u8]) -> (&[u8], &[u8]) {
    let len = bytes
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(bytes.len());
    bytes.split_at(len)
}

/// `total` (seconds and nanoseconds) plus `<whole>.<fraction>` units of `factor * 10^-shift`
/// seconds, truncated to whole nanoseconds; `None` past [`Duration::MAX`].
fn add(
    total: (u64, u64),
    whole: &[u8],
    fraction: &[u8],
    factor: u64,
    shift: usize,
) -> Option<(u64, u64)> {
    // The number's digits with its point moved `shift` places left (`shift` zeros before
    // them): the digits before the point count seconds, the next 9 nanoseconds, and in
    // minutes and hours the 15 after those can still add whole nanoseconds (past them, what
    // is left is finer than a nanosecond).
    let digits = Digits {
        whole,
        fraction,
        shift,
    };
    let point = whole.len();
    let secs = digits.read(0, point)?;
    let nanos = digits.read(point, point + 9)?;
    let finer = digits.read(point + 9, point + 24)?;
    let nanos = total.1 + factor * nanos + factor * finer / 1_000_000_000_000_000;
    if secs > u64::MAX / factor.max(1) {
        return None;
    }
    let secs = (secs * factor)
        .checked_add(total.0)?
        .checked_add(nanos / NANOS_PER_SEC)?;
    Some((secs, nanos % NANOS_PER_SEC))
}

/// The digits of a decimal number `<whole>.<fraction>` after `shift` zeros, and zeros after
/// them.
struct Digits<'a> {
    whole: &'a [u8],
    fraction: &'a [u8],
    shift: usize,
}

impl Digits<'_> {
    /// The number written by digits `from..to`; `None` past `u64::MAX`.
    #[inline(never)]
    fn read(&self, from: usize, to: usize) -> Option<u64> {
        let mut n: u64 = 0;
        for k in from..to {
            let byte = match k.checked_sub(self.shift) {
                Some(i) if i < self.whole.len() => self.whole.get(i),
                Some(i) => self.fraction.get(i - self.whole.len()),
                None => None,
            };
            if n > u64::MAX / 10 {
                return None;
            }
            n = (n * 10).checked_add(byte.map_or(0, |byte| u64::from(byte - b'0')))?;
        }
        Some(n)
    }
}

/// A validator for the timeout of outbound calls: Envoy reads 0 as "no
/// timeout", and the ABI carries whole milliseconds as a `u32`, so a timeout
/// must be at least 1 ms and at most `u32::MAX` ms. Use it with
/// `validate`, and a bad timeout is refused when the plugin loads instead
/// of failing each call.
///
/// ```
/// use std::time::Duration;
/// use pwf::PluginConfig;
///
/// #[derive(PluginConfig, Debug)]
/// struct Config {
///     #[config(default = "250ms", validate = pwf::config::call_timeout)]
///     timeout: Duration,
/// }
///
/// assert_eq!(Config::parse(b"{}").unwrap().timeout, Duration::from_millis(250));
/// let error = Config::parse(br#"{"timeout": "0s"}"#).unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     "timeout: must be at least 1ms (0 means no timeout to Envoy), got 0ns"
/// );
/// ```
pub fn call_timeout(timeout: &Duration) -> Result<(), Invalid> {
    match crate::call::call_millis(*timeout) {
        Some(0) => Err(Invalid::new(format_args!(
            "must be at least 1ms (0 means no timeout to Envoy), got {}",
            Shown(timeout)
        ))),
        Some(_) => Ok(()),
        None => Err(Invalid::new(format_args!(
            "must be at most {}ms, got {}",
            u32::MAX,
            Shown(timeout)
        ))),
    }
}

/// A duration as `Debug` shows it (`250ms`, `1.5s`, `500µs`), written with
/// integer formatting only.
struct Shown<'a>(&'a Duration);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, nanos) = (self.0.as_secs(), self.0.subsec_nanos());
        // The whole units, the rest in nanoseconds, and the nanoseconds of its first digit.
        let (whole, mut rest, mut scale, unit) = if secs > 0 {
            (secs, nanos, 100_000_000, "s")
        } else if nanos >= 1_000_000 {
            (
                u64::from(nanos / 1_000_000),
                nanos % 1_000_000,
                100_000,
                "ms",
            )
        } else if nanos >= 1_000 {
            (u64::from(nanos / 1_000), nanos % 1_000, 100, "µs")
        } else {
            (u64::from(nanos), 0, 1, "ns")
        };
        fmt::Display::fmt(&whole, f)?;
        if rest > 0 {
            f.write_str(".")?;
        }
        // The fraction's digits, without trailing zeros.
        while rest > 0 && scale > 0 {
            f.write_char(char::from(b'0' + (rest / scale) as u8))?;
            rest %= scale;
            scale /= 10;
        }
        f.write_str(unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_durations_read_as_debug_does() {
        for duration in [
            Duration::ZERO,
            Duration::from_nanos(7),
            Duration::from_micros(500),
            Duration::from_nanos(1_500),
            Duration::from_millis(250),
            Duration::from_nanos(1_000_001),
            Duration::from_secs(5),
            Duration::from_millis(4_294_967_296),
            Duration::new(3, 50),
            Duration::MAX,
        ] {
            assert_eq!(Shown(&duration).to_string(), format!("{duration:?}"));
        }
    }

    #[test]
    fn call_timeout_takes_1ms_to_u32_max_ms() {
        assert!(call_timeout(&Duration::from_millis(1)).is_ok());
        assert!(call_timeout(&Duration::from_millis(u64::from(u32::MAX))).is_ok());
        assert!(call_timeout(&Duration::from_micros(999)).is_err());
        assert!(call_timeout(&Duration::from_millis(u64::from(u32::MAX) + 1)).is_err());
        assert!(call_timeout(&Duration::MAX).is_err());
    }

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
        assert_eq!(parse_duration("0.5h"), Ok(Duration::from_secs(1800)));
        assert_eq!(
            parse_duration("1.0000000015m"),
            Ok(Duration::from_nanos(60_000_000_090))
        );
        assert_eq!(
            parse_duration("0.999999999999s"),
            Ok(Duration::from_nanos(999_999_999))
        );
        assert_eq!(parse_duration("1.5ns"), Ok(Duration::from_nanos(1)));
        assert_eq!(parse_duration("2.5us"), Ok(Duration::from_nanos(2_500)));
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
        // A count of units beyond u64 is fine while the duration fits.
        assert_eq!(
            parse_duration("18446744073709551616000ms"),
            Err(DurationError::TooLarge)
        );
        assert_eq!(
            parse_duration("18446744073709551615000ms"),
            Ok(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse_duration("18446744073709551615s1ns"),
            Ok(Duration::new(u64::MAX, 1))
        );
    }
}
