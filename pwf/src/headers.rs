//! Header maps and values. Values are bytes: Envoy passes headers that are
//! not UTF-8 through, and reading one never panics.

use std::fmt;
use std::ops::Deref;

/// A header value: bytes, usually text.
///
/// ```
/// use pwf::HeaderValue;
///
/// let value = HeaderValue::from("gzip");
/// assert_eq!(value, "gzip");
/// assert_eq!(value.to_str().unwrap(), "gzip");
///
/// let binary = HeaderValue::from(vec![0xff, 0xfe]);
/// assert!(binary.to_str().is_err());
/// assert_eq!(binary.to_string(), "\u{fffd}\u{fffd}");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HeaderValue(Vec<u8>);

impl HeaderValue {
    /// The value as text, if it is UTF-8.
    ///
    /// ```
    /// let value = pwf::HeaderValue::from("text/html; charset=utf-8");
    /// let mime = value.to_str().ok().and_then(|text| text.split(';').next());
    /// assert_eq!(mime, Some("text/html"));
    /// ```
    pub fn to_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.0)
    }

    /// The raw bytes.
    ///
    /// ```
    /// let value = pwf::HeaderValue::from("max-age=60");
    /// assert!(value.as_bytes().starts_with(b"max-age="));
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Takes the raw bytes.
    ///
    /// ```
    /// let value = pwf::HeaderValue::from(vec![0xde, 0xad]);
    /// assert_eq!(value.into_bytes(), [0xde, 0xad]);
    /// ```
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl Deref for HeaderValue {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for HeaderValue {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for HeaderValue {
    fn from(bytes: Vec<u8>) -> HeaderValue {
        HeaderValue(bytes)
    }
}

impl From<&[u8]> for HeaderValue {
    fn from(bytes: &[u8]) -> HeaderValue {
        HeaderValue(bytes.to_vec())
    }
}

impl From<&str> for HeaderValue {
    fn from(text: &str) -> HeaderValue {
        HeaderValue(text.as_bytes().to_vec())
    }
}

impl From<String> for HeaderValue {
    fn from(text: String) -> HeaderValue {
        HeaderValue(text.into_bytes())
    }
}

impl PartialEq<str> for HeaderValue {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for HeaderValue {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Display for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_str() {
            Ok(text) => fmt::Display::fmt(text, f),
            Err(_) => fmt::Display::fmt(&crate::shown::lossy(&self.0), f),
        }
    }
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_str() {
            Ok(text) => fmt::Debug::fmt(text, f),
            Err(_) => write!(f, "b{:?}", crate::shown::lossy(&self.0)),
        }
    }
}

/// An ordered header map, as Envoy holds it: names may repeat.
///
/// ```
/// use pwf::Headers;
///
/// let mut headers = Headers::default();
/// headers.append("set-cookie", "a=1");
/// headers.append("set-cookie", "b=2");
/// headers.insert("content-type", "text/plain");
/// assert_eq!(headers.get("set-cookie").unwrap(), "a=1");
/// assert_eq!(headers.get_all("set-cookie").count(), 2);
/// assert_eq!(headers.len(), 3);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, HeaderValue)>);

/// No headers, to lend out where there are none.
pub(crate) static NO_HEADERS: Headers = Headers(Vec::new());

impl Headers {
    /// The first value of `name` (names compare case-insensitively).
    ///
    /// ```
    /// let headers: pwf::Headers = [("Content-Type", "text/plain")].into_iter().collect();
    /// assert_eq!(headers.get("content-type").unwrap(), "text/plain");
    /// assert!(headers.get("accept").is_none());
    /// ```
    pub fn get(&self, name: &str) -> Option<&HeaderValue> {
        self.0
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// Every value of `name`, in order.
    ///
    /// ```
    /// let headers: pwf::Headers = [("via", "1.1 a"), ("via", "1.1 b")].into_iter().collect();
    /// let hops: Vec<String> = headers.get_all("via").map(|value| value.to_string()).collect();
    /// assert_eq!(hops, ["1.1 a", "1.1 b"]);
    /// ```
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a HeaderValue> + 'a {
        self.0
            .iter()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// Whether `name` is present.
    ///
    /// ```
    /// let headers: pwf::Headers = [("authorization", "Bearer t")].into_iter().collect();
    /// assert!(headers.contains("Authorization"));
    /// assert!(!headers.contains("cookie"));
    /// ```
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Adds a value, keeping any others of the same name.
    ///
    /// ```
    /// let mut headers = pwf::Headers::default();
    /// headers.append("set-cookie", "a=1");
    /// headers.append("set-cookie", "b=2");
    /// assert_eq!(headers.get_all("set-cookie").count(), 2);
    /// ```
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<HeaderValue>) {
        self.0.push((name.into(), value.into()));
    }

    /// Sets `name` to this one value, replacing any others.
    ///
    /// ```
    /// let mut headers: pwf::Headers = [("cache-control", "no-cache")].into_iter().collect();
    /// headers.insert("Cache-Control", "max-age=60");
    /// assert_eq!(headers.len(), 1);
    /// assert_eq!(headers.get("cache-control").unwrap(), "max-age=60");
    /// ```
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<HeaderValue>) {
        let name = name.into();
        self.remove(&name);
        self.0.push((name, value.into()));
    }

    /// Removes every value of `name`.
    ///
    /// ```
    /// let mut headers: pwf::Headers = [("x-debug", "1"), ("X-Debug", "2")].into_iter().collect();
    /// headers.remove("x-debug");
    /// assert!(headers.is_empty());
    /// ```
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(key, _)| !key.eq_ignore_ascii_case(name));
    }

    /// The number of name-value pairs.
    ///
    /// ```
    /// let headers: pwf::Headers = [("a", "1"), ("a", "2"), ("b", "3")].into_iter().collect();
    /// assert_eq!(headers.len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no headers.
    ///
    /// ```
    /// assert!(pwf::Headers::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs, in order.
    ///
    /// ```
    /// let headers: pwf::Headers = [("a", "1"), ("b", "2")].into_iter().collect();
    /// let lines: Vec<String> = headers.iter().map(|(name, value)| format!("{name}: {value}")).collect();
    /// assert_eq!(lines, ["a: 1", "b: 2"]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &HeaderValue)> {
        self.0.iter().map(|(key, value)| (key.as_str(), value))
    }

    pub(crate) fn as_pairs(&self) -> &[(String, HeaderValue)] {
        &self.0
    }
}

