//! Durations written as `"250ms"`, `"1.5s"`, `"1m30s"`, or as integer milliseconds.

use std::fmt::{self, Write as _};
use std::time::Duration;

use super::Invalid;

/// Each unit a duration string can use: its name, and its length as `c * 10^-j` seconds,
/// given as `(c, j)`.
const UNITS: &[(&[u8], u64, usize)] = &[
    (b"ns", 1, 9),
    (b"us", 1, 6),
    ("µs".as_bytes(), 1, 6),
    (b"ms", 1, 3),
    (b"s", 1, 0),
    (b"m", 60, 0),
    (b"h", 3_600, 0),
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
///
/// A `const fn`, so that a default written as a literal is read when the plugin is compiled.
pub(crate) const fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    // Read as bytes: every byte that ends a number is ASCII, and the units are compared
    // whole, so no slice splits a character.
    let bytes = text.as_bytes();
    // Seconds and nanoseconds, below `Duration::MAX`.
    let mut total = Some((0, 0));
    if bytes.is_empty() {
        return Err(DurationError::Syntax);
    }
    let mut at = 0;
    while at < bytes.len() {
        let whole = at;
        at = skip_digits(bytes, at);
        let point = at;
        if at < bytes.len() && bytes[at] == b'.' {
            at = skip_digits(bytes, at + 1);
            if at == point + 1 {
                return Err(DurationError::Syntax);
            }
        }
        if at == whole {
            return Err(DurationError::Syntax);
        }
        let number = Digits {
            bytes,
            whole,
            point,
            end: at,
            shift: 0,
        };
        let unit = at;
        while at < bytes.len() && !bytes[at].is_ascii_digit() && bytes[at] != b'.' {
            at += 1;
        }
        let Some((factor, shift)) = find_unit(bytes, unit, at) else {
            return Err(DurationError::Syntax);
        };
        // Past `Duration::MAX`, reading goes on: a syntax error further on wins.
        if let Some(sum) = total {
            total = add(sum, Digits { shift, ..number }, factor);
        }
    }
    match total {
        Some((secs, nanos)) => Ok(Duration::new(secs, (nanos % NANOS_PER_SEC) as u32)),
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

/// The factor and shift of the unit written by `bytes[start..end]`.
const fn find_unit(bytes: &[u8], start: usize, end: usize) -> Option<(u64, usize)> {
    let mut i = 0;
    while i < UNITS.len() {
        let (name, factor, shift) = UNITS[i];
        if name.len() == end - start {
            let mut j = 0;
            while j < name.len() && name[j] == bytes[start + j] {
                j += 1;
            }
            if j == name.len() {
                return Some((factor, shift));
            }
        }
        i += 1;
    }
    None
}

/// `total` (seconds and nanoseconds) plus `number` units of `factor * 10^-shift` seconds,
/// truncated to whole nanoseconds; `None` past [`Duration::MAX`].
const fn add(total: (u64, u64), number: Digits<'_>, factor: u64) -> Option<(u64, u64)> {
    // The number's digits with its point moved `shift` places left (`shift` zeros before
    // them): the digits before the point count seconds, the next 9 nanoseconds, and in
    // minutes and hours the 15 after those can still add whole nanoseconds (past them, what
    // is left is finer than a nanosecond).
    let point = number.point - number.whole;
    let Some(secs) = number.read(0, point) else {
        return None;
    };
    let Some(nanos) = number.read(point, point + 9) else {
        return None;
    };
    let Some(finer) = number.read(point + 9, point + 24) else {
        return None;
    };
    let nanos = total.1 + factor * nanos + factor * finer / 1_000_000_000_000_000;
    if factor == 0 || secs > u64::MAX / factor {
        return None;
    }
    let Some(secs) = (secs * factor).checked_add(total.0) else {
        return None;
    };
    let Some(secs) = secs.checked_add(nanos / NANOS_PER_SEC) else {
        return None;
    };
    Some((secs, nanos % NANOS_PER_SEC))
}

/// A decimal number `bytes[whole..end]`, with its point (if any) at `point`, after `shift`
/// zeros, and zeros after it.
#[derive(Clone, Copy)]
struct Digits<'a> {
    bytes: &'a [u8],
    whole: usize,
    point: usize,
    end: usize,
    shift: usize,
}

impl Digits<'_> {
    /// The number written by digits `from..to`; `None` past `u64::MAX`.
    #[inline(never)]
    const fn read(&self, from: usize, to: usize) -> Option<u64> {
        let mut n: u64 = 0;
        let mut k = from;
        while k < to {
            // Digit `k` is byte `at` of the number, the point skipped.
            let mut digit = 0;
            if k >= self.shift {
                let mut at = self.whole + (k - self.shift);
                if at >= self.point {
                    at += 1;
                }
                if at < self.end {
                    digit = (self.bytes[at] - b'0') as u64;
                }
            }
            if n > u64::MAX / 10 {
                return None;
            }
            let Some(next) = (n * 10).checked_add(digit) else {
                return None;
            };
            n = next;
            k += 1;
        }
        Some(n)
    }
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
    let limit = match crate::call::call_millis(*timeout) {
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
