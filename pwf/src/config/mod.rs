//! Typed, validated plugin configuration.
//!
//! A plugin declares its configuration as a struct deriving [`PluginConfig`]. pwf reads
//! Envoy's `configuration` bytes (JSON, from a `StringValue` or a `Struct`) into it once per
//! configure, and refuses the configuration, naming every problem, when it does not fit.
//!
//! ```
//! use std::time::Duration;
//!
//! use pwf::PluginConfig;
//!
//! #[derive(PluginConfig, Debug)]
//! struct Config {
//!     #[config(default = "httpbin")]
//!     dispatch_cluster: String,
//!     #[config(default = 10, range = 1..=100)]
//!     dispatch_count: u32,
//!     #[config(default = "250ms")]
//!     timeout: Duration,
//! }
//!
//! // No configuration at all: every default.
//! let config = Config::parse(b"").unwrap();
//! assert_eq!(config.dispatch_cluster, "httpbin");
//! assert_eq!(config.dispatch_count, 10);
//! assert_eq!(config.timeout, Duration::from_millis(250));
//!
//! let config = Config::parse(br#"{"dispatchCount": 5, "timeout": "2s"}"#).unwrap();
//! assert_eq!(config.dispatch_count, 5);
//! assert_eq!(config.timeout, Duration::from_secs(2));
//!
//! let error = Config::parse(br#"{"dispatchCount": 0, "dispatchClustr": "x"}"#).unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "dispatchCount: must be in 1..=100, got 0\n\
//!      unknown field `dispatchClustr`, did you mean `dispatchCluster`?",
//! );
//! ```
//!
//! # Keys
//!
//! Keys are the field names in camelCase (`dispatch_cluster` is `dispatchCluster`), as in
//! Envoy's own configuration. `#[config(rename = "key")]` on a field sets its key;
//! `#[config(rename_all = "...")]` on the struct chooses another style for all of them:
//! `camelCase`, `snake_case`, `kebab-case`, `PascalCase`, `SCREAMING_SNAKE_CASE`,
//! `lowercase` or `UPPERCASE`. A key the struct does not know is refused, with the closest
//! known key suggested (a swap of two neighbouring letters counts as one typo), and so is a
//! key given twice in one object.
//!
//! `#[config(allow_unknown_keys)]` on a struct accepts keys it does not know instead, and
//! logs each at warning level when the plugin is configured: a configuration written for
//! the next version of a plugin then loads in the current one during a rollout. Only that
//! struct accepts them; rejection is the default.
//!
//! # Types
//!
//! A field can have any type implementing [`ConfigValue`]: `bool`, `String`, integers,
//! floats, [`Duration`](std::time::Duration) (see [Durations](#durations)), `Option<T>`, `Vec<T>`, `Box<T>`, `HashMap<String, T>`,
//! `BTreeMap<String, T>`, [`serde_json::Value`], another struct deriving `PluginConfig` (which
//! keeps its own defaults and checks), or an enum of unit variants deriving `PluginConfig`
//! (read from a string: the variant's name in camelCase unless renamed). A field of any other
//! type implementing `serde::de::DeserializeOwned` is read by serde, with serde's messages.
//! Integers also accept a float without fraction (`10.0`).
//!
//! # Durations
//!
//! A duration is a string with its unit: `"250ms"`, `"1.5s"`, `"1m30s"` (units `ns`, `us`,
//! `µs`, `ms`, `s`, `m`, `h`). An integer is read as a duration only where its unit is said:
//! under a key ending in `Ms` in its case style (`timeoutMs`, `timeout_ms`, `TIMEOUT_MS`),
//! where it counts milliseconds, or in a field with `#[config(unit = "ms")]` or
//! `#[config(unit = "s")]`. Anywhere else `"window": 10` could mean 10 ms or 10 s, so it is
//! refused, with the strings to write instead. A `default` follows the same rule, and a
//! default string that is not a duration does not compile.
//!
//! ```
//! use std::time::Duration;
//!
//! use pwf::PluginConfig;
//!
//! #[derive(PluginConfig, Debug)]
//! struct Config {
//!     #[config(default = 5000)]
//!     timeout_ms: Duration,
//!     #[config(default = 60, unit = "s")]
//!     window: Duration,
//!     #[config(default = "10s")]
//!     block_for: Duration,
//! }
//!
//! let config = Config::parse(b"").unwrap();
//! assert_eq!(config.timeout_ms, Duration::from_secs(5));
//! assert_eq!(config.window, Duration::from_secs(60));
//!
//! let error = Config::parse(br#"{"blockFor": 10}"#).unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     r#"blockFor: expected a duration with its unit, such as "10s" or "10ms", got 10"#,
//! );
//! ```
//!
//! # Defaults
//!
//! A key that is absent takes its field's default; absent bytes or an empty configuration
//! give every default. Without a default, an absent `Option` is `None` and any other absent
//! key is an error (``missing field `authCluster` ``).
//!
//! | field attribute | default value |
//! | --- | --- |
//! | `#[config(default = "httpbin")]` | a literal of the field's type; a string for a `String` or a `Duration` |
//! | `#[config(default = Mode::Fast)]` | any other expression of the field's type |
//! | `#[config(default)]` | a struct deriving `PluginConfig` is read from `{}`; any other type takes its [`Default`] |
//!
//! Defaults are not checked against `range` and the other checks: they are the plugin's own.
//! A string default of a `Duration` field is read when the plugin is compiled: one that is not
//! a duration is a compile error at the literal.
//!
//! # Checks
//!
//! | field attribute | on | refuses |
//! | --- | --- | --- |
//! | `range = 1..=100`, `1..100`, `1..`, `..=100` | numbers and `Option`s of them | a number outside: `must be in 1..=100, got 0` |
//! | `non_empty` | strings, lists, maps and `Option`s of them | an empty one: `must not be empty` |
//! | `one_of = ["GET", "POST"]` | strings and `Option<String>` | any other string: `must be one of "GET", "POST", got "PUT"` |
//! | `header_name` | strings and `Option<String>` | what is not an RFC 9110 token (or `:` and a token), as the header setters do: ``must be a header name (a token: letters, digits and !#$%&'*+-.^_`|~), got "x pwf" with a space at byte 1`` |
//! | `header_value` | strings and `Option<String>` | a CR, LF or NUL, as the header setters do: `must be a header value without CR, LF or NUL, got "a\r\nb" with a CR at byte 1` |
//! | `validate = path::to::check` | any type `T` | what `fn check(&T) -> Result<(), E>` refuses |
//!
//! A `validate` hook runs after the field's other checks passed. It may take any borrowed
//! form of the field (`fn(&str)` for a `String`, `fn(&[Rule])` for a `Vec<Rule>`). `E` is
//! `String`, `&str` or [`Invalid`]; the problem is reported at the field's path (an
//! [`Invalid::at`] path is relative to the field, such as `"[2]"` for a list's element).
//!
//! `#[config(validate = Self::check)]` on the struct runs `fn check(&Self) -> Result<(), E>`
//! once every field was read and passed its checks, for rules across fields. It can blame
//! the struct or any of its fields (see [`Invalid`]).
//!
//! # Errors
//!
//! Each problem names the JSON path, what is wrong and the value given, and all problems are
//! reported together, one per line:
//!
//! ```text
//! dispatchCount: must be in 1..=100, got 0
//! rules[2].path: must not be empty
//! unknown field `dispatchCont`, did you mean `dispatchCount`?
//! duplicate key `limit` at line 1, column 33
//! invalid JSON at line 1, column 17: expected `,` or `}`
//! expected a JSON object at the top level, got an array
//! ```
//!
//! Reading never panics, whatever the bytes.
//!
//! # Schema
//!
//! [`PluginConfig::schema`] describes the keys, their types, defaults, checks and doc
//! comments, and displays as a readable list (see [`Schema`]).