/// The pairs as they are, in order.
///
/// ```
/// use pwf::{HeaderValue, Headers};
///
/// let headers = Headers::from(vec![("x-id".to_owned(), HeaderValue::from("7"))]);
/// assert_eq!(headers.get("x-id").unwrap(), "7");
/// ```
impl From<Vec<(String, HeaderValue)>> for Headers {
    fn from(pairs: Vec<(String, HeaderValue)>) -> Headers {
        Headers(pairs)
    }
}

impl From<Vec<(String, Vec<u8>)>> for Headers {
    fn from(pairs: Vec<(String, Vec<u8>)>) -> Headers {
        Headers(
            pairs
                .into_iter()
                .map(|(key, value)| (key, HeaderValue(value)))
                .collect(),
        )
    }
}

impl<K: Into<String>, V: Into<HeaderValue>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Headers {
        Headers(
            iter.into_iter()
                .map(|(key, value)| (key.into(), value.into()))
                .collect(),
        )
    }
}

impl IntoIterator for Headers {
    type Item = (String, HeaderValue);
    type IntoIter = std::vec::IntoIter<(String, HeaderValue)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a HeaderValue);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, HeaderValue)>,
        fn(&'a (String, HeaderValue)) -> (&'a str, &'a HeaderValue),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(key, value)| (key.as_str(), value))
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A header name or value pwf refuses to hand to the host, and why.
///
/// Envoy writes header bytes as they are: a CR or LF in a value would end
/// the header (and over HTTP/1.1, with `\r\n\r\n`, the whole response head)
/// where the value says, and a NUL cuts it. So every setter checks the name
/// (an RFC 9110 token, or a pseudo-header such as `:path`) and the value (no
/// CR, LF or NUL) before the host call, and refuses with this error instead.
///
/// ```
/// # use pwf_test as _; // links the native host's imports
/// let error = pwf::Request::get("auth", "/check")
///     .header("x-user", "alice\r\nx-admin: true")
///     .send()
///     .unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     "call to cluster `auth` not sent: the value of header `x-user` has a CR at byte 5; \
///      CR, LF and NUL are not allowed in a header value"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidHeader {
    /// The name, cut and escaped for messages.
    name: String,
    problem: Problem,
}

