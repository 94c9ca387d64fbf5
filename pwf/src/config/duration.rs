//! Durations written as `"250ms"`, `"1.5s"`, `"1m30s"`, and integers where a key or `unit` says what they count.

use std::fmt::{self, Write as _};
use std::time::Duration;

use super::Invalid;

/// Each unit a duration string can use, and its length.
const UNITS: &[(&[u8], Duration)] = &[
    (b"ns", Duration::from_nanos(1)),
    (b"us", Duration::from_micros(1)),
    ("µs".as_bytes(), Duration::from_micros(1)),
    (b"ms", Duration::from_millis(1)),
    (b"s", Duration::from_secs(1)),
    (b"m", Duration::from_secs(60)),
    (b"h", Duration::from_secs(3_600)),
];

/// What an integer counts where a duration is read: the unit a key says (`timeoutMs`), or
/// that `#[config(unit = "...")]` declares. Elsewhere an integer is not a duration.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntegerUnit {
    /// `ms`: milliseconds.
    Millis,
    /// `s`: seconds.
    Secs,
}

impl IntegerUnit {
    /// `count` of this unit: a `u64` of milliseconds or seconds always fits a [`Duration`].
    pub(crate) const fn times(self, count: u64) -> Duration {
        match self {
            IntegerUnit::Millis => Duration::from_millis(count),
            IntegerUnit::Secs => Duration::from_secs(count),
        }
    }

    /// The unit's name, as a duration string writes it.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            IntegerUnit::Millis => "ms",
            IntegerUnit::Secs => "s",
        }
    }
}

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
///
/// A `const fn`, so that a default written as a literal is read when the plugin is compiled.
/// That is why pwf reads durations itself: `humantime::parse_duration`, the crate that reads
/// this kind of text, is not `const` (and reads no fraction, such as `1.5s`).
pub(crate) const fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    // Read as bytes: every byte that ends a number is ASCII, and the units are compared
    // whole, so no slice splits a character.
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return Err(DurationError::Syntax);
    }
    // `None` once past `Duration::MAX`; reading goes on, so that a syntax error further on
    // is the one reported.
    let mut total = Some(Duration::ZERO);
    let mut at = 0;
    while at < bytes.len() {
        // `<whole>[.<fraction>]`: digits, then optionally a point and at least one digit.
        let whole_start = at;
        at = skip_digits(bytes, at);
        let whole = bytes.split_at(at).0.split_at(whole_start).1;
        let mut fraction: &[u8] = &[];
        if at < bytes.len() && bytes[at] == b'.' {
            let fraction_start = at + 1;
            at = skip_digits(bytes, fraction_start);
            fraction = bytes.split_at(at).0.split_at(fraction_start).1;
            if fraction.is_empty() {
                return Err(DurationError::Syntax);
            }
        }
        if whole.is_empty() && fraction.is_empty() {
            return Err(DurationError::Syntax);
        }
        // The unit: everything up to the next number.
        let unit_start = at;
        while at < bytes.len() && !bytes[at].is_ascii_digit() && bytes[at] != b'.' {
            at += 1;
        }
        let Some(unit) = find_unit(bytes.split_at(at).0.split_at(unit_start).1) else {
            return Err(DurationError::Syntax);
        };
        if let Some(sum) = total {
            total = match times(whole, fraction, unit) {
                Some(part) => sum.checked_add(part),
                None => None,
            };
        }
    }
    match total {
        Some(total) => Ok(total),
        None => Err(DurationError::TooLarge),
    }
}

/// Where the ASCII digits of `bytes` from `at` end.
const fn skip_digits(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && bytes[at].is_ascii_digit() {
        at += 1;
    }
    at
}

/// The length of the unit named `name`.
const fn find_unit(name: &[u8]) -> Option<Duration> {
    let mut i = 0;
    while i < UNITS.len() {
        let (known, length) = UNITS[i];
        if equal(known, name) {
            return Some(length);
        }
        i += 1;
    }
    None
}

/// Whether `a` and `b` are the same bytes (`==` on slices is not `const`).
const fn equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `<whole>.<fraction>` times `unit`, truncated to whole nanoseconds; `None` past
/// [`Duration::MAX`]. `whole` and `fraction` are ASCII digits.
const fn times(whole: &[u8], fraction: &[u8], unit: Duration) -> Option<Duration> {
    // The whole part by Horner's rule: each digit multiplies what was read by ten and adds
    // the digit's units. Exact, and a count of units beyond `u64` (`"20000000000000000000ms"`)
    // is fine while the duration fits.
    let mut sum = Duration::ZERO;
    let mut i = 0;
    while i < whole.len() {
        let digit = (whole[i] - b'0') as u32;
        let Some(tenfold) = sum.checked_mul(10) else {
            return None;
        };
        let Some(units) = unit.checked_mul(digit) else {
            return None;
        };
        let Some(next) = tenfold.checked_add(units) else {
            return None;
        };
        sum = next;
        i += 1;
    }
    sum.checked_add(Duration::from_nanos(fraction_nanos(fraction, unit)))
}

