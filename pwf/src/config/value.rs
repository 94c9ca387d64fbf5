//! Reading one typed value out of JSON, with the path and a precise message on failure.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::time::Duration;

use serde_json::{Map, Value};

use super::duration::{parse_duration, DurationError};
use super::{Path, Problems, Type};

/// A type a configuration field can have, read from JSON with problems reported at their path.
///
/// Implemented for `bool`, `String`, the integer and float types, [`Duration`], `Option<T>`,
/// `Vec<T>`, `Box<T>`, `HashMap<String, T>` and `BTreeMap<String, T>` (string keys), and
/// [`serde_json::Value`], and by `#[derive(PluginConfig)]` for structs and enums of unit
/// variants. A field of any other type that implements `serde::de::DeserializeOwned` is read
/// through serde instead, with serde's message.
///
/// Implement it by hand for a type that needs its own reading and messages:
///
/// ```
/// use pwf::config::{ConfigValue, Path, Problems, Type};
/// use pwf::PluginConfig;
/// use serde_json::Value;
///
/// /// An HTTP status code.
/// struct Status(u16);
///
/// impl ConfigValue for Status {
///     fn from_config(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Self> {
///         match value.as_u64() {
///             Some(code @ 100..=599) => Some(Status(code as u16)),
///             _ => {
///                 problems.push(path, format!("expected an HTTP status, got {value}"));
///                 None
///             }
///         }
///     }
///
///     fn describe() -> Type {
///         Type::new("HTTP status")
///     }
/// }
///
/// #[derive(PluginConfig)]
/// struct Config {
///     deny_status: Status,
/// }
///
/// let error = Config::parse(br#"{"denyStatus": 42}"#).err().unwrap();
/// assert_eq!(error.to_string(), "denyStatus: expected an HTTP status, got 42");
/// ```
pub trait ConfigValue: Sized {
    /// Reads the value at `path`. On failure, records at least one problem and returns `None`.
    ///
    /// ```
    /// use pwf::config::{ConfigValue, Path, Problems};
    /// use serde_json::json;
    ///
    /// let mut problems = Problems::new();
    /// let root = Path::root();
    /// assert_eq!(u16::from_config(&json!(8080), &root.key("port"), &mut problems), Some(8080));
    /// assert_eq!(u16::from_config(&json!(-1), &root.key("port"), &mut problems), None);
    /// assert_eq!(problems.len(), 1);
    /// ```
    fn from_config(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Self>;

    /// The type as the schema shows it.
    ///
    /// ```
    /// use pwf::config::ConfigValue;
    ///
    /// assert_eq!(std::time::Duration::describe().name(), "duration");
    /// assert_eq!(<Option<u32>>::describe().name(), "integer (u32)");
    /// ```
    fn describe() -> Type;

    /// The value of a key that is absent from the configuration and has no default: `None`
    /// (the default) makes the key required; `Option<T>` gives `Some(None)`.
    ///
    /// ```
    /// use pwf::config::ConfigValue;
    ///
    /// // A plain value is required; an `Option` is not, and reads as `None`.
    /// assert!(u32::when_absent().is_none());
    /// assert_eq!(<Option<u32>>::when_absent(), Some(None));
    /// ```
    fn when_absent() -> Option<Self> {
        None
    }
}

/// Records `expected <what>, got <value>` and gives up.
fn expected<T>(what: &str, value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<T> {
    push_expected(what, value, path, problems);
    None
}

/// Records `expected <what>, got <value>`: one copy of the message's arguments for every
/// type read.
#[inline(never)]
fn push_expected(what: &str, value: &Value, path: &Path<'_>, problems: &mut Problems) {
    problems.push_got(path, format_args!("expected {what}"), value);
}

/// The object at `path`, or a problem.
pub(crate) fn expect_object<'v>(
    value: &'v Value,
    path: &Path<'_>,
    problems: &mut Problems,
) -> Option<&'v Map<String, Value>> {
    match value {
        Value::Object(object) => Some(object),
        _ if path.is_root() => expected("a JSON object at the top level", value, path, problems),
        _ => expected("an object", value, path, problems),
    }
}

/// What an integer field finds in a JSON value.
enum Integral {
    /// A number with an integral value (also a float with no fraction, such as `10.0`,
    /// which a protobuf `Struct` configuration can produce), in range of `i64` or `u64`.
    Value(Int),
    /// An integral number beyond `i64` and `u64`.
    TooLarge,
    /// Anything else.
    Not,
}