/// What is wrong with a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Problem {
    /// The name is empty.
    EmptyName,
    /// The name has a byte that is not a token character, at this index.
    NameByte(u8, usize),
    /// The value has a CR, LF or NUL at this index.
    ValueByte(u8, usize),
}

impl InvalidHeader {
    fn new(name: &[u8], problem: Problem) -> InvalidHeader {
        InvalidHeader {
            name: crate::shown::Shown(name).to_string(),
            problem,
        }
    }

    /// Whether the value is at fault (a CR, LF or NUL in it), rather than
    /// the name.
    ///
    /// ```
    /// # use pwf_test as _; // links the native host's imports
    /// use pwf::CallErrorKind;
    ///
    /// let error = pwf::Request::get("auth", "/").header("x-a", "1\n2").send().unwrap_err();
    /// let CallErrorKind::InvalidHeader(invalid) = error.kind() else { unreachable!() };
    /// assert!(invalid.in_value());
    /// ```
    pub fn in_value(&self) -> bool {
        matches!(self.problem, Problem::ValueByte(..))
    }
}

impl InvalidHeader {
    /// What is wrong, without the header's name: `a CR at byte 5`,
    /// `an empty name`.
    pub(crate) fn problem(&self) -> impl fmt::Display + '_ {
        ProblemText(self.problem)
    }
}

/// [`InvalidHeader::problem`].
struct ProblemText(Problem);

impl fmt::Display for ProblemText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Problem::EmptyName => f.write_str("an empty name"),
            Problem::NameByte(byte, at) | Problem::ValueByte(byte, at) => {
                write!(f, "{} at byte {at}", ByteName(byte))
            }
        }
    }
}

impl fmt::Display for InvalidHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problem {
            Problem::EmptyName => f.write_str("a header name is empty"),
            Problem::NameByte(..) => write!(
                f,
                "header name {} has {}; a name is a token (letters, digits and !#$%&'*+-.^_`|~), or one of those after a leading `:`",
                self.name,
                self.problem()
            ),
            Problem::ValueByte(..) => write!(
                f,
                "the value of header {} has {}; CR, LF and NUL are not allowed in a header value",
                self.name,
                self.problem()
            ),
        }
    }
}

impl std::error::Error for InvalidHeader {}

/// A byte as messages name it: `a CR`, `an LF`, `a NUL`, `a space`, `byte 0x80`.
struct ByteName(u8);

impl fmt::Display for ByteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            b'\r' => f.write_str("a CR"),
            b'\n' => f.write_str("an LF"),
            0 => f.write_str("a NUL"),
            b' ' => f.write_str("a space"),
            byte @ 0x21..=0x7e => write!(f, "`{}`", char::from(byte)),
            byte => write!(f, "byte 0x{byte:02x}"),
        }
    }
}

/// Whether `byte` is an RFC 9110 token character (`tchar`).
fn is_tchar(byte: u8) -> bool {
    TCHAR[usize::from(byte)]
}

/// The bytes RFC 9110 allows in a token, as a table: every header a plugin
/// sets is checked, so a name costs one load a byte (a search of the
/// punctuation list for each `-` cost about 30 guest instructions a byte).
const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        byte += 1;
    }
    table
};

/// Checks a header name: an RFC 9110 token, or a pseudo-header (`:` and a
/// token). Upper case passes: Envoy lowercases every name it is given.
pub(crate) fn check_name(name: &str) -> Result<(), InvalidHeader> {
    let bytes = name.as_bytes();
    let token = bytes.strip_prefix(b":").unwrap_or(bytes);
    if token.is_empty() {
        return Err(InvalidHeader::new(bytes, Problem::EmptyName));
    }
    if all_words(token, is_common_token_word) {
        return Ok(());
    }
    let offset = bytes.len() - token.len();
    match token.iter().position(|&byte| !is_tchar(byte)) {
        None => Ok(()),
        Some(at) => Err(InvalidHeader::new(
            bytes,
            Problem::NameByte(token[at], at + offset),
        )),
    }
}