pub(crate) mod derive;
mod duration;
mod error;
mod schema;
mod show;
mod suggest;
mod value;

pub use duration::call_timeout;
pub(crate) use duration::timeout_millis;
pub use error::{ConfigError, Invalid, Path, Problem, Problems};
pub use schema::{Field, Schema, Type};
pub use value::ConfigValue;

/// A plugin configuration, read from Envoy's `configuration` bytes.
///
/// Derive it with `#[derive(PluginConfig)]` (see [the module](self) for the attributes). A
/// plugin without configuration uses `()`, which accepts no bytes or `{}` only.
///
/// ```
/// use pwf::PluginConfig;
///
/// assert!(<()>::parse(b"").is_ok());
/// assert!(<()>::parse(b"{}").is_ok());
/// assert_eq!(
///     <()>::parse(br#"{"cluster": "x"}"#).unwrap_err().to_string(),
///     "unknown field `cluster`, this configuration takes no fields",
/// );
/// ```
pub trait PluginConfig: ConfigValue {
    /// Reads a configuration from its bytes: JSON whose top level is an object. No bytes (or
    /// only whitespace) read as `{}`. Never panics.
    ///
    /// # Errors
    ///
    /// Every problem found: invalid JSON, a top level that is not an object, unknown or
    /// missing keys, values of the wrong type, failed checks.
    ///
    /// ```
    /// use pwf::PluginConfig;
    ///
    /// #[derive(PluginConfig, Debug)]
    /// struct Config {
    ///     #[config(default = 3)]
    ///     retries: u32,
    /// }
    ///
    /// assert_eq!(Config::parse(b"").unwrap().retries, 3);
    /// assert_eq!(Config::parse(br#"{"retries": 5}"#).unwrap().retries, 5);
    /// assert_eq!(
    ///     Config::parse(b"[1]").unwrap_err().to_string(),
    ///     "expected a JSON object at the top level, got an array",
    /// );
    /// ```
    fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        parse_slice(bytes).map(|(config, _)| config)
    }

    /// Describes the keys this configuration accepts.
    ///
    /// ```
    /// use pwf::PluginConfig;
    ///
    /// #[derive(PluginConfig)]
    /// struct Config {
    ///     #[config(default = 3)]
    ///     retries: u32,
    /// }
    ///
    /// let schema = Config::schema();
    /// assert_eq!(schema.fields()[0].key(), "retries");
    /// println!("{schema}"); // the keys, for the plugin's documentation
    /// ```
    fn schema() -> Schema;
}

