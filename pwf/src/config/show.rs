//! How values appear in messages: strings quoted as in JSON, numbers as JSON writes them.
//!
//! Written here rather than through `{:?}` or serde_json's serializer, so a plugin carries
//! neither Unicode tables nor a float printer for its configuration messages.

use std::fmt::{self, Write as _};

use serde_json::{Number, Value};

/// Strings longer than this are cut in messages.
const MAX_SHOWN_CHARS: usize = 64;

/// Describes a JSON value in a message: scalars as written (long strings cut), `an array`,
/// `an object`.
pub(crate) struct Got<'a>(pub(crate) &'a Value);

impl fmt::Display for Got<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Null => f.write_str("null"),
            Value::Bool(true) => f.write_str("true"),
            Value::Bool(false) => f.write_str("false"),
            Value::Number(number) => write_number(f, number),
            Value::String(text) => ShownStr(text).fmt(f),
            Value::Array(_) => f.write_str("an array"),
            Value::Object(_) => f.write_str("an object"),
        }
    }
}

/// A string quoted as in JSON, cut after [`MAX_SHOWN_CHARS`] characters (`"abc"...`).
pub(crate) struct ShownStr<'a>(pub(crate) &'a str);

impl fmt::Display for ShownStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_shown(f, self.0, "\"")
    }
}

/// A key as written by the user, escaped as inside a JSON string but without the quotes,
/// cut after [`MAX_SHOWN_CHARS`] characters.
pub(crate) struct ShownKey<'a>(pub(crate) &'a str);

impl fmt::Display for ShownKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_shown(f, self.0, "")
    }
}

/// `text` escaped between two `quote`s, cut after [`MAX_SHOWN_CHARS`] characters with `...`
/// after the closing quote.
fn write_shown(f: &mut fmt::Formatter<'_>, text: &str, quote: &str) -> fmt::Result {
    let (shown, was_cut) = match text.char_indices().nth(MAX_SHOWN_CHARS) {
        Some((end, _)) => (text.get(..end).unwrap_or(text), true),
        None => (text, false),
    };
    f.write_str(quote)?;
    write_escaped(f, shown)?;
    f.write_str(quote)?;
    if was_cut {
        f.write_str("...")?;
    }
    Ok(())
}

/// `"a", "b", "c"`: each string quoted as in JSON.
pub(crate) struct QuotedList<'a>(pub(crate) &'a [&'a str]);

impl fmt::Display for QuotedList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, text) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_char('"')?;
            write_escaped(f, text)?;
            f.write_char('"')?;
        }
        Ok(())
    }
}

/// `text` escaped as inside a JSON string, as serde_json writes it: `"`, `\` and the
/// control characters below U+0020 escaped, everything else as it is.
pub(crate) fn write_escaped(f: &mut impl fmt::Write, text: &str) -> fmt::Result {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, byte) in text.bytes().enumerate() {
        let short = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        // `i` is an ASCII byte, so both slices end on character boundaries.
        f.write_str(text.get(start..i).unwrap_or_default())?;
        start = i + 1;
        if short.is_empty() {
            f.write_str("\\u00")?;
            f.write_char(char::from(HEX[usize::from(byte >> 4)]))?;
            f.write_char(char::from(HEX[usize::from(byte & 0xf)]))?;
        } else {
            f.write_str(short)?;
        }
    }
    f.write_str(text.get(start..).unwrap_or_default())
}

/// A JSON number as serde_json writes it: integers as they are, floats in their shortest
/// form that reads back the same (`2.5`, `0.1`, `300.0`, `1e+300`).
fn write_number(f: &mut fmt::Formatter<'_>, number: &Number) -> fmt::Result {
    if let Some(n) = number.as_u64() {
        return fmt::Display::fmt(&n, f);
    }
    if let Some(n) = number.as_i64() {
        // Negative: written as a sign and a u64, whose formatting is linked anyway.
        f.write_char('-')?;
        return fmt::Display::fmt(&n.unsigned_abs(), f);
    }
    match number.as_f64() {
        Some(n) => write_f64(f, n),
        None => f.write_str("a number"),
    }
}

