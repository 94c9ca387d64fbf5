//! Problems found in a configuration, where they are, and how they are reported.

use std::fmt;

use serde_json::Value;

use super::duration::IntegerUnit;
use super::show::Got;

/// Stops recording problems after this many; the rest are counted in one last line.
const MAX_PROBLEMS: usize = 50;

/// Where a value sits in the configuration, as a chain of object keys and array indexes.
///
/// A `Path` displays the way the problems name it: `rules[2].path`. The root displays as
/// the empty string. It borrows its parent, so building one per value costs nothing.
///
/// Only needed to implement [`ConfigValue`](crate::config::ConfigValue) by hand.
///
/// ```
/// use pwf::config::Path;
///
/// let root = Path::root();
/// let rules = root.key("rules");
/// let third = rules.index(2);
/// assert_eq!(third.key("path").to_string(), "rules[2].path");
/// assert_eq!(root.to_string(), "");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Path<'a> {
    segment: Segment<'a>,
    /// What an integer counts when a duration is read at this path: set by the derive for a
    /// key that says its unit (`timeoutMs`) or a field with `#[config(unit = ...)]`, kept
    /// for the elements of a list, and cleared under a key.
    unit: Option<IntegerUnit>,
}

#[derive(Clone, Copy, Debug)]
enum Segment<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    /// The top of the configuration.
    ///
    /// ```
    /// let root = pwf::config::Path::root();
    /// assert!(root.is_root());
    /// assert_eq!(root.to_string(), "");
    /// ```
    pub const fn root() -> Self {
        Path {
            segment: Segment::Root,
            unit: None,
        }
    }

    /// The value under `key` of the object at this path.
    ///
    /// ```
    /// use pwf::config::Path;
    ///
    /// let root = Path::root();
    /// let upstream = root.key("upstream");
    /// assert_eq!(upstream.key("cluster").to_string(), "upstream.cluster");
    /// // A key that is not a plain word is quoted.
    /// assert_eq!(root.key("x tag").to_string(), r#"["x tag"]"#);
    /// ```
    pub const fn key(&'a self, key: &'a str) -> Path<'a> {
        Path {
            segment: Segment::Key(self, key),
            unit: None,
        }
    }

    /// The element at `index` of the array at this path.
    ///
    /// ```
    /// use pwf::config::Path;
    ///
    /// let root = Path::root();
    /// let rules = root.key("rules");
    /// assert_eq!(rules.index(0).to_string(), "rules[0]");
    /// ```
    pub const fn index(&'a self, index: usize) -> Path<'a> {
        Path {
            segment: Segment::Index(self, index),
            unit: self.unit,
        }
    }

    /// This path, where an integer read as a duration counts `unit`s. Used by the derive.
    #[doc(hidden)]
    pub const fn __in_unit(self, unit: IntegerUnit) -> Self {
        Path {
            segment: self.segment,
            unit: Some(unit),
        }
    }

    /// What an integer read as a duration counts here, if the key says it.
    pub(crate) const fn unit(&self) -> Option<IntegerUnit> {
        self.unit
    }

    /// Whether this is the top of the configuration.
    ///
    /// ```
    /// use pwf::config::Path;
    ///
    /// let root = Path::root();
    /// assert!(root.is_root());
    /// assert!(!root.key("rules").is_root());
    /// ```
    pub const fn is_root(&self) -> bool {
        matches!(self.segment, Segment::Root)
    }

    /// This path followed by `relative`, written as in a problem (`rules[2].path`, `[0]`).
    pub(crate) fn join(&self, relative: &str) -> String {
        let mut joined = format!("{self}");
        if !joined.is_empty() && !relative.is_empty() && !relative.starts_with('[') {
            joined.push('.');
        }
        joined.push_str(relative);
        joined
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.segment {
            Segment::Root => Ok(()),
            Segment::Key(parent, key) => {
                parent.fmt(f)?;
                if is_plain_key(key) {
                    if !parent.is_root() {
                        f.write_str(".")?;
                    }
                    f.write_str(key)
                } else {
                    f.write_str("[\"")?;
                    super::show::write_escaped(f, key)?;
                    f.write_str("\"]")
                }
            }
            Segment::Index(parent, index) => {
                parent.fmt(f)?;
                write!(f, "[{index}]")
            }
        }
    }
}

