//! A description of what a configuration accepts, for documentation and error messages.

use std::fmt;

/// Nested objects deeper than this are not expanded when a schema is displayed.
const MAX_DISPLAY_DEPTH: usize = 8;

/// What a configuration struct accepts: its keys, their types, defaults and constraints, and
/// the doc comments written on them.
///
/// Obtained with [`PluginConfig::schema`](crate::PluginConfig::schema). Displays as an
/// indented list, one key per line, with nested objects below their key:
///
/// ```
/// use pwf::PluginConfig;
///
/// /// Fans a request out to a cluster.
/// #[derive(PluginConfig)]
/// struct Config {
///     /// Cluster to send the calls to.
///     #[config(default = "httpbin")]
///     dispatch_cluster: String,
///     #[config(default = 10, range = 1..=100)]
///     dispatch_count: u32,
///     timeout: Option<std::time::Duration>,
/// }
///
/// assert_eq!(
///     Config::schema().to_string(),
///     "Config: Fans a request out to a cluster.\n\
///      - dispatchCluster: string, default \"httpbin\"\n    Cluster to send the calls to.\n\
///      - dispatchCount: integer (u32), default 10, in 1..=100\n\
///      - timeout: duration, optional\n",
/// );
/// ```
#[derive(Clone, Debug)]
pub struct Schema {
    name: &'static str,
    doc: Option<&'static str>,
    fields: Vec<Field>,
}

impl Schema {
    /// A schema for the struct `name`, with its doc comment and its fields. Used by the derive.
    #[doc(hidden)]
    pub fn __new(name: &'static str, doc: Option<&'static str>, fields: Vec<Field>) -> Self {
        Schema { name, doc, fields }
    }