/// What [`PluginConfig::parse`] does, with the unknown keys ignored.
fn parse_slice<C: PluginConfig>(bytes: &[u8]) -> Result<(C, Vec<Problem>), ConfigError> {
    let mut config = None;
    let ignored = read_config(bytes, &mut read_into(&mut config))?;
    // `read_config` is `Ok` only when the closure read a configuration.
    let config = config.ok_or(ConfigError::unreachable())?;
    Ok((config, ignored))
}

/// The `read` that [`read_config`] takes for a `C`: it reads the top-level value into
/// `config`, and says whether it read one.
pub(crate) fn read_into<C: PluginConfig>(
    config: &mut Option<C>,
) -> impl FnMut(&serde_json::Value, &mut Problems) -> bool + '_ {
    |value, problems| {
        *config = C::from_config(value, &Path::root(), problems);
        config.is_some()
    }
}

/// Reads `bytes` as JSON and gives the value to `read`, which returns whether it read a
/// configuration; `Ok`, with the unknown keys ignored, when it did and found no problem. Out
/// of the generic [`PluginConfig::parse`], so that one copy of this code serves every
/// configuration type: a JSON value dropped in code instantiated in the plugin's crate would
/// link a second copy of `Value`'s drop glue next to the one serde_json's reader uses.
pub(crate) fn read_config(
    bytes: &[u8],
    read: &mut dyn FnMut(&serde_json::Value, &mut Problems) -> bool,
) -> Result<Vec<Problem>, ConfigError> {
    let value = value::read_json(bytes)?;
    let mut problems = Problems::new();
    if !read(&value, &mut problems) && problems.is_empty() {
        problems.push(&Path::root(), "invalid configuration");
    }
    drop(value);
    problems.into_result()
}

impl PluginConfig for () {
    fn schema() -> Schema {
        Schema::__new("()", Some("No configuration."), Vec::new())
    }
}
