//! `cargo xtask new <name> [--dir DIR]`: create a new plugin crate from
//! `templates/plugin/`.
//!
//! The new crate is its own workspace (it builds wherever it is put), depends
//! on `pwf`, `pwf-test` and `envoy-harness` by version, taken from this checkout
//! through `[patch.crates-io]`, builds a `.wasm` for
//! `wasm32-wasip1` with the release profile of pwf's own examples, carries a
//! native-host test and an `envoy.yaml` in the examples' layout.
//!
//! The template files are compiled into xtask, so the command works from any
//! directory. Placeholders:
//!
//! | placeholder | for `my-plugin` |
//! | --- | --- |
//! | `{{project-name}}` | `my-plugin` (package, plugin and VM name) |
//! | `{{crate_name}}` | `my_plugin` (the Rust crate, the `.wasm` file) |
//! | `{{project-name \| pascal_case}}` | `MyPlugin` (the plugin type) |
//! | `{{pwf_patch}}` | a `[patch.crates-io]` section: pwf's crates from this checkout |
//!
//! These are `cargo generate`'s names (its built-in `project-name` and `crate_name`, its
//! `pascal_case` filter), so `templates/plugin` is also a `cargo generate` template, whose
//! `init.rhai` sets `pwf_patch` to nothing: the crates then come from crates.io.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The template: each file's path in the new crate and its text.
const TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../templates/plugin/Cargo.toml"),
    ),
    (
        ".gitignore",
        include_str!("../../templates/plugin/.gitignore"),
    ),
    (
        ".cargo/config.toml",
        include_str!("../../templates/plugin/.cargo/config.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../templates/plugin/src/lib.rs"),
    ),
    (
        "tests/plugin.rs",
        include_str!("../../templates/plugin/tests/plugin.rs"),
    ),
    (
        "tests/envoy.rs",
        include_str!("../../templates/plugin/tests/envoy.rs"),
    ),
    (
        "envoy.yaml",
        include_str!("../../templates/plugin/envoy.yaml"),
    ),
    (
        "README.md",
        include_str!("../../templates/plugin/README.md"),
    ),
];

/// Names the template's source code uses next to the plugin type, and the
/// prelude's: a plugin type of one of these names would not compile.
const TAKEN_TYPE_NAMES: &[&str] = &[
    // The template's imports.
    "Rc",
    "Action",
    "Error",
    "Http",
    "HttpFilter",
    "Plugin",
    "PluginConfig",
    "PluginContext",
    // The prelude.
    "Option",
    "Some",
    "None",
    "Result",
    "Ok",
    "Err",
    "String",
    "Vec",
    "Box",
    "ToString",
    "ToOwned",
    "Clone",
    "Copy",
    "Send",
    "Sync",
    "Sized",
    "Unpin",
    "Drop",
    "Fn",
    "FnMut",
    "FnOnce",
    "Default",
    "Iterator",
    "IntoIterator",
    "Extend",
    "From",
    "Into",
    "TryFrom",
    "TryInto",
    "AsRef",
    "AsMut",
    "PartialEq",
    "PartialOrd",
    "Eq",
    "Ord",
    "Debug",
    "Hash",
];

/// Crate names that would clash with a dependency or a built-in crate, or
/// that cargo refuses.
const TAKEN_CRATE_NAMES: &[&str] = &[
    "pwf",
    "pwf_test",
    "pwf_macros",
    "proxy_wasm",
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
    "self",
    "crate",
    "super",
];

/// Rust keywords: a crate name that is one cannot be written in `use`.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
    "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where", "while",
    "abstract", "become", "box", "do", "final", "gen", "macro", "override", "priv", "try",
    "typeof", "unsized", "virtual", "yield",
];

/// Why a plugin crate was not created.
#[derive(Debug)]
pub(crate) enum ScaffoldError {
    /// The name cannot be a plugin crate's name.
    InvalidName {
        /// The name given.
        name: String,
        /// Why not.
        reason: String,
    },
    /// The destination exists and is not an empty directory.
    Exists(PathBuf),
    /// `pwf_path` is not the pwf crate.
    NotPwf(PathBuf),
    /// A file could not be written.
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
}

