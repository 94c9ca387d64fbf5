//! Values shown in pwf's own messages: cut to a bounded length, with the real
//! length given, and escaped, so that no value can flood a log line, split it
//! with a CR or LF, or pass for the message around it.

use std::fmt::{self, Write as _};

/// Bytes shown of a value; the rest is cut, and the real length given.
pub(crate) const MAX_SHOWN: usize = 64;

/// A value as pwf's messages show it between backticks: at most
/// [`MAX_SHOWN`] bytes of it, then `...` and the real length in bytes when
/// it is longer. Control characters, `` ` `` and `\` are escaped (`\r`, `\n`,
/// `\x00`, `` \` ``, `\\`), and so are bytes that are not UTF-8 (`\xe9`).
///
/// `Shown(b"auth")` is `` `auth` ``; 1 MiB of `a` is
/// `` `aaaa...` (1048576 bytes) ``.
pub(crate) struct Shown<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        let cut = bytes.len() > MAX_SHOWN;
        let mut rest = if cut { &bytes[..MAX_SHOWN] } else { bytes };
        f.write_char('`')?;
        while !rest.is_empty() {
            let (valid, bad) = match std::str::from_utf8(rest) {
                Ok(text) => (text, &[][..]),
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    let bad_len = error.error_len().unwrap_or(after.len());
                    // The first `valid_up_to` bytes are UTF-8.
                    let valid = std::str::from_utf8(valid).unwrap_or_default();
                    (valid, &after[..bad_len])
                }
            };
            write_text(f, valid)?;
            for byte in bad {
                write!(f, "\\x{byte:02x}")?;
            }
            rest = &rest[valid.len() + bad.len()..];
        }
        f.write_char('`')?;
        if cut {
            write!(f, "... ({} bytes)", bytes.len())?;
        }
        Ok(())
    }
}

/// Writes `text` with control characters, `` ` `` and `\` escaped.
fn write_text(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        match c {
            '\r' => f.write_str("\\r")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '`' => f.write_str("\\`")?,
            '\\' => f.write_str("\\\\")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    Ok(())
}

/// `bytes` as text, each invalid UTF-8 sequence replaced by U+FFFD, as
/// `String::from_utf8_lossy` does.
pub(crate) fn lossy(mut bytes: &[u8]) -> String {
    let mut text = String::new();
    loop {
        let (valid, rest) = match std::str::from_utf8(bytes) {
            Ok(valid) => (valid, None),
            Err(error) => {
                let (valid, rest) = bytes.split_at(error.valid_up_to());
                // SAFETY: `from_utf8` found these bytes valid.
                let valid = unsafe { std::str::from_utf8_unchecked(valid) };
                // A sequence cut short by the end takes one replacement, and ends the text.
                (
                    valid,
                    Some(rest.get(error.error_len().unwrap_or(rest.len())..)),
                )
            }
        };
        text.push_str(valid);
        match rest {
            None => return text,
            Some(rest) => {
                text.push(char::REPLACEMENT_CHARACTER);
                bytes = rest.unwrap_or_default();
                if bytes.is_empty() {
                    return text;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossy_replaces_as_from_utf8_lossy_does() {
        let cases: &[&[u8]] = &[
            b"",
            b"plain",
            "caf\u{e9} \u{1f600}".as_bytes(),
            b"a\xffb",
            b"\xff\xfe",
            b"ok\xe2\x82",
            b"\xe2\x82z\xf0\x9f\x98",
            b"\xc0\xaf\xed\xa0\x80x",
            b"\xf4\x90\x80\x80",
        ];
        for bytes in cases {
            assert_eq!(lossy(bytes), String::from_utf8_lossy(bytes), "{bytes:?}");
        }
    }

    #[test]
    fn shown_quotes_a_plain_value_as_it_is() {
        assert_eq!(Shown(b"auth").to_string(), "`auth`");
        assert_eq!(Shown("é".as_bytes()).to_string(), "`é`");
    }

    /// A CR or LF in a value once split pwf's log lines.
    #[test]
    fn shown_escapes_line_breaks_controls_and_backticks() {
        assert_eq!(
            Shown(b"a\r\nx-injected: 2").to_string(),
            "`a\\r\\nx-injected: 2`"
        );
        assert_eq!(Shown(b"\0`\\\x7f").to_string(), "`\\u{0}\\`\\\\\\u{7f}`");
        assert_eq!(Shown(b"a=\xe9").to_string(), "`a=\\xe9`");
    }

    /// A 1 MB cluster name once made a 1 MB log line per call.
    #[test]
    fn shown_cuts_a_long_value_and_gives_its_length() {
        let long = vec![b'a'; 1 << 20];
        assert_eq!(
            Shown(&long).to_string(),
            format!("`{}`... (1048576 bytes)", "a".repeat(MAX_SHOWN))
        );
        // A character cut in two shows its first bytes escaped.
        let mut text = "a".repeat(MAX_SHOWN - 1).into_bytes();
        text.extend_from_slice("é".as_bytes());
        assert!(Shown(&text).to_string().ends_with("a\\xc3`... (65 bytes)"));
    }
}
