//! Checks that the parsed attributes make sense together, before anything is generated.

use std::collections::HashMap;

use syn::{Expr, ExprRange};

use crate::ast::{Body, Field, Input};
use crate::ctxt::Ctxt;

impl Input<'_> {
    /// Records every misuse of the derive found in the input.
    pub(crate) fn validate(&self, cx: &mut Ctxt) {
        let generics = &self.original.generics;
        if !generics.params.is_empty() {
            cx.error_spanned_by(
                generics,
                "`PluginConfig` cannot be derived for a generic type; use concrete types",
            );
        }
        match &self.body {
            Body::Struct(fields) => {
                for field in fields {
                    field.validate(cx);
                }
                unique_keys(cx, fields.iter().map(|field| (field.key.as_str(), field)));
            }
            Body::TupleStruct(fields) => cx.error_spanned_by(
                fields,
                "`PluginConfig` needs named fields: their names are the configuration's keys",
            ),
            Body::Enum(variants) => {
                if let Some((ident, _)) = &self.attrs.validate {
                    cx.error_spanned_by(ident, "`validate` on an enum is not supported");
                }
                if variants.is_empty() {
                    cx.error_spanned_by(
                        &self.original.ident,
                        "`PluginConfig` cannot be derived for an enum without variants",
                    );
                }
                let mut seen = HashMap::new();
                for variant in variants {
                    if !variant.original.fields.is_empty() {
                        cx.error_spanned_by(
                            &variant.original.fields,
                            "`PluginConfig` enums are read from strings: only unit variants are supported",
                        );
                    }
                    if let Some(rename) = &variant.rename {
                        if rename.value().is_empty() {
                            cx.error_spanned_by(rename, "`rename` needs a non-empty string");
                        }
                    }
                    if let Some(first) = seen.insert(variant.key.as_str(), &variant.original.ident)
                    {
                        cx.error_spanned_by(
                            &variant.original.ident,
                            format_args!(
                                "the string \"{}\" is already used by variant `{first}`",
                                variant.key
                            ),
                        );
                    }
                }
            }
            Body::Union(data) => cx.error_spanned_by(
                data.union_token,
                "`PluginConfig` cannot be derived for a union",
            ),
        }
    }
}

impl Field<'_> {
    fn validate(&self, cx: &mut Ctxt) {
        let attrs = &self.attrs;
        if let Some(rename) = &attrs.rename {
            if rename.value().is_empty() {
                cx.error_spanned_by(rename, "`rename` needs a non-empty key");
            }
        }
        if let Some((_, range)) = &attrs.range {
            match range {
                Expr::Range(ExprRange {
                    start: None,
                    end: None,
                    ..
                }) => cx.error_spanned_by(range, "`range` needs at least one bound"),
                Expr::Range(_) => {}
                other => cx.error_spanned_by(
                    other,
                    "expected a range, such as `1..=100`, `1..100`, `1..` or `..=100`",
                ),
            }
        }
    }
}

/// Refuses two fields with the same key.
fn unique_keys<'a>(cx: &mut Ctxt, keys: impl Iterator<Item = (&'a str, &'a Field<'a>)>) {
    let mut seen = HashMap::new();
    for (key, field) in keys {
        if let Some(first) = seen.insert(key, field.ident) {
            let message = format!("the key `{key}` is already used by field `{first}`");
            match &field.attrs.rename {
                Some(rename) => cx.error_spanned_by(rename, message),
                None => cx.error_spanned_by(field.ident, message),
            }
        }
    }
}