/// Whether every byte of `word` is a lowercase letter, a digit or `-`, as
/// in nearly every header name: a few operations for eight bytes, where the
/// table costs about 16 guest instructions a byte (http_auth_random checks
/// three forwarded names, 39 bytes, per request). A name with any other
/// byte goes through the table.
fn is_common_token_word(word: u64) -> bool {
    // For a byte below 0x80, adding `0x80 - low` sets its high bit exactly
    // when it is at least `low`, and carries into no other byte.
    let at_least = |low: u8| word.wrapping_add(ONES * u64::from(0x80 - low));
    let within = |low: u8, high: u8| at_least(low) & !at_least(high + 1);
    word & HIGHS == 0
        && (within(b'a', b'z') | within(b'0', b'9') | within(b'-', b'-')) & HIGHS == HIGHS
}

/// Checks a header value: no CR, LF or NUL, which would end or cut the
/// header where Envoy writes it.
pub(crate) fn check_value(name: &str, value: &[u8]) -> Result<(), InvalidHeader> {
    match forbidden_in_value(value) {
        None => Ok(()),
        Some(at) => Err(InvalidHeader::new(
            name.as_bytes(),
            Problem::ValueByte(value[at], at),
        )),
    }
}

/// Whether `byte` may not stand in a header value.
fn is_forbidden_in_value(byte: u8) -> bool {
    matches!(byte, b'\r' | b'\n' | 0)
}

/// The position of the first CR, LF or NUL in `value`.
///
/// Eight bytes at a time: every header a plugin forwards on a call is
/// checked, and a byte at a time cost about six guest instructions a byte
/// (http_auth_random: 1242 of its 17408 instructions per request; the
/// budget in bench/budget.toml holds what this saves). A word with any of
/// the three ([`has_forbidden`]) is searched byte by byte, for the exact
/// position.
fn forbidden_in_value(value: &[u8]) -> Option<usize> {
    let mut words = value.chunks_exact(8);
    for (index, chunk) in words.by_ref().enumerate() {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(chunk);
        let word = u64::from_le_bytes(bytes);
        if has_forbidden(word) {
            let at = chunk.iter().position(|&byte| is_forbidden_in_value(byte));
            return at.map(|at| index * 8 + at);
        }
    }
    let rest = words.remainder();
    let at = rest.iter().position(|&byte| is_forbidden_in_value(byte))?;
    Some(value.len() - rest.len() + at)
}

/// Checks a name and its value, as every setter does before its host call.
pub(crate) fn check(name: &str, value: &[u8]) -> Result<(), InvalidHeader> {
    check_name(name)?;
    check_value(name, value)
}

/// Why a header whose value arrived as bytes cannot go on a call.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unsendable {
    /// The value is not UTF-8, and call headers go to the host as text.
    NotUtf8,
    /// The name or the value fails [`check`].
    Invalid(InvalidHeader),
}

/// Makes `value` text for a call and checks the pair: the verdicts of
/// `String::from_utf8` and then [`check`], in that order.
///
/// A value that is ASCII with no CR, LF or NUL, as forwarded values almost
/// always are, takes one pass over its words instead of std's UTF-8
/// validation and then the value check: http_auth_random forwards three
/// values per request, and `String::from_utf8` cost about 165 guest
/// instructions and `check_value` about 195 for each (the budget in
/// bench/budget.toml holds what this saves). Any other value takes that
/// path.
pub(crate) fn check_text(name: &str, value: Vec<u8>) -> Result<String, Unsendable> {
    if !is_plain_ascii(&value) {
        let value = String::from_utf8(value).map_err(|_| Unsendable::NotUtf8)?;
        check(name, value.as_bytes()).map_err(Unsendable::Invalid)?;
        return Ok(value);
    }
    check_name(name).map_err(Unsendable::Invalid)?;
    // SAFETY: every byte is below 0x80 (`is_plain_ascii`), and a string of
    // ASCII bytes is UTF-8 (tested against std: `ascii_is_what_std_decodes`).
    Ok(unsafe { String::from_utf8_unchecked(value) })
}