/// `0.<digits>` of `unit`, in whole nanoseconds (truncated), with integers only.
///
/// The digits are read from the last one: each step adds the digit's share of the unit and
/// divides by ten, rounding down. Rounding down at every step gives the same result as
/// rounding the exact sum down once (`⌊(⌊x⌋ + n) / 10⌋ = ⌊(x + n) / 10⌋` for an integer `n`),
/// and the carried value stays below `10 * unit`, far from `u64::MAX` for an hour.
const fn fraction_nanos(digits: &[u8], unit: Duration) -> u64 {
    // At most an hour: no overflow.
    let unit_nanos = unit.as_secs() * NANOS_PER_SEC + unit.subsec_nanos() as u64;
    let mut nanos = 0;
    let mut i = digits.len();
    while i > 0 {
        i -= 1;
        nanos = (nanos + (digits[i] - b'0') as u64 * unit_nanos) / 10;
    }
    nanos
}

/// The longest call timeout Envoy takes, in milliseconds: it reads them as a signed 32-bit
/// count, and refuses 2^31 and more.
const MAX_TIMEOUT_MILLIS: u32 = i32::MAX as u32;

/// `timeout` in whole milliseconds, if it is at most [`MAX_TIMEOUT_MILLIS`], the most Envoy
/// takes. What [`call_timeout`] checks, and what an outbound call sends.
///
/// In 64-bit arithmetic: `as_millis` and `checked_mul` both take a 128-bit multiplication on
/// wasm32.
pub(crate) fn timeout_millis(timeout: Duration) -> Option<u32> {
    let secs = timeout.as_secs();
    if secs > u64::from(u32::MAX) / 1000 + 1 {
        return None;
    }
    u32::try_from(secs * 1000 + u64::from(timeout.subsec_millis()))
        .ok()
        .filter(|&millis| millis <= MAX_TIMEOUT_MILLIS)
}

/// A validator for the timeout of outbound calls: Envoy reads 0 as "no
/// timeout", and reads the milliseconds as a signed 32-bit count, refusing
/// every call from 2^31 on, so a timeout must be at least 1 ms and at most
/// 2147483647 ms (about 24.8 days). Use it with
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
    // One message built in one place: the two differ only before the duration.
    let limit = match timeout_millis(*timeout) {
        Some(0) => "must be at least 1ms (0 means no timeout to Envoy)",
        Some(_) => return Ok(()),
        None => TIMEOUT_TOO_LONG,
    };
    Err(Invalid::new(format_args!(
        "{limit}, got {}",
        Shown(timeout)
    )))
}

/// The message of a timeout above Envoy's limit, before the duration.
const TIMEOUT_TOO_LONG: &str =
    "must be at most 2147483647ms (Envoy reads a signed 32-bit count of milliseconds)";

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
    /// 2^31 ms up to `u32::MAX` ms once passed, and Envoy refused every call.
    fn call_timeout_takes_1ms_to_i32_max_ms() {
        assert!(call_timeout(&Duration::from_millis(1)).is_ok());
        assert!(call_timeout(&Duration::from_millis(i32::MAX as u64)).is_ok());
        assert!(call_timeout(&Duration::from_micros(999)).is_err());
        assert!(call_timeout(&Duration::from_millis(1 << 31)).is_err());
        assert!(call_timeout(&Duration::from_millis(u64::from(u32::MAX))).is_err());
        assert!(call_timeout(&Duration::from_millis(u64::from(u32::MAX) + 1)).is_err());
        assert!(call_timeout(&Duration::MAX).is_err());
    }

    #[test]
    fn call_timeout_messages() {
        let message = |timeout| call_timeout(&timeout).unwrap_err().to_string();
        assert_eq!(
            message(Duration::ZERO),
            "must be at least 1ms (0 means no timeout to Envoy), got 0ns"
        );
        assert_eq!(
            message(Duration::from_millis(1 << 31)),
            "must be at most 2147483647ms (Envoy reads a signed 32-bit count of milliseconds), got 2147483.648s"
        );
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
    /// Digits of an hour's fraction past the nanosecond still add up to whole nanoseconds.
    fn parse_duration_truncates_the_exact_fraction_once() {
        // 0.99999999999999h is 3599999999999.964ns.
        assert_eq!(
            parse_duration("0.99999999999999h"),
            Ok(Duration::from_nanos(3_599_999_999_999))
        );
        // 1/3600 h is 1s; 0.000277777777777777h is 999999999.9999972ns.
        assert_eq!(
            parse_duration("0.000277777777777777h"),
            Ok(Duration::from_nanos(999_999_999))
        );
        assert_eq!(
            parse_duration("0.0002777777777777778h"),
            Ok(Duration::from_nanos(1_000_000_000))
        );
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