/// Whether a key can be written bare in a path (`a.b`), or needs quoting (`a["b c"]`).
fn is_plain_key(key: &str) -> bool {
    // Bytes, not chars: every accepted character is ASCII, and no byte of another
    // character is.
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One thing wrong with a configuration: where it is and what is wrong.
///
/// Displays as `path: message` (`dispatchCount: must be in 1..=100, got 0`), or just the
/// message when the problem concerns the configuration as a whole.
///
/// ```
/// use pwf::config::Problem;
///
/// let problem = Problem::new("dispatchCount", "must be in 1..=100, got 0");
/// assert_eq!(problem.to_string(), "dispatchCount: must be in 1..=100, got 0");
/// assert_eq!(Problem::new("", "expected an object").to_string(), "expected an object");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    path: String,
    message: String,
}

impl Problem {
    /// A problem at `path` (empty for the whole configuration).
    ///
    /// ```
    /// let problem = pwf::config::Problem::new("rules[2].path", "must not be empty");
    /// assert_eq!(problem.path(), "rules[2].path");
    /// ```
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The JSON path of the value at fault, such as `rules[2].path`; empty for the whole
    /// configuration.
    ///
    /// ```
    /// use pwf::PluginConfig;
    ///
    /// #[derive(PluginConfig, Debug)]
    /// struct Config {
    ///     cluster: String,
    /// }
    ///
    /// let error = Config::parse(br#"{"cluster": 7}"#).unwrap_err();
    /// let paths: Vec<&str> = error.problems().map(|problem| problem.path()).collect();
    /// assert_eq!(paths, ["cluster"]);
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong, such as `must be in 1..=100, got 0`.
    ///
    /// ```
    /// let problem = pwf::config::Problem::new("dispatchCount", "must be in 1..=100, got 0");
    /// assert_eq!(problem.message(), "must be in 1..=100, got 0");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// The problems collected while reading a configuration.
///
/// Reading goes on after a problem so that all of them are reported at once. After 50
/// problems the rest are only counted, and reported as one last problem.
///
/// Only needed to implement [`ConfigValue`](crate::config::ConfigValue) by hand.
///
/// ```
/// use pwf::config::{Path, Problems};
///
/// let mut problems = Problems::new();
/// let root = Path::root();
/// problems.push(&root.key("port"), "expected an integer, got \"80\"");
/// assert_eq!(problems.len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct Problems {
    problems: Vec<Problem>,
    omitted: usize,
    /// Unknown keys of a struct with `allow_unknown_keys`: not problems, but logged.
    ignored: Vec<Problem>,
}

impl Problems {
    /// No problems yet.
    ///
    /// ```
    /// let problems = pwf::config::Problems::new();
    /// assert!(problems.is_empty());
    /// ```
    pub fn new() -> Self {
        Problems::default()
    }

    /// Records that the value at `path` is wrong.
    ///
    /// ```
    /// use pwf::config::{Path, Problems};
    ///
    /// let mut problems = Problems::new();
    /// let root = Path::root();
    /// let rules = root.key("rules");
    /// problems.push(&rules.index(1), format!("expected an object, got {}", 3));
    /// assert_eq!(problems.len(), 1);
    /// ```
    pub fn push(&mut self, path: &Path<'_>, message: impl fmt::Display) {
        self.push_dyn(path, &message);
    }

    /// Records `<message>, got <value>`.
    pub(crate) fn push_got(&mut self, path: &Path<'_>, message: fmt::Arguments<'_>, value: &Value) {
        self.push_dyn(path, &format_args!("{message}, got {}", Got(value)));
    }

    /// [`Problems::push`], once for every type of message.
    fn push_dyn(&mut self, path: &Path<'_>, message: &dyn fmt::Display) {
        self.push_problem(Problem::new(format!("{path}"), format!("{message}")));
    }