/// `bytes` as text, if every byte is ASCII; `None` otherwise, even if they
/// are UTF-8.
///
/// Eight bytes at a time, for header names read from the host: std's
/// `from_utf8` cost about 165 guest instructions a name (http_auth_random
/// reads seven per request).
pub(crate) fn ascii_str(bytes: &[u8]) -> Option<&str> {
    if all_words(bytes, |word| word & HIGHS == 0) {
        // SAFETY: every byte is below 0x80, and a string of ASCII bytes is
        // UTF-8 (tested against std: `ascii_is_what_std_decodes`).
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        None
    }
}

/// Whether every byte of `value` is ASCII and none is a CR, LF or NUL.
fn is_plain_ascii(value: &[u8]) -> bool {
    all_words(value, |word| word & HIGHS == 0 && !has_forbidden(word))
}

/// Whether a byte of `word` is a CR, LF or NUL: a byte equal to `b` is a
/// zero byte of `w ^ (b * 0x01..)` ([`has_zero`]).
fn has_forbidden(word: u64) -> bool {
    has_zero(word)
        || has_zero(word ^ (ONES * u64::from(b'\n')))
        || has_zero(word ^ (ONES * u64::from(b'\r')))
}

/// Each byte of a word: `0x01` in every byte.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of each byte of a word.
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether a byte of `word` is zero: `(w - 0x01..) & !w & 0x80..` has a
/// high bit set exactly when one is (a borrow only passes a zero byte on,
/// so the lowest zero byte is always seen; bytes above it may be wrong,
/// which is why [`forbidden_in_value`] scans a hit byte by byte).
fn has_zero(word: u64) -> bool {
    word.wrapping_sub(ONES) & !word & HIGHS != 0
}