    /// The name of the Rust type.
    ///
    /// ```
    /// use pwf::PluginConfig;
    ///
    /// /// Sends calls.
    /// #[derive(PluginConfig)]
    /// struct Config {
    ///     /// Where to send them.
    ///     #[config(default = "httpbin", non_empty)]
    ///     cluster: String,
    ///     #[config(range = 1..=100)]
    ///     count: u32,
    ///     timeout: Option<std::time::Duration>,
    /// }
    ///
    /// assert_eq!(Config::schema().name(), "Config");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The type's doc comment, joined into one paragraph.
    ///
    /// ```
    /// use pwf::PluginConfig;
    ///
    /// /// Sends calls.
    /// #[derive(PluginConfig)]
    /// struct Config {
    ///     /// Where to send them.
    ///     #[config(default = "httpbin", non_empty)]
    ///     cluster: String,
    ///     #[config(range = 1..=100)]
    ///     count: u32,
    ///     timeout: Option<std::time::Duration>,
    /// }
    ///
    /// assert_eq!(Config::schema().doc(), Some("Sends calls."));
    /// ```
    pub fn doc(&self) -> Option<&'static str> {
        self.doc
    }

    /// Each key, in declaration order.
    ///
    /// ```
    /// use pwf::PluginConfig;
    ///
    /// /// Sends calls.
    /// #[derive(PluginConfig)]
    /// struct Config {
    ///     /// Where to send them.
    ///     #[config(default = "httpbin", non_empty)]
    ///     cluster: String,
    ///     #[config(range = 1..=100)]
    ///     count: u32,
    ///     timeout: Option<std::time::Duration>,
    /// }
    ///
    /// let keys: Vec<&str> = Config::schema().fields().iter().map(|field| field.key()).collect();
    /// assert_eq!(keys, ["cluster", "count", "timeout"]);
    /// ```
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The field whose JSON key is `key`.
    ///
    /// ```
    /// use pwf::PluginConfig;
    ///
    /// /// Sends calls.
    /// #[derive(PluginConfig)]
    /// struct Config {
    ///     /// Where to send them.
    ///     #[config(default = "httpbin", non_empty)]
    ///     cluster: String,
    ///     #[config(range = 1..=100)]
    ///     count: u32,
    ///     timeout: Option<std::time::Duration>,
    /// }
    ///
    /// let schema = Config::schema();
    /// assert!(schema.field("count").is_some());
    /// assert!(schema.field("dispatchCount").is_none());
    /// ```
    pub fn field(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|field| field.key == key)
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        let indent = "  ".repeat(depth);
        for field in &self.fields {
            write!(f, "{indent}- {}: {}", field.key, field.ty.name)?;
            if let Some(default) = field.default {
                write!(f, ", default {default}")?;
            } else if field.required {
                f.write_str(", required")?;
            } else {
                f.write_str(", optional")?;
            }
            for constraint in &field.constraints {
                write!(f, ", {constraint}")?;
            }
            f.write_str("\n")?;
            if let Some(doc) = field.doc {
                writeln!(f, "{indent}    {doc}")?;
            }
            if let Some(schema) = field.ty.schema() {
                if depth < MAX_DISPLAY_DEPTH {
                    schema.write(f, depth + 1)?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        match self.doc {
            Some(doc) => writeln!(f, ": {doc}")?,
            None => f.write_str("\n")?,
        }
        self.write(f, 0)
    }
}

/// One key of a configuration struct.
///
/// ```
/// use pwf::PluginConfig;
///
/// /// Sends calls.
/// #[derive(PluginConfig)]
/// struct Config {
///     /// Where to send them.
///     #[config(default = "httpbin", non_empty)]
///     cluster: String,
///     #[config(range = 1..=100)]
///     count: u32,
///     timeout: Option<std::time::Duration>,
/// }
///
/// let schema = Config::schema();
/// let count = schema.field("count").unwrap();
/// assert_eq!(count.ty().name(), "integer (u32)");
/// assert!(count.is_required());
/// ```
#[derive(Clone, Debug)]
pub struct Field {
    key: &'static str,
    ty: Type,
    required: bool,
    default: Option<&'static str>,
    constraints: Vec<String>,
    doc: Option<&'static str>,
}

impl Field {
    /// A field description. Used by the derive.
    #[doc(hidden)]
    pub fn __new(
        key: &'static str,
        ty: Type,
        required: bool,
        default: Option<&'static str>,
        constraints: Vec<String>,
        doc: Option<&'static str>,
    ) -> Self {
        Field {
            key,
            ty,
            required,
            default,
            constraints,
            doc,
        }
    }

    /// The JSON key, such as `dispatchCount`.
    ///
    /// ```
    /// use pwf::PluginConfig;
    ///
    /// /// Sends calls.
    /// #[derive(PluginConfig)]
    /// struct Config {
    ///     /// Where to send them.
    ///     #[config(default = "httpbin", non_empty)]
    ///     cluster: String,
    ///     #[config(range = 1..=100)]
    ///     count: u32,
    ///     timeout: Option<std::time::Duration>,
    /// }
    ///
    /// let schema = Config::schema();
    /// assert_eq!(schema.fields()[0].key(), "cluster");
    /// ```
    pub fn key(&self) -> &'static str {
        self.key
    }

    /// The type of the value.
    ///
    /// ```
    /// use pwf::PluginConfig;
    ///
    /// /// Sends calls.
    /// #[derive(PluginConfig)]
    /// struct Config {
    ///     /// Where to send them.
    ///     #[config(default = "httpbin", non_empty)]
    ///     cluster: String,
    ///     #[config(range = 1..=100)]
    ///     count: u32,
    ///     timeout: Option<std::time::Duration>,
    /// }
    ///
    /// let schema = Config::schema();
    /// assert_eq!(schema.field("timeout").unwrap().ty().name(), "duration");
    /// ```
    pub fn ty(&self) -> &Type {
        &self.ty
    }

    /// Whether a configuration must give this key: it has no default and is not an `Option`.
    ///
    /// ```
    /// use pwf::PluginConfig;
    ///
    /// /// Sends calls.
    /// #[derive(PluginConfig)]
    /// struct Config {
    ///     /// Where to send them.
    ///     #[config(default = "httpbin", non_empty)]
    ///     cluster: String,
    ///     #[config(range = 1..=100)]
    ///     count: u32,
    ///     timeout: Option<std::time::Duration>,
    /// }
    ///
    /// let schema = Config::schema();
    /// assert!(schema.field("count").unwrap().is_required());
    /// assert!(!schema.field("cluster").unwrap().is_required()); // it has a default
    /// assert!(!schema.field("timeout").unwrap().is_required()); // it is an `Option`
    /// ```
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// The default, as written in the code (`"httpbin"`, `10`), or `Default::default()`.
    ///
    /// ```
    /// use pwf::PluginConfig;
    ///
    /// /// Sends calls.
    /// #[derive(PluginConfig)]
    /// struct Config {
    ///     /// Where to send them.
    ///     #[config(default = "httpbin", non_empty)]
    ///     cluster: String,
    ///     #[config(range = 1..=100)]
    ///     count: u32,
    ///     timeout: Option<std::time::Duration>,
    /// }
    ///
    /// let schema = Config::schema();
    /// assert_eq!(schema.field("cluster").unwrap().default(), Some("\"httpbin\""));
    /// assert_eq!(schema.field("count").unwrap().default(), None);
    /// ```
    pub fn default(&self) -> Option<&'static str> {
        self.default
    }

    /// The checks the value must pass, such as `in 1..=100` or `not empty`.
    ///
    /// ```
    /// use pwf::PluginConfig;
    ///
    /// /// Sends calls.
    /// #[derive(PluginConfig)]
    /// struct Config {
    ///     /// Where to send them.
    ///     #[config(default = "httpbin", non_empty)]
    ///     cluster: String,
    ///     #[config(range = 1..=100)]
    ///     count: u32,
    ///     timeout: Option<std::time::Duration>,
    /// }
    ///
    /// let schema = Config::schema();
    /// assert_eq!(schema.field("count").unwrap().constraints(), ["in 1..=100"]);
    /// assert_eq!(schema.field("cluster").unwrap().constraints(), ["not empty"]);
    /// ```
    pub fn constraints(&self) -> &[String] {
        &self.constraints
    }

    /// The field's doc comment, joined into one paragraph.
    ///
    /// ```
    /// use pwf::PluginConfig;
    ///
    /// /// Sends calls.
    /// #[derive(PluginConfig)]
    /// struct Config {
    ///     /// Where to send them.
    ///     #[config(default = "httpbin", non_empty)]
    ///     cluster: String,
    ///     #[config(range = 1..=100)]
    ///     count: u32,
    ///     timeout: Option<std::time::Duration>,
    /// }
    ///
    /// let schema = Config::schema();
    /// assert_eq!(schema.field("cluster").unwrap().doc(), Some("Where to send them."));
    /// assert_eq!(schema.field("count").unwrap().doc(), None);
    /// ```
    pub fn doc(&self) -> Option<&'static str> {
        self.doc
    }
}