/// An integer of either sign. Not an `i128`, whose formatting and division a plugin
/// would link for it.
#[derive(Clone, Copy)]
enum Int {
    Negative(i64),
    NonNegative(u64),
}

/// The integral value of `value`, if it has one.
fn integral(value: &Value) -> Integral {
    let Value::Number(number) = value else {
        return Integral::Not;
    };
    if let Some(n) = number.as_u64() {
        return Integral::Value(Int::NonNegative(n));
    }
    if let Some(n) = number.as_i64() {
        return Integral::Value(Int::Negative(n));
    }
    match number.as_f64() {
        // 2^64 and -2^63 are exact floats; integral floats between convert exactly.
        Some(n) if n.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&n) => {
            Integral::Value(Int::NonNegative(n as u64))
        }
        Some(n) if n.fract() == 0.0 && (-9_223_372_036_854_775_808.0..0.0).contains(&n) => {
            Integral::Value(Int::Negative(n as i64))
        }
        Some(n) if n.fract() == 0.0 => Integral::TooLarge,
        _ => Integral::Not,
    }
}

/// The bounds of an integer type, and what it is called in messages.
struct Bounds {
    name: &'static str,
    what: &'static str,
    min: i64,
    max: u64,
}

/// Reads an integer within `bounds`, or records why not. The one body behind every integer
/// type's [`ConfigValue::from_config`].
fn read_integer(
    value: &Value,
    path: &Path<'_>,
    problems: &mut Problems,
    bounds: &Bounds,
) -> Option<Int> {
    match integral(value) {
        Integral::Value(n) => {
            let fits = match n {
                Int::Negative(n) => n >= bounds.min,
                Int::NonNegative(n) => n <= bounds.max,
            };
            if fits {
                return Some(n);
            }
        }
        Integral::TooLarge => {}
        Integral::Not => return expected(bounds.what, value, path, problems),
    }
    problems.push_got(
        path,
        format_args!(
            "out of range for {} ({}..={})",
            bounds.name,
            Signed(bounds.min),
            bounds.max
        ),
        value,
    );
    None
}

/// An `i64` written as a sign and a `u64`, whose formatting is linked anyway.
struct Signed(i64);

impl std::fmt::Display for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 < 0 {
            f.write_str("-")?;
        }
        std::fmt::Display::fmt(&self.0.unsigned_abs(), f)
    }
}