/// Whether `test` holds for every eight bytes of `bytes`, read as
/// little-endian words; the last few are padded with `-`, which passes
/// every test here.
fn all_words(bytes: &[u8], test: impl Fn(u64) -> bool) -> bool {
    let mut words = bytes.chunks_exact(8);
    let whole = words.by_ref().all(|chunk| {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        test(u64::from_le_bytes(word))
    });
    let rest = words.remainder();
    let mut last = [b'-'; 8];
    last[..rest.len()].copy_from_slice(rest);
    whole && test(u64::from_le_bytes(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_in_value_finds_the_first_cr_lf_or_nul_as_a_byte_scan_does() {
        let scan = |value: &[u8]| value.iter().position(|&byte| is_forbidden_in_value(byte));
        for len in 0..40 {
            let clean: Vec<u8> = (0..len).map(|i| b' ' + (i % 90) as u8).collect();
            assert_eq!(forbidden_in_value(&clean), None, "{len} clean bytes");
            for at in 0..len {
                for bad in [b'\r', b'\n', 0, 0x8a, 0x8d, 0x80, 0x0b, 0x0c, 0x01, 0xff] {
                    let mut value = clean.clone();
                    value[at] = bad;
                    if at + 1 < len {
                        value[at + 1] = b'\n';
                    }
                    assert_eq!(
                        forbidden_in_value(&value),
                        scan(&value),
                        "{bad:#x} at {at} of {len}"
                    );
                }
            }
        }
    }

    /// Every input of up to two bytes, and each byte value at each place
    /// of ASCII text of up to 40 bytes (with an LF after it, and a second
    /// high byte after it, to cut or complete a sequence).
    fn short_inputs() -> Vec<Vec<u8>> {
        let mut inputs = vec![Vec::new()];
        for a in 0..=255u8 {
            inputs.push(vec![a]);
            for b in 0..=255u8 {
                inputs.push(vec![a, b]);
            }
        }
        for len in 3..40 {
            let text: Vec<u8> = (0..len).map(|i| b' ' + (i % 90) as u8).collect();
            inputs.push(text.clone());
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut input = text.clone();
                    input[at] = byte;
                    inputs.push(input.clone());
                    if at + 1 < len {
                        input[at + 1] = if byte < 0x80 { b'\n' } else { 0xbf };
                        inputs.push(input);
                    }
                }
            }
        }
        inputs
    }

    /// The proof behind `from_utf8_unchecked` in `ascii_str` and
    /// `check_text`: whatever they take as ASCII, std decodes to the same
    /// text.
    #[test]
    fn ascii_is_what_std_decodes() {
        for input in short_inputs() {
            let std = std::str::from_utf8(&input);
            match ascii_str(&input) {
                Some(text) => assert_eq!(Ok(text), std, "{input:x?}"),
                None => assert!(!input.is_ascii(), "{input:x?}"),
            }
            assert_eq!(
                is_plain_ascii(&input),
                input.is_ascii() && scan(&input).is_none(),
                "{input:x?}"
            );
        }
    }

    /// The proof that `check_name` passes by words exactly the names the
    /// table would pass that way.
    #[test]
    fn common_token_words_are_lowercase_letters_digits_and_dashes() {
        let common = |input: &[u8]| {
            input
                .iter()
                .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        };
        let text = b"x-request-id-0123456789-abcdefghijklmnopqrstuvwxyz";
        let mut inputs = short_inputs();
        for len in 0..text.len() {
            inputs.push(text[..len].to_vec());
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut input = text[..len].to_vec();
                    input[at] = byte;
                    inputs.push(input);
                }
            }
        }
        for input in inputs {
            assert_eq!(
                all_words(&input, is_common_token_word),
                common(&input),
                "{input:x?}"
            );
            if common(&input) {
                assert!(input.iter().all(|&byte| is_tchar(byte)), "{input:x?}");
            }
        }
    }

    #[test]
    fn check_text_gives_the_verdicts_of_from_utf8_then_check() {
        let inputs = short_inputs();
        for name in ["x-a", "x a", ""] {
            for input in &inputs {
                let expected = String::from_utf8(input.clone())
                    .map_err(|_| Unsendable::NotUtf8)
                    .and_then(|text| match check(name, text.as_bytes()) {
                        Ok(()) => Ok(text),
                        Err(invalid) => Err(Unsendable::Invalid(invalid)),
                    });
                assert_eq!(
                    check_text(name, input.clone()),
                    expected,
                    "{name} {input:x?}"
                );
            }
        }
    }

    fn scan(value: &[u8]) -> Option<usize> {
        value.iter().position(|&byte| is_forbidden_in_value(byte))
    }

    #[test]
    fn check_takes_tokens_and_pseudo_headers() {
        for name in [
            "x-pwf",
            "content-type",
            "X-Mixed-Case",
            ":path",
            ":authority",
            "a!#$%&'*+-.^_`|~9",
        ] {
            assert_eq!(check_name(name), Ok(()), "{name}");
        }
        assert_eq!(check("x-a", b"any \t value \xe9"), Ok(()));
    }

    /// A CR or LF in a value once split the response in Envoy.
    #[test]
    fn check_value_refuses_cr_lf_and_nul() {
        for (value, text) in [
            (&b"hello\r\nx-injected: 2"[..], "a CR at byte 5"),
            (b"a\nb", "an LF at byte 1"),
            (b"\0", "a NUL at byte 0"),
        ] {
            let error = check("x-pwf", value).unwrap_err();
            assert!(error.in_value());
            assert_eq!(
                error.to_string(),
                format!("the value of header `x-pwf` has {text}; CR, LF and NUL are not allowed in a header value")
            );
        }
    }

    #[test]
    fn check_name_refuses_what_is_not_a_token() {
        let message = |name: &str| check_name(name).unwrap_err().to_string();
        assert_eq!(message(""), "a header name is empty");
        assert_eq!(message(":"), "a header name is empty");
        assert!(message("x pwf")
            .starts_with("header name `x pwf` has a space at byte 1; a name is a token"));
        assert!(message("x-a:b").starts_with("header name `x-a:b` has `:` at byte 3;"));
        assert!(message("x\r\ny").starts_with("header name `x\\r\\ny` has a CR at byte 1;"));
        assert!(message("é").starts_with("header name `é` has byte 0xc3 at byte 0;"));
        assert!(!check_name("x-a:b").unwrap_err().in_value());
    }
}