/// A finite float in its shortest form that reads back the same: fixed notation from 1e-5
/// up to 1e16 (`0.00001`, `2.5`, `300.0`), scientific beyond (`1e-7`, `1.5e+300`).
pub(crate) fn write_f64(f: &mut impl fmt::Write, n: f64) -> fmt::Result {
    if n.is_sign_negative() {
        f.write_char('-')?;
    }
    let n = n.abs();
    if n == 0.0 || !n.is_finite() {
        // JSON has no infinities nor NaN; serde_json never produces them.
        return f.write_str("0.0");
    }
    let (digits, exponent) = shortest_digits(n);
    let digits = digits.as_str();
    if (-5..16).contains(&exponent) {
        // `exponent` is the power of ten of the first digit.
        let point = exponent + 1;
        if point <= 0 {
            f.write_str("0.")?;
            for _ in point..0 {
                f.write_char('0')?;
            }
            f.write_str(digits)
        } else {
            let point = point.unsigned_abs() as usize;
            match (digits.get(..point), digits.get(point..)) {
                (Some(whole), Some(fraction)) if !fraction.is_empty() => {
                    f.write_str(whole)?;
                    f.write_char('.')?;
                    f.write_str(fraction)
                }
                _ => {
                    f.write_str(digits)?;
                    for _ in digits.len()..point {
                        f.write_char('0')?;
                    }
                    f.write_str(".0")
                }
            }
        }
    } else {
        write_scientific(f, digits, exponent)
    }
}

/// `d.ddde-7`, `de+300`: the digits with a point after the first, then the exponent.
fn write_scientific(f: &mut impl fmt::Write, digits: &str, exponent: i32) -> fmt::Result {
    let (first, rest) = (
        digits.get(..1).unwrap_or_default(),
        digits.get(1..).unwrap_or_default(),
    );
    f.write_str(first)?;
    if !rest.is_empty() {
        f.write_char('.')?;
        f.write_str(rest)?;
    }
    let sign = if exponent < 0 { "e" } else { "e+" };
    write!(f, "{sign}{exponent}")
}

/// The fewest significant decimal digits (at most 17, no trailing zeros) that read back as
/// the finite, positive `n`, and the power of ten of the first.
fn shortest_digits(n: f64) -> (String, i32) {
    let (exact, exponent) = exact_digits(n);
    let mut shortest = (String::new(), exponent);
    let mut text = String::new();
    for precision in 1..=17 {
        shortest = round_digits(&exact, exponent, precision);
        text.clear();
        let _ = write_scientific(&mut text, &shortest.0, shortest.1);
        // serde_json reads the configuration, so its reading is the one to match.
        let read = serde_json::from_slice::<Value>(text.as_bytes())
            .ok()
            .and_then(|value| value.as_f64());
        if read == Some(n) {
            break;
        }
    }
    shortest
}

/// `exact` (digits of the power of ten `exponent` first) rounded half up to `precision`
/// digits, without trailing zeros.
fn round_digits(exact: &[u8], exponent: i32, precision: usize) -> (String, i32) {
    let mut kept: Vec<u8> = exact.iter().copied().take(precision).collect();
    let mut exponent = exponent;
    if exact.get(precision).is_some_and(|digit| *digit >= b'5') {
        loop {
            match kept.pop() {
                Some(b'9') => continue,
                Some(digit) => {
                    kept.push(digit + 1);
                    break;
                }
                None => {
                    kept.push(b'1');
                    exponent += 1;
                    break;
                }
            }
        }
    }
    while kept.len() > 1 && kept.last() == Some(&b'0') {
        kept.pop();
    }
    (kept.into_iter().map(char::from).collect(), exponent)
}

