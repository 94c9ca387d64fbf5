//! How values appear in messages: strings quoted as in JSON, numbers as JSON writes them.
//!
//! Written here rather than through `{:?}` or serde_json's serializer, so a plugin carries
//! neither Unicode tables nor a float printer for its configuration messages.

use std::fmt::{self, Write as _};

use serde_json::{Number, Value};

/// Strings longer than this are cut in messages.
const MAX_SHOWN_CHARS: usize = 64;

/// Describes a JSON value in a message: scalars as JSON writes them (long strings cut),
/// `an array`, `an object`.
pub(crate) struct Got<'a>(pub(crate) &'a Value);

impl fmt::Display for Got<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self.0 {
            Value::Number(number) => return write_number(f, number),
            Value::String(text) => return ShownStr(text).fmt(f),
            Value::Null => "null",
            Value::Bool(true) => "true",
            Value::Bool(false) => "false",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        f.write_str(text)
    }
}

/// A string quoted as in JSON, cut after [`MAX_SHOWN_CHARS`] characters
/// (`"abc"... (1000 bytes)`).
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
/// and the real length in bytes after the closing quote.
fn write_shown(f: &mut fmt::Formatter<'_>, text: &str, quote: &str) -> fmt::Result {
    // Where character number `MAX_SHOWN_CHARS` starts, counted over the bytes that start
    // a character (any but the continuation bytes `0b10xx_xxxx`).
    let end = text
        .bytes()
        .enumerate()
        .filter(|(_, byte)| byte & 0xc0 != 0x80)
        .nth(MAX_SHOWN_CHARS)
        .map(|(end, _)| end);
    let (shown, was_cut) = match end {
        Some(end) => (text.get(..end).unwrap_or(text), true),
        None => (text, false),
    };
    f.write_str(quote)?;
    write_escaped(f, shown)?;
    f.write_str(quote)?;
    if was_cut {
        // The real length, so a cut value is not taken for the whole.
        write!(f, "... ({} bytes)", text.len())?;
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

/// A JSON number: an integer as it is, a float as the decimal it holds ([`write_float`]).
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
        Some(n) => write_float(f, n),
        None => f.write_str("a number"),
    }
}

/// `n` as the shortest decimal `m × 10^e` (`2.5`, `300.0`, `0.00000015`, `1e30`) that reads as
/// `n` ([`decimal`]), or `a number` when it is not one of those. (Not serde_json's float
/// printer, nor `core`'s: either adds about 20 KB to every plugin, measured, for its
/// configuration messages.)
fn write_float(f: &mut fmt::Formatter<'_>, n: f64) -> fmt::Result {
    let Some((mut m, mut e)) = decimal(n.abs()) else {
        return f.write_str("a number");
    };
    if n.is_sign_negative() {
        f.write_char('-')?;
    }
    if e > 0 {
        while m % 10 == 0 {
            m /= 10;
            e += 1;
        }
        fmt::Display::fmt(&m, f)?;
        f.write_char('e')?;
        return fmt::Display::fmt(&u64::from(e.unsigned_abs()), f);
    }
    // `m` with a point before its last `-e` digits, and a zero on each side if need be: at
    // most 16 digits (`m` is below 2^53) and 22 fraction digits.
    let fraction_digits = e.unsigned_abs() as usize;
    let mut digits = [b'0'; 40];
    let mut start = digits.len();
    while m > 0 {
        start -= 1;
        digits[start] = b'0' + (m % 10) as u8;
        m /= 10;
    }
    let start = start.min(digits.len() - fraction_digits - 1);
    let (whole, fraction) = digits[start..].split_at(digits.len() - start - fraction_digits);
    let ascii = |digits| std::str::from_utf8(digits).unwrap_or_default();
    f.write_str(ascii(whole))?;
    f.write_char('.')?;
    f.write_str(if fraction.is_empty() {
        "0"
    } else {
        ascii(fraction)
    })
}

/// `n` (not negative) as `m × 10^e` with `m` below 2^53 and `e` in -22..=22, the fewest
/// fraction digits first, then the largest `e`: `m` and `10^|e|` are then exact floats, so
/// the one rounding of `m / 10^|e|` or `m * 10^e` says exactly whether that decimal reads
/// as `n`. That covers the floats a configuration writes.
fn decimal(n: f64) -> Option<(u64, i32)> {
    /// Integers below 2^53 are exact floats.
    const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;
    // 10^0 to 10^22 are exact floats, so are the products and quotients by 10 between them.
    let mut power = 1.0;
    for e in 0..=22 {
        let m = (n * power).round();
        if m < EXACT_INTEGERS && m / power == n {
            return Some((m as u64, -e));
        }
        power *= 10.0;
    }
    let mut power = 1e22;
    for e in (1..=22).rev() {
        let m = (n / power).round();
        if (1.0..EXACT_INTEGERS).contains(&m) && m * power == n {
            return Some((m as u64, e));
        }
        power /= 10.0;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn got(source: &str) -> String {
        let value: Value = serde_json::from_str(source).unwrap();
        Got(&value).to_string()
    }

    #[test]
    fn got_shows_floats_by_value() {
        for (text, shown) in [
            ("2.5", "2.5"),
            ("2.50", "2.5"),
            ("-0.0", "-0.0"),
            ("300.0", "300.0"),
            ("1.5E-7", "0.00000015"),
            ("0.1000000000000000055511151231257827", "0.1"),
            ("100000000000000000000", "1e20"),
            ("-1e30", "-1e30"),
            ("1e300", "a number"),
        ] {
            assert_eq!(got(text), shown, "{text}");
        }
    }

    #[test]
    fn got_shows_floats_as_text_that_reads_back_as_them() {
        let floats: [f64; 6] = [123456789.125, -2.5e-7, 1e16, 1.7e-5, 4e-300, 0.1 + 0.2];
        let shown: Vec<String> = floats
            .iter()
            .map(|n| Got(&serde_json::json!(n)).to_string())
            .collect();
        assert_eq!(
            shown,
            [
                "123456789.125",
                "-0.00000025",
                "1e16",
                "0.000017",
                "a number",
                "a number"
            ]
        );
        for (n, shown) in floats.iter().zip(&shown) {
            if shown != "a number" {
                assert_eq!(
                    shown.parse::<f64>().map(f64::to_bits),
                    Ok(n.to_bits()),
                    "{shown}"
                );
            }
        }
    }

    #[test]
    fn got_shows_integers_as_integers() {
        assert_eq!(got("300"), "300");
        assert_eq!(got("-7"), "-7");
        assert_eq!(got("-9223372036854775808"), "-9223372036854775808");
        assert_eq!(got("300.0"), "300.0");
    }

    /// A float was shown with the text of an equal number elsewhere in the configuration.
    #[test]
    fn got_shows_the_float_not_an_equal_number_written_elsewhere() {
        let value: Value = serde_json::from_str(r#"{"version": "1.10", "ratio": 1.1}"#).unwrap();
        assert_eq!(Got(&value["ratio"]).to_string(), "1.1");
    }

    #[test]
    fn shown_str_escapes_as_json() {
        assert_eq!(
            ShownStr("a\"b\\c\n\u{1}é").to_string(),
            r#""a\"b\\c\n\u0001é""#
        );
        assert_eq!(
            ShownStr(&"x".repeat(70)).to_string(),
            format!("\"{}\"... (70 bytes)", "x".repeat(64))
        );
    }

    #[test]
    fn quoted_list_quotes_each_string() {
        assert_eq!(QuotedList(&["GET", "a\"b"]).to_string(), r#""GET", "a\"b""#);
    }
}