/// The type of a configuration value, as a reader of the configuration sees it: `string`,
/// `integer (u32)`, `duration`, `list of Rule`...
///
/// ```
/// use pwf::config::{ConfigValue, Type};
///
/// assert_eq!(<Vec<String>>::describe().name(), "list of string");
/// assert_eq!(Type::list_of(Type::new("HTTP status")).to_string(), "list of HTTP status");
/// ```
#[derive(Clone, Debug)]
pub struct Type {
    name: String,
    schema: Option<fn() -> Schema>,
}

impl Type {
    /// A type named `name`, without nested keys.
    ///
    /// ```
    /// let status = pwf::config::Type::new("HTTP status");
    /// assert_eq!(status.name(), "HTTP status");
    /// assert!(status.schema().is_none());
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Type {
            name: name.into(),
            schema: None,
        }
    }

    /// An object whose keys `schema` describes.
    ///
    /// ```
    /// use pwf::config::Type;
    /// use pwf::PluginConfig;
    ///
    /// #[derive(PluginConfig)]
    /// struct Upstream {
    ///     cluster: String,
    /// }
    ///
    /// let ty = Type::object("Upstream", Upstream::schema);
    /// assert_eq!(ty.schema().map(|schema| schema.fields().len()), Some(1));
    /// ```
    pub fn object(name: impl Into<String>, schema: fn() -> Schema) -> Self {
        Type {
            name: name.into(),
            schema: Some(schema),
        }
    }

    /// A list of `element`s; nested keys are those of the element.
    ///
    /// ```
    /// use pwf::config::Type;
    ///
    /// assert_eq!(Type::list_of(Type::new("string")).name(), "list of string");
    /// ```
    pub fn list_of(element: Type) -> Self {
        Type {
            name: format!("list of {}", element.name),
            schema: element.schema,
        }
    }

    /// An object mapping any key to `value`s; nested keys are those of the value.
    ///
    /// ```
    /// use pwf::config::Type;
    ///
    /// assert_eq!(Type::map_of(Type::new("integer (u32)")).name(), "map of integer (u32)");
    /// ```
    pub fn map_of(value: Type) -> Self {
        Type {
            name: format!("map of {}", value.name),
            schema: value.schema,
        }
    }

    /// The type's name.
    ///
    /// ```
    /// use pwf::config::{ConfigValue, Type};
    ///
    /// assert_eq!(<bool>::describe().name(), "boolean");
    /// assert_eq!(Type::new("HTTP status").name(), "HTTP status");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The keys of the objects this type holds, when it holds configuration structs.
    ///
    /// ```
    /// use pwf::config::ConfigValue;
    /// use pwf::PluginConfig;
    ///
    /// #[derive(PluginConfig)]
    /// struct Rule {
    ///     path: String,
    /// }
    ///
    /// // A list of rules holds objects with the keys of `Rule`.
    /// let rules = <Vec<Rule>>::describe();
    /// assert_eq!(rules.schema().map(|schema| schema.name()), Some("Rule"));
    /// assert!(<String>::describe().schema().is_none());
    /// ```
    pub fn schema(&self) -> Option<Schema> {
        self.schema.map(|schema| schema())
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}