/// Every decimal digit of the finite, positive `n` (exactly, as a binary float has a finite
/// decimal expansion), and the power of ten of the first.
fn exact_digits(n: f64) -> (Vec<u8>, i32) {
    const BASE: u64 = 1_000_000_000;
    let bits = n.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mantissa, binary_exponent) = match biased {
        0 => (fraction, -1074),
        _ => (fraction | (1 << 52), biased - 1075),
    };
    // n = mantissa * 2^binary_exponent = mantissa * 5^-binary_exponent / 10^-binary_exponent:
    // an integer in base 10^9 (least significant limb first), times a power of ten.
    let mut limbs = vec![
        mantissa % BASE,
        mantissa / BASE % BASE,
        mantissa / BASE / BASE,
    ];
    let (factor, step, mut count) = if binary_exponent >= 0 {
        (2, 29, binary_exponent.unsigned_abs())
    } else {
        (5, 12, binary_exponent.unsigned_abs())
    };
    while count > 0 {
        let power = step.min(count);
        count -= power;
        let multiplier = u64::pow(factor, power);
        let mut carry = 0;
        for limb in &mut limbs {
            let product = *limb * multiplier + carry;
            *limb = product % BASE;
            carry = product / BASE;
        }
        while carry > 0 {
            limbs.push(carry % BASE);
            carry /= BASE;
        }
    }
    while limbs.len() > 1 && limbs.last() == Some(&0) {
        limbs.pop();
    }
    let mut digits = String::with_capacity(limbs.len() * 9);
    for (i, limb) in limbs.iter().rev().enumerate() {
        if i == 0 {
            let _ = write!(digits, "{limb}");
        } else {
            let _ = write!(digits, "{limb:09}");
        }
    }
    let fraction_digits = binary_exponent.min(0).unsigned_abs();
    let exponent = i64::try_from(digits.len()).unwrap_or(i64::MAX) - 1 - i64::from(fraction_digits);
    (
        digits.into_bytes(),
        i32::try_from(exponent).unwrap_or(i32::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown_f64(n: f64) -> String {
        let mut text = String::new();
        write_f64(&mut text, n).unwrap();
        text
    }

    /// What serde_json writes for the same float.
    fn serde_json_f64(n: f64) -> String {
        Value::from(n).to_string()
    }

    #[test]
    fn write_f64_writes_floats_as_serde_json_does() {
        for n in [
            1.5,
            0.1,
            -2.5,
            300.0,
            123.456,
            1e15,
            1e16,
            1e21,
            1e300,
            1e-5,
            1.25e-5,
            1e-6,
            1e-7,
            1.5e-7,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            -0.0,
            0.0,
            9007199254740993.0,
            1.2345678901234567e20,
            2.0 / 3.0,
            std::f64::consts::PI,
        ] {
            assert_eq!(shown_f64(n), serde_json_f64(n), "{n:e}");
        }
    }

    #[test]
    fn write_f64_writes_arbitrary_floats_shortest_and_reading_back() {
        // A fixed sequence of bit patterns across the whole range of finite floats.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut checked = 0;
        while checked < 2000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let n = f64::from_bits(state);
            if !n.is_finite() {
                continue;
            }
            let (shown, written) = (shown_f64(n), serde_json_f64(n));
            // serde_json writes the shortest correctly rounded digits, but its reading is not
            // always correctly rounded. Whenever it reads its own text back as `n`, it reads
            // the shown text back as `n` too, and that text is no longer.
            let read = |text: &str| serde_json::from_str::<Value>(text).unwrap().as_f64();
            if read(&written) == Some(n) {
                assert_eq!(read(&shown), Some(n), "{n:e} shown as {shown}");
                assert!(shown.len() <= written.len(), "{n:e} shown as {shown}");
            }
            checked += 1;
        }
    }

    #[test]
    fn shown_str_escapes_as_json() {
        assert_eq!(
            ShownStr("a\"b\\c\n\u{1}é").to_string(),
            r#""a\"b\\c\n\u0001é""#
        );
        assert_eq!(
            ShownStr(&"x".repeat(70)).to_string(),
            format!("\"{}\"...", "x".repeat(64))
        );
    }

    #[test]
    fn quoted_list_quotes_each_string() {
        assert_eq!(QuotedList(&["GET", "a\"b"]).to_string(), r#""GET", "a\"b""#);
    }
}