    /// Records a problem built elsewhere.
    ///
    /// ```
    /// use pwf::config::{Problem, Problems};
    ///
    /// let mut problems = Problems::new();
    /// problems.push_problem(Problem::new("timeout", "must be positive"));
    /// assert!(!problems.is_empty());
    /// ```
    pub fn push_problem(&mut self, problem: Problem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(problem);
        } else {
            self.omitted = self.omitted.saturating_add(1);
        }
    }

    /// How many problems were found so far.
    ///
    /// ```
    /// use pwf::config::{Path, Problems};
    ///
    /// let mut problems = Problems::new();
    /// for _ in 0..3 {
    ///     problems.push(&Path::root(), "invalid");
    /// }
    /// assert_eq!(problems.len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.problems.len().saturating_add(self.omitted)
    }

    /// Whether no problem was found so far.
    ///
    /// ```
    /// use pwf::config::{Path, Problems};
    ///
    /// let mut problems = Problems::new();
    /// assert!(problems.is_empty());
    /// problems.push(&Path::root(), "expected an object");
    /// assert!(!problems.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records an unknown key that a struct with `allow_unknown_keys` ignores.
    pub(crate) fn push_ignored(&mut self, path: &Path<'_>, message: fmt::Arguments<'_>) {
        if self.ignored.len() < MAX_PROBLEMS {
            self.ignored
                .push(Problem::new(format!("{path}"), format!("{message}")));
        }
    }

    /// The error reporting these problems, or, when there are none, the unknown keys that
    /// were ignored.
    pub(crate) fn into_result(self) -> Result<Vec<Problem>, ConfigError> {
        let Problems {
            mut problems,
            omitted,
            ignored,
        } = self;
        if omitted > 0 {
            let s = if omitted == 1 { "" } else { "s" };
            problems.push(Problem::new(
                "",
                format!("... and {omitted} more problem{s}"),
            ));
        }
        if problems.is_empty() {
            Ok(ignored)
        } else {
            Err(ConfigError { problems })
        }
    }
}

/// Why a configuration was refused: every problem found in it.
///
/// Displays one problem per line:
///
/// ```
/// use pwf::PluginConfig;
///
/// #[derive(PluginConfig, Debug)]
/// struct Config {
///     #[config(range = 1..=100)]
///     dispatch_count: u32,
///     auth_cluster: String,
/// }
///
/// let error = Config::parse(br#"{"dispatchCount": 0}"#).unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     "dispatchCount: must be in 1..=100, got 0\nmissing field `authCluster`",
/// );
/// assert_eq!(error.problems().count(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<Problem>,
}

impl ConfigError {
    /// An error made of one problem concerning the whole configuration.
    ///
    /// ```
    /// let error = pwf::config::ConfigError::new("the configuration is not JSON");
    /// assert_eq!(error.to_string(), "the configuration is not JSON");
    /// assert_eq!(error.problems().next().map(|problem| problem.path()), Some(""));
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            problems: vec![Problem::new("", message)],
        }
    }

    /// An error of one problem.
    pub(crate) fn one(problem: Problem) -> Self {
        ConfigError {
            problems: vec![problem],
        }
    }

    /// An error without problems, for a path that is never taken.
    pub(crate) const fn unreachable() -> Self {
        ConfigError {
            problems: Vec::new(),
        }
    }

    /// Each problem, in the order found: fields in declaration order, then unknown keys.
    ///
    /// ```
    /// use pwf::PluginConfig;
    ///
    /// #[derive(PluginConfig, Debug)]
    /// struct Config {
    ///     cluster: String,
    ///     #[config(default = 1)]
    ///     retries: u32,
    /// }
    ///
    /// let error = Config::parse(br#"{"retries": -1}"#).unwrap_err();
    /// for problem in error.problems() {
    ///     // One log line per problem, as pwf writes them when Envoy configures the plugin.
    ///     println!("invalid plugin configuration: {problem}");
    /// }
    /// assert_eq!(error.problems().len(), 2);
    /// ```
    pub fn problems(&self) -> impl ExactSizeIterator<Item = &Problem> + '_ {
        self.problems.iter()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            problem.fmt(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// What a `validate` hook on a configuration struct returns when the values do not fit
/// together.
///
/// A hook blames either the struct as a whole ([`Invalid::new`]) or one of its fields by its
/// key as written in the JSON ([`Invalid::at`]), and can report several problems at once
/// ([`Invalid::and`]). The paths are relative to the struct, so a hook on a nested struct
/// reports `rules[2].timeout: ...` without knowing where it is nested.
///
/// ```
/// use pwf::config::Invalid;
/// use pwf::PluginConfig;
///
/// #[derive(PluginConfig, Debug)]
/// #[config(validate = Self::check)]
/// struct Config {
///     #[config(default = 1)]
///     min_calls: u32,
///     #[config(default = 10)]
///     max_calls: u32,
/// }
///
/// impl Config {
///     fn check(&self) -> Result<(), Invalid> {
///         if self.min_calls > self.max_calls {
///             return Err(Invalid::at(
///                 "minCalls",
///                 format!("must not exceed maxCalls ({}), got {}", self.max_calls, self.min_calls),
///             ));
///         }
///         Ok(())
///     }
/// }
///
/// let error = Config::parse(br#"{"minCalls": 20}"#).unwrap_err();
/// assert_eq!(error.to_string(), "minCalls: must not exceed maxCalls (10), got 20");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    problems: Vec<(String, String)>,
}