macro_rules! integers {
    ($($ty:ident: $what:literal),* $(,)?) => {$(
        impl ConfigValue for $ty {
            fn from_config(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Self> {
                const BOUNDS: Bounds = Bounds {
                    name: stringify!($ty),
                    what: $what,
                    #[allow(clippy::cast_possible_wrap, clippy::unnecessary_cast)]
                    min: $ty::MIN as i64,
                    #[allow(clippy::unnecessary_cast)]
                    max: $ty::MAX as u64,
                };
                // In range by `read_integer`, so the conversions cannot fail.
                match read_integer(value, path, problems, &BOUNDS)? {
                    Int::Negative(n) => $ty::try_from(n).ok(),
                    Int::NonNegative(n) => $ty::try_from(n).ok(),
                }
            }

            fn describe() -> Type {
                Type::new(concat!("integer (", stringify!($ty), ")"))
            }
        }
    )*};
}

integers! {
    u8: "an unsigned integer",
    u16: "an unsigned integer",
    u32: "an unsigned integer",
    u64: "an unsigned integer",
    usize: "an unsigned integer",
    i8: "an integer",
    i16: "an integer",
    i32: "an integer",
    i64: "an integer",
    isize: "an integer",
}

impl ConfigValue for f64 {
    fn from_config(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Self> {
        match value.as_f64() {
            Some(n) => Some(n),
            None => expected("a number", value, path, problems),
        }
    }

    fn describe() -> Type {
        Type::new("number (f64)")
    }
}

impl ConfigValue for f32 {
    fn from_config(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Self> {
        match value.as_f64() {
            Some(n) if n.abs() <= f64::from(f32::MAX) => Some(n as f32),
            Some(_) => {
                problems.push_got(path, format_args!("out of range for f32"), value);
                None
            }
            None => expected("a number", value, path, problems),
        }
    }

    fn describe() -> Type {
        Type::new("number (f32)")
    }
}

impl ConfigValue for bool {
    fn from_config(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(*b),
            _ => expected("a boolean", value, path, problems),
        }
    }

    fn describe() -> Type {
        Type::new("boolean")
    }
}

impl ConfigValue for String {
    fn from_config(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Self> {
        match value {
            Value::String(s) => Some(s.clone()),
            _ => expected("a string", value, path, problems),
        }
    }

    fn describe() -> Type {
        Type::new("string")
    }
}

/// The accepted forms of a duration, for messages.
const DURATION_FORMS: &str = "a duration such as \"250ms\", \"5s\" or \"1m30s\"";

/// A duration is a string with its unit (`"250ms"`, `"1m30s"`). An integer is taken only
/// where the key says what it counts (`timeoutMs`) or the field declares it with
/// `#[config(unit = "...")]`: `"window": 10` could mean 10 ms or 10 s, and a wrong guess
/// passes every check.
impl ConfigValue for Duration {
    fn from_config(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Self> {
        let Value::String(text) = value else {
            return integer_duration(value, path, problems);
        };
        match parse_duration(text) {
            Ok(duration) => Some(duration),
            Err(DurationError::Syntax) => expected(DURATION_FORMS, value, path, problems),
            Err(DurationError::TooLarge) => too_large(value, path, problems),
        }
    }

    fn describe() -> Type {
        Type::new("duration")
    }
}

/// A duration written as a number: a count of the path's unit, if it has one.
fn integer_duration(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Duration> {
    match (integral(value), path.unit()) {
        (Integral::Value(Int::NonNegative(count)), Some(unit)) => Some(unit.times(count)),
        (Integral::TooLarge, Some(_)) if value.as_f64().is_some_and(|n| n > 0.0) => {
            too_large(value, path, problems)
        }
        (Integral::Value(Int::NonNegative(count)), None) => {
            problems.push_got(
                path,
                format_args!(
                    "expected a duration with its unit, such as \"{count}s\" or \"{count}ms\""
                ),
                value,
            );
            None
        }
        (_, Some(unit)) => {
            let forms = format_args!("{DURATION_FORMS}, or an integer count of {}", unit.name());
            problems.push_got(path, format_args!("expected {forms}"), value);
            None
        }
        (_, None) => expected(DURATION_FORMS, value, path, problems),
    }
}

/// Records that the duration at `path` is longer than [`Duration::MAX`].
fn too_large(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Duration> {
    problems.push_got(path, format_args!("duration too large"), value);
    None
}

impl<T: ConfigValue> ConfigValue for Option<T> {
    fn from_config(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            _ => T::from_config(value, path, problems).map(Some),
        }
    }

    fn describe() -> Type {
        T::describe()
    }

    fn when_absent() -> Option<Self> {
        Some(None)
    }
}

impl<T: ConfigValue> ConfigValue for Box<T> {
    fn from_config(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Self> {
        T::from_config(value, path, problems).map(Box::new)
    }

    fn describe() -> Type {
        T::describe()
    }

    fn when_absent() -> Option<Self> {
        T::when_absent().map(Box::new)
    }
}

impl<T: ConfigValue> ConfigValue for Vec<T> {
    fn from_config(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Self> {
        let Value::Array(elements) = value else {
            return expected("an array", value, path, problems);
        };
        let mut all = Some(Vec::with_capacity(elements.len()));
        for (index, element) in elements.iter().enumerate() {
            let read = T::from_config(element, &path.index(index), problems);
            match (&mut all, read) {
                (Some(all), Some(read)) => all.push(read),
                _ => all = None,
            }
        }
        all
    }

    fn describe() -> Type {
        Type::list_of(T::describe())
    }
}

/// Reads every value of the object at `path` into `map`, or `None` if any failed.
fn read_map<T: ConfigValue, M: Extend<(String, T)>>(
    mut map: M,
    value: &Value,
    path: &Path<'_>,
    problems: &mut Problems,
) -> Option<M> {
    let object = match value {
        Value::Object(object) => object,
        _ => return expected("an object", value, path, problems),
    };
    let mut ok = true;
    for (key, element) in object {
        match T::from_config(element, &path.key(key), problems) {
            Some(read) if ok => map.extend([(key.clone(), read)]),
            Some(_) => {}
            None => ok = false,
        }
    }
    ok.then_some(map)
}

impl<T: ConfigValue, S: BuildHasher + Default> ConfigValue for HashMap<String, T, S> {
    fn from_config(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Self> {
        read_map(HashMap::default(), value, path, problems)
    }

    fn describe() -> Type {
        Type::map_of(T::describe())
    }
}

impl<T: ConfigValue> ConfigValue for BTreeMap<String, T> {
    fn from_config(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Self> {
        read_map(BTreeMap::new(), value, path, problems)
    }

    fn describe() -> Type {
        Type::map_of(T::describe())
    }
}

impl ConfigValue for Value {
    fn from_config(value: &Value, _: &Path<'_>, _: &mut Problems) -> Option<Self> {
        Some(value.clone())
    }

    fn describe() -> Type {
        Type::new("any JSON")
    }
}

/// `()` is the configuration of a plugin that takes none: an empty object.
impl ConfigValue for () {
    fn from_config(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Self> {
        let object = expect_object(value, path, problems)?;
        super::derive::unknown_keys(object, &[], path, problems);
        object.is_empty().then_some(())
    }

    fn describe() -> Type {
        Type::object("()", <() as super::PluginConfig>::schema)
    }
}

/// Reads configuration bytes as JSON: nothing (or only whitespace) is an empty object.
pub(crate) fn read_json(bytes: &[u8]) -> Result<Value, super::ConfigError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    // A byte order mark is refused as serde_json's errors are, with one message format.
    let read = if bytes.starts_with(b"\xEF\xBB\xBF") {
        Err(None)
    } else {
        serde_json::from_slice(bytes).map_err(Some)
    };
    if read.is_ok() {
        if let Some(duplicate) = duplicate_key(bytes) {
            return Err(duplicate);
        }
    }
    read.map_err(|error| {
        let (line, column, message): (_, _, &dyn std::fmt::Display) = match &error {
            Some(error) => (error.line(), error.column(), error),
            None => (1, 1, &"unexpected byte order mark"),
        };
        let mut text = format!("invalid JSON at line {line}, column {column}: {message}");
        // serde_json ends its message with where it is, which the start already says.
        let position = format!(" at line {line} column {column}");
        if let Some(message) = text.strip_suffix(&position) {
            text.truncate(message.len());
        }
        push_yaml_hint(bytes, &mut text);
        super::ConfigError::new(text)
    })
}

/// After the message of a configuration that looks like YAML (what Envoy's own configuration
/// is written in), a hint with its first `key: value` as JSON writes it: `limit: 3` gives
/// `"limit": 3`, `cluster: auth` gives `"cluster": "auth"`. Nothing for any other
/// configuration. This runs only for a configuration that is refused anyway, and writes the
/// line's pieces into the message as they are, without a string of their own.
fn push_yaml_hint(bytes: &[u8], text: &mut String) {
    let Some(line) = bytes
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .find(|line| !line.is_empty() && *line != b"---" && !line.starts_with(b"#"))
    else {
        return;
    };
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return;
    };
    // The line is trimmed already: the key only at its end, the value at its start.
    let (key, value) = line.split_at(colon);
    let value = value.get(1..).unwrap_or_default();
    let (Ok(key), Ok(value)) = (
        std::str::from_utf8(key.trim_ascii_end()),
        std::str::from_utf8(value.trim_ascii_start()),
    ) else {
        return;
    };
    let is_key = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !is_key {
        return;
    }
    let number = value
        .as_bytes()
        .first()
        .is_some_and(|b| b.is_ascii_digit() || *b == b'-')
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    let (quote, value) = if number || matches!(value, "true" | "false" | "null") {
        ("", value)
    } else if value.is_empty() {
        ("", "{...}")
    } else {
        // Without the quotes YAML may put around it.
        let inner = match value.as_bytes() {
            [first @ (b'\'' | b'"'), .., last] if first == last => value.get(1..value.len() - 1),
            _ => None,
        };
        ("\"", inner.unwrap_or(value))
    };
    for piece in [
        " (this looks like YAML: the configuration must be JSON, such as {\"",
        key,
        "\": ",
        quote,
        value,
        quote,
        "})",
    ] {
        text.push_str(piece);
    }
}

/// The first key given twice in one object of `bytes` (valid JSON, as serde_json just read
/// it), as a problem at the object's path: `serde_json::Value` keeps the last one, and a
/// configuration edited by hand would lose the first one without a word.
///
/// A scan of the bytes rather than a reader of its own: a second instantiation of serde_json's
/// reader, and of `Value`'s maps, would cost every plugin about 12 KB. Keys are compared as
/// written; two spellings of one key through escapes (`"a"`, `"\u0061"`) are not caught.
#[cold]
fn duplicate_key(bytes: &[u8]) -> Option<super::ConfigError> {
    /// Where the scan is: in an object (where its keys start in `keys`, the current key, and
    /// whether a key comes next) or in an array (the current element's index).
    enum Frame<'a> {
        Object {
            first_key: usize,
            key: &'a [u8],
            key_next: bool,
        },
        Array(usize),
    }

    let mut stack: Vec<Frame<'_>> = Vec::new();
    // The keys of every object open, innermost last: one list, so that closing an object
    // only shortens it.
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'{' => stack.push(Frame::Object {
                first_key: keys.len(),
                key: b"",
                key_next: true,
            }),
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                if let Some(Frame::Object { first_key, .. }) = stack.pop() {
                    keys.truncate(first_key);
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key_next, .. }) => *key_next = true,
                Some(Frame::Array(index)) => *index += 1,
                None => {}
            },
            b'"' => {
                let start = at + 1;
                at = start;
                while at < bytes.len() && bytes[at] != b'"' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
                let text = bytes.get(start..at).unwrap_or_default();
                let duplicate = match stack.last_mut() {
                    Some(Frame::Object {
                        first_key,
                        key,
                        key_next,
                    }) if *key_next => {
                        *key_next = false;
                        *key = text;
                        let duplicate = keys.get(*first_key..).is_some_and(|k| k.contains(&text));
                        keys.push(text);
                        duplicate
                    }
                    _ => false,
                };
                if duplicate {
                    let outer = stack.split_last().map_or(&[][..], |(_, outer)| outer);
                    let before = bytes.get(..at).unwrap_or_default();
                    let line_start = before.iter().rposition(|&b| b == b'\n');
                    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
                    let column = at - line_start.map_or(0, |newline| newline + 1) + 1;
                    let path = scan_path(outer, &Path::root());
                    let key = std::str::from_utf8(text).unwrap_or_default();
                    return Some(super::ConfigError::one(super::Problem::new(
                        path,
                        format!("duplicate key `{key}` at line {line}, column {column}"),
                    )));
                }
            }
            _ => {}
        }
        at += 1;
    }

    /// The path of the object the innermost frame is, from the frames around it (`frames`,
    /// below `path`), written as a [`Path`] writes it. One call per level of nesting: at most
    /// 128, the depth serde_json reads before it refuses the configuration.
    fn scan_path(frames: &[Frame<'_>], path: &Path<'_>) -> String {
        match frames.split_first() {
            None => path.to_string(),
            Some((Frame::Object { key, .. }, inner)) => {
                // Valid UTF-8: serde_json read it.
                let key = std::str::from_utf8(key).unwrap_or_default();
                scan_path(inner, &path.key(key))
            }
            Some((Frame::Array(index), inner)) => scan_path(inner, &path.index(*index)),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(bytes: &[u8]) -> String {
        let mut text = String::new();
        push_yaml_hint(bytes, &mut text);
        text
    }

    #[test]
    fn yaml_hint_writes_the_first_pair_as_json() {
        let such_as = |pair: &str| {
            format!(" (this looks like YAML: the configuration must be JSON, such as {{{pair}}})")
        };
        for (yaml, pair) in [
            (&b"limit: 3"[..], r#""limit": 3"#),
            (b"  limit :  -2.5e3  \nother: 1", r#""limit": -2.5e3"#),
            (b"\n---\n# a comment\ncluster: auth", r#""cluster": "auth""#),
            (b"mode: 'fast'", r#""mode": "fast""#),
            (b"mode: \"fast\"", r#""mode": "fast""#),
            (b"failOpen: true", r#""failOpen": true"#),
            (b"upstream:\n  cluster: a", r#""upstream": {...}"#),
            ("name: été".as_bytes(), r#""name": "été""#),
        ] {
            assert_eq!(
                hint(yaml),
                such_as(pair),
                "{:?}",
                String::from_utf8_lossy(yaml)
            );
        }
    }

    #[test]
    fn yaml_hint_is_left_out_when_the_first_line_is_no_pair() {
        for bytes in [
            &b""[..],
            b"# only a comment",
            b"{\"a\": }",
            b"a b: 1",
            b": 1",
            "clé: 1".as_bytes(),
            b"key: \xff",
        ] {
            assert_eq!(hint(bytes), "", "{:?}", String::from_utf8_lossy(bytes));
        }
    }
}
