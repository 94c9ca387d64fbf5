//! The names of the `#[config(...)]` attributes, defined once.

use std::fmt;

use syn::{Ident, Path};

/// An attribute name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Symbol(&'static str);

/// Container: `allow_unknown_keys`.
pub(crate) const ALLOW_UNKNOWN_KEYS: Symbol = Symbol("allow_unknown_keys");
/// `#[config(...)]` itself.
pub(crate) const CONFIG: Symbol = Symbol("config");
/// Field: `default` or `default = <expr>`.
pub(crate) const DEFAULT: Symbol = Symbol("default");
/// Field: `header_name`.
pub(crate) const HEADER_NAME: Symbol = Symbol("header_name");
/// Field: `header_value`.
pub(crate) const HEADER_VALUE: Symbol = Symbol("header_value");
/// Field: `non_empty`.
pub(crate) const NON_EMPTY: Symbol = Symbol("non_empty");
/// Field: `one_of = ["a", "b"]`.
pub(crate) const ONE_OF: Symbol = Symbol("one_of");
/// Field: `range = a..=b`.
pub(crate) const RANGE: Symbol = Symbol("range");
/// Field and variant: `rename = "key"`.
pub(crate) const RENAME: Symbol = Symbol("rename");
/// Container: `rename_all = "snake_case"`.
pub(crate) const RENAME_ALL: Symbol = Symbol("rename_all");
/// Field: `unit = "ms"`.
pub(crate) const UNIT: Symbol = Symbol("unit");
/// Field and struct: `validate = path::to::check`.
pub(crate) const VALIDATE: Symbol = Symbol("validate");

impl PartialEq<Symbol> for Ident {
    fn eq(&self, symbol: &Symbol) -> bool {
        self == symbol.0
    }
}

impl PartialEq<Symbol> for Path {
    fn eq(&self, symbol: &Symbol) -> bool {
        self.is_ident(symbol.0)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