impl Invalid {
    /// The struct as a whole is invalid.
    ///
    /// ```
    /// use pwf::config::Invalid;
    ///
    /// fn check(min: u32, max: u32) -> Result<(), Invalid> {
    ///     if min > max {
    ///         return Err(Invalid::new(format!("min ({min}) exceeds max ({max})")));
    ///     }
    ///     Ok(())
    /// }
    /// assert!(check(1, 10).is_ok());
    /// assert_eq!(check(5, 2), Err(Invalid::new("min (5) exceeds max (2)")));
    /// ```
    pub fn new(message: impl fmt::Display) -> Self {
        Invalid::at("", message)
    }

    /// The value at `relative_path` in the struct is invalid. The path is written as in the
    /// JSON and as problems show it: `"authCluster"`, `"rules[2].path"`.
    ///
    /// ```
    /// use pwf::config::Invalid;
    /// use pwf::PluginConfig;
    ///
    /// #[derive(PluginConfig, Debug)]
    /// #[config(validate = Self::check)]
    /// struct Rule {
    ///     path: String,
    /// }
    ///
    /// impl Rule {
    ///     fn check(&self) -> Result<(), Invalid> {
    ///         if !self.path.starts_with('/') {
    ///             return Err(Invalid::at("path", "must start with `/`"));
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// #[derive(PluginConfig, Debug)]
    /// struct Config {
    ///     rules: Vec<Rule>,
    /// }
    ///
    /// let error = Config::parse(br#"{"rules": [{"path": "/a"}, {"path": "b"}]}"#).unwrap_err();
    /// assert_eq!(error.to_string(), "rules[1].path: must start with `/`");
    /// ```
    pub fn at(relative_path: impl Into<String>, message: impl fmt::Display) -> Self {
        Invalid {
            problems: vec![(relative_path.into(), format!("{message}"))],
        }
    }

    /// These problems and the `other` ones.
    ///
    /// ```
    /// use pwf::config::Invalid;
    /// use pwf::PluginConfig;
    ///
    /// #[derive(PluginConfig, Debug)]
    /// #[config(validate = Self::check)]
    /// struct Config {
    ///     #[config(default = 0)]
    ///     min: u32,
    ///     #[config(default = 0)]
    ///     max: u32,
    /// }
    ///
    /// impl Config {
    ///     fn check(&self) -> Result<(), Invalid> {
    ///         let mut invalid = None::<Invalid>;
    ///         for (key, value) in [("min", self.min), ("max", self.max)] {
    ///             if value > 100 {
    ///                 let problem = Invalid::at(key, format!("must be at most 100, got {value}"));
    ///                 invalid = Some(match invalid {
    ///                     Some(earlier) => earlier.and(problem),
    ///                     None => problem,
    ///                 });
    ///             }
    ///         }
    ///         invalid.map_or(Ok(()), Err)
    ///     }
    /// }
    ///
    /// let error = Config::parse(br#"{"min": 200, "max": 300}"#).unwrap_err();
    /// assert_eq!(error.problems().len(), 2);
    /// ```
    #[must_use]
    pub fn and(mut self, other: Invalid) -> Self {
        self.problems.extend(other.problems);
        self
    }

    /// Records these problems, relative to the struct at `path`.
    pub(crate) fn report(mut self, path: &Path<'_>, problems: &mut Problems) {
        for (relative, message) in &mut self.problems {
            problems.push_problem(Problem {
                path: path.join(relative),
                message: std::mem::take(message),
            });
        }
    }
}

impl From<String> for Invalid {
    fn from(message: String) -> Self {
        Invalid {
            problems: vec![(String::new(), message)],
        }
    }
}

impl From<&str> for Invalid {
    fn from(message: &str) -> Self {
        Invalid::new(message)
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (path, message)) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if path.is_empty() {
                f.write_str(message)?;
            } else {
                write!(f, "{path}: {message}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}