impl fmt::Display for ScaffoldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScaffoldError::InvalidName { name, reason } => {
                write!(f, "`{name}` cannot name a plugin crate: {reason}")
            }
            ScaffoldError::Exists(path) => write!(
                f,
                "{} already exists and is not empty; refusing to overwrite it",
                path.display()
            ),
            ScaffoldError::NotPwf(path) => write!(
                f,
                "{} is not the pwf crate (no Cargo.toml with `name = \"pwf\"`)",
                path.display()
            ),
            ScaffoldError::Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for ScaffoldError {}

fn invalid(name: &str, reason: impl Into<String>) -> ScaffoldError {
    ScaffoldError::InvalidName {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

/// The Rust crate name of package `name`: dashes become underscores.
pub(crate) fn crate_name(name: &str) -> String {
    name.replace('-', "_")
}

/// The plugin type's name: `my-plugin` and `my_plugin` give `MyPlugin`.
pub(crate) fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect()
}

/// Checks that `name` can name a plugin crate: lowercase ASCII letters,
/// digits, `-` and `_`, starting with a letter, at most 64 characters, and
/// neither a keyword, a dependency's name nor a name the template's code
/// already uses for a type.
pub(crate) fn validate_name(name: &str) -> Result<(), ScaffoldError> {
    if name.is_empty() {
        return Err(invalid(name, "the name is empty"));
    }
    if name.len() > 64 {
        return Err(invalid(name, "the name is longer than 64 characters"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Err(invalid(
            name,
            format!("`{bad}` is not allowed: use lowercase letters, digits, `-` and `_`"),
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(invalid(name, "the name must start with a letter"));
    }
    let crate_name = crate_name(name);
    if KEYWORDS.contains(&crate_name.as_str()) {
        return Err(invalid(name, "it is a Rust keyword"));
    }
    if TAKEN_CRATE_NAMES.contains(&crate_name.as_str()) {
        return Err(invalid(
            name,
            "it is the name of a dependency or a built-in crate",
        ));
    }
    let type_name = type_name(name);
    if TAKEN_TYPE_NAMES.contains(&type_name.as_str()) {
        return Err(invalid(
            name,
            format!("its plugin type `{type_name}` would clash with a name the template uses"),
        ));
    }
    Ok(())
}

fn io(path: &Path) -> impl FnOnce(io::Error) -> ScaffoldError + '_ {
    move |error| ScaffoldError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// The crates of the checkout at `root` that a plugin crate depends on: each is patched in
/// from the checkout (their own dependencies on each other are by path already).
const PATCHED: &[(&str, &str)] = &[
    ("pwf", "pwf"),
    ("pwf-test", "pwf-test"),
    ("envoy-harness", "envoy/harness"),
];

/// The `[patch.crates-io]` section that takes pwf's crates from the checkout at `root`.
pub(crate) fn patch_section(root: &Path) -> String {
    let mut section = String::from(
        "\n# pwf's crates from a local checkout. Delete this section to take them from\n\
         # crates.io instead, at the versions above.\n[patch.crates-io]\n",
    );
    for (package, dir) in PATCHED {
        section.push_str(&format!(
            "{package} = {{ path = '{}' }}\n",
            toml_path(&root.join(dir))
        ));
    }
    section
}

/// Fills the template's placeholders.
fn fill(text: &str, name: &str, root: &Path) -> String {
    text.replace("{{project-name | pascal_case}}", &type_name(name))
        .replace("{{project-name}}", name)
        .replace("{{crate_name}}", &crate_name(name))
        .replace("{{pwf_patch}}", &patch_section(root))
}

/// A path for a TOML literal string (single quotes: no escapes, so Windows
/// backslashes stay as they are).
fn toml_path(path: &Path) -> String {
    path.display().to_string()
}

/// Creates plugin crate `name` in directory `dest_dir` (created; it must not
/// exist, or be empty), depending on the pwf crate at `pwf_path` and on
/// `pwf-test` next to it. Returns the files written.
pub(crate) fn new_plugin(
    name: &str,
    dest_dir: &Path,
    pwf_path: &Path,
) -> Result<Vec<PathBuf>, ScaffoldError> {
    validate_name(name)?;

    let pwf = fs::canonicalize(pwf_path).map_err(|_| ScaffoldError::NotPwf(pwf_path.into()))?;
    let manifest = fs::read_to_string(pwf.join("Cargo.toml"))
        .map_err(|_| ScaffoldError::NotPwf(pwf_path.into()))?;
    if !manifest.lines().any(|line| line.trim() == "name = \"pwf\"") {
        return Err(ScaffoldError::NotPwf(pwf_path.into()));
    }
    let root = pwf.parent().unwrap_or(&pwf).to_path_buf();

    match fs::read_dir(dest_dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(ScaffoldError::Exists(dest_dir.into()));
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(_) if dest_dir.exists() => return Err(ScaffoldError::Exists(dest_dir.into())),
        Err(error) => return Err(io(dest_dir)(error)),
    }

    let mut written = Vec::with_capacity(TEMPLATE.len());
    for (relative, text) in TEMPLATE {
        let path = dest_dir.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        fs::write(&path, fill(text, name, &root)).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pwf_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../pwf")
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pwf-scaffold-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn new_plugin_writes_every_template_file() {
        let dir = scratch("files");
        let written = new_plugin("my-plugin", &dir, &pwf_path()).unwrap();
        let mut relative: Vec<String> = written
            .iter()
            .map(|path| {
                path.strip_prefix(&dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect();
        relative.sort();
        assert_eq!(
            relative,
            [
                ".cargo/config.toml",
                ".gitignore",
                "Cargo.toml",
                "README.md",
                "envoy.yaml",
                "src/lib.rs",
                "tests/envoy.rs",
                "tests/plugin.rs"
            ]
        );
        for path in &written {
            assert!(path.is_file(), "{}", path.display());
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn new_plugin_fills_every_placeholder() {
        let dir = scratch("placeholders");
        let written = new_plugin("my-plugin", &dir, &pwf_path()).unwrap();
        for path in &written {
            let text = fs::read_to_string(path).unwrap();
            assert!(
                !text.contains("{{"),
                "{} keeps a placeholder",
                path.display()
            );
        }
        let read = |relative: &str| fs::read_to_string(dir.join(relative)).unwrap();

        let cargo = read("Cargo.toml");
        assert!(cargo.contains("name = \"my-plugin\""));
        let pwf = fs::canonicalize(pwf_path()).unwrap();
        assert!(cargo.contains(&format!("pwf = {{ path = '{}' }}", pwf.display())));
        let root = pwf.parent().unwrap();
        let pwf_test = root.join("pwf-test");
        assert!(cargo.contains(&format!("pwf-test = {{ path = '{}' }}", pwf_test.display())));
        let harness = root.join("envoy/harness");
        assert!(cargo.contains(&format!(
            "envoy-harness = {{ path = '{}' }}",
            harness.display()
        )));
        // By version, with the checkout patched in: deleting the patch is the one change
        // that takes the crates from crates.io.
        assert!(cargo.contains("\n[dependencies]\npwf = \"0.1.0\"\n"));
        assert!(cargo.contains("\n[patch.crates-io]\n"));
        assert!(cargo.contains("crate-type = [\"cdylib\", \"rlib\"]"));
        assert!(cargo.contains("\n[workspace]\n"));
        for setting in [
            "lto = true",
            "opt-level = 3",
            "codegen-units = 1",
            "panic = \"abort\"",
            "strip = \"debuginfo\"",
        ] {
            assert!(cargo.contains(setting), "missing `{setting}`");
        }

        let lib = read("src/lib.rs");
        assert!(lib.contains("pub struct MyPlugin {"));
        assert!(lib.contains("pub struct MyPluginConfig {"));
        assert!(lib.contains("pwf::main!(MyPlugin);"));
        assert!(lib.contains("#[config(default = \"my-plugin\")]"));

        let test = read("tests/plugin.rs");
        assert!(test.contains("use my_plugin::MyPlugin as Subject;"));
        assert!(test.contains("const NAME: &str = \"my-plugin\";"));

        let envoy = read("envoy.yaml");
        assert!(envoy.contains("filename: target/wasm32-wasip1/release/my_plugin.wasm"));
        assert!(envoy.contains("vm_id: my-plugin"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn new_plugin_refuses_a_non_empty_directory_and_leaves_it_alone() {
        let dir = scratch("exists");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("Cargo.toml"), "mine").unwrap();
        let error = new_plugin("my-plugin", &dir, &pwf_path()).unwrap_err();
        assert!(matches!(error, ScaffoldError::Exists(_)), "{error}");
        assert_eq!(fs::read_to_string(dir.join("Cargo.toml")).unwrap(), "mine");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn new_plugin_refuses_a_file_in_the_way() {
        let dir = scratch("file");
        fs::write(&dir, "a file").unwrap();
        let error = new_plugin("my-plugin", &dir, &pwf_path()).unwrap_err();
        assert!(matches!(error, ScaffoldError::Exists(_)), "{error}");
        assert_eq!(fs::read_to_string(&dir).unwrap(), "a file");
        fs::remove_file(dir).unwrap();
    }

    #[test]
    fn new_plugin_fills_an_empty_directory() {
        let dir = scratch("empty");
        fs::create_dir_all(&dir).unwrap();
        new_plugin("edge", &dir, &pwf_path()).unwrap();
        assert!(dir.join("src/lib.rs").is_file());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn new_plugin_refuses_a_path_that_is_not_pwf() {
        let dir = scratch("not-pwf");
        let error =
            new_plugin("my-plugin", &dir, Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap_err();
        assert!(matches!(error, ScaffoldError::NotPwf(_)), "{error}");
        assert!(!dir.exists());
    }

    #[test]
    fn bad_names_are_refused_before_anything_is_written() {
        let dir = scratch("bad-names");
        for name in [
            "",
            "My-Plugin",
            "my plugin",
            "my.plugin",
            "über",
            "1plugin",
            "-plugin",
            "_plugin",
            "fn",
            "async",
            "pwf",
            "pwf-test",
            "test",
            "plugin",
            "http",
            "option",
            "result",
            "string",
            &"a".repeat(65),
        ] {
            let error = new_plugin(name, &dir, &pwf_path()).unwrap_err();
            assert!(
                matches!(error, ScaffoldError::InvalidName { .. }),
                "`{name}` was accepted"
            );
        }
        assert!(!dir.exists());
    }

    #[test]
    fn good_names_are_accepted() {
        for name in ["a", "my-plugin", "my_plugin", "auth2", "rate-limit-v2"] {
            validate_name(name).unwrap();
        }
    }

    #[test]
    fn names_map_to_crate_and_type_names() {
        assert_eq!(crate_name("my-plugin"), "my_plugin");
        assert_eq!(type_name("my-plugin"), "MyPlugin");
        assert_eq!(type_name("my_plugin"), "MyPlugin");
        assert_eq!(type_name("rate-limit-v2"), "RateLimitV2");
        assert_eq!(type_name("a--b"), "AB");
    }

    #[test]
    fn invalid_name_message_says_why() {
        let error = validate_name("My-Plugin").unwrap_err().to_string();
        assert_eq!(
            error,
            "`My-Plugin` cannot name a plugin crate: `M` is not allowed: use lowercase letters, digits, `-` and `_`"
        );
        let error = validate_name("plugin").unwrap_err().to_string();
        assert!(
            error.contains("its plugin type `Plugin` would clash"),
            "{error}"
        );
    }
}
