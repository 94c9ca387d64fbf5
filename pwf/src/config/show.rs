//! How values appear in messages: strings quoted as in JSON, numbers as the configuration
//! wrote them.
//!
//! Written here rather than through `{:?}` or serde_json's serializer, so a plugin carries
//! neither Unicode tables nor a float printer for its configuration messages.

use std::fmt::{self, Write as _};

use serde_json::{Number, Value};

/// Strings longer than this are cut in messages.
const MAX_SHOWN_CHARS: usize = 64;

/// Describes a JSON value read from `source` in a message: scalars as written (long strings
/// cut), `an array`, `an object`.
pub(crate) struct Got<'a>(pub(crate) &'a Value, pub(crate) &'a [u8]);

impl fmt::Display for Got<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self.0 {
            Value::Number(number) => return write_number(f, number, self.1),
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

/// A JSON number: an integer as it is, a float as `source` writes it (`2.5`, `1e300`, cut
/// after [`MAX_SHOWN_CHARS`] characters), or `a number` when `source` does not hold it.
fn write_number(f: &mut fmt::Formatter<'_>, number: &Number, source: &[u8]) -> fmt::Result {
    if let Some(n) = number.as_u64() {
        return fmt::Display::fmt(&n, f);
    }
    if let Some(n) = number.as_i64() {
        // Negative: written as a sign and a u64, whose formatting is linked anyway.
        f.write_char('-')?;
        return fmt::Display::fmt(&n.unsigned_abs(), f);
    }
    let text = number.as_f64().and_then(|n| float_text(source, n));
    let (shown, cut) = match text.and_then(|text| std::str::from_utf8(text).ok()) {
        Some(text) => match text.get(..MAX_SHOWN_CHARS) {
            Some(shown) if shown.len() < text.len() => (shown, "..."),
            _ => (text, ""),
        },
        None => ("a number", ""),
    };
    f.write_str(shown)?;
    f.write_str(cut)
}

/// The first run of number characters in `source` that serde_json reads as the float `n`,
/// bit for bit: the text the configuration wrote for it (inside a string, the same float
/// written the same way).
fn float_text(source: &[u8], n: f64) -> Option<&[u8]> {
    source
        .split(|byte| !matches!(byte, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        .find(|run| {
            !run.is_empty()
                && matches!(
                    super::value::read_json(run),
                    Ok(Value::Number(read)) if read.is_f64()
                        && read.as_f64().map(f64::to_bits) == Some(n.to_bits())
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn got(source: &str) -> String {
        let value: Value = serde_json::from_str(source).unwrap();
        Got(&value, source.as_bytes()).to_string()
    }

    #[test]
    fn got_shows_floats_as_written() {
        for text in [
            "2.5",
            "2.50",
            "-0.0",
            "1e300",
            "1.5E-7",
            "100000000000000000000",
        ] {
            assert_eq!(got(text), text);
        }
    }

    #[test]
    fn got_shows_integers_as_integers() {
        assert_eq!(got("300"), "300");
        assert_eq!(got("-7"), "-7");
        assert_eq!(got("-9223372036854775808"), "-9223372036854775808");
    }

    #[test]
    fn got_shows_the_float_not_an_equal_integer_before_it() {
        let source = r#"{"a": 300, "b": "v1.5", "c": 300.0, "d": 1.50}"#;
        let value: Value = serde_json::from_str(source).unwrap();
        let shown = |key: &str| Got(&value[key], source.as_bytes()).to_string();
        assert_eq!(shown("c"), "300.0");
        // The same float inside a string comes first: written the same way, it shows the same.
        assert_eq!(shown("d"), "1.5");
    }

    #[test]
    fn got_cuts_long_floats() {
        let text = format!("0.{}", "1".repeat(80));
        assert_eq!(got(&text), format!("{}...", &text[..64]));
    }

    #[test]
    fn got_without_its_source_says_a_number() {
        assert_eq!(Got(&serde_json::json!(2.5), b"").to_string(), "a number");
        assert_eq!(
            Got(&serde_json::json!(2.5), b"2.25").to_string(),
            "a number"
        );
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
