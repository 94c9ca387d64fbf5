//! The derive input parsed into an own representation that keeps the original tokens for
//! error spans. Attributes are only parsed here; [`crate::valid`] checks how they combine.

use syn::ext::IdentExt;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Expr, ExprLit, Fields, Ident, Lit, LitStr, Token};

use crate::case::{RenameRule, RULES};
use crate::ctxt::Ctxt;
use crate::symbol::{
    Symbol, ALLOW_UNKNOWN_KEYS, CONFIG, DEFAULT, HEADER_NAME, HEADER_VALUE, NON_EMPTY, ONE_OF,
    RANGE, RENAME, RENAME_ALL, UNIT, VALIDATE,
};

/// The type deriving `PluginConfig`.
pub(crate) struct Input<'a> {
    pub(crate) original: &'a DeriveInput,
    pub(crate) attrs: ContainerAttrs,
    pub(crate) body: Body<'a>,
    pub(crate) doc: Option<String>,
}

/// What the type holds.
pub(crate) enum Body<'a> {
    /// A struct with named fields (or none, for a unit struct).
    Struct(Vec<Field<'a>>),
    /// A struct with unnamed fields: refused by [`crate::valid`].
    TupleStruct(&'a Fields),
    /// An enum.
    Enum(Vec<Variant<'a>>),
    /// A union: refused by [`crate::valid`].
    Union(&'a syn::DataUnion),
}

/// A named field.
pub(crate) struct Field<'a> {
    pub(crate) original: &'a syn::Field,
    pub(crate) ident: &'a Ident,
    pub(crate) attrs: FieldAttrs,
    pub(crate) doc: Option<String>,
    /// The JSON key, after `rename` and `rename_all`.
    pub(crate) key: String,
}

impl Field<'_> {
    /// What an integer counts if the field is a duration: the declared `unit`, or the one
    /// the key says.
    pub(crate) fn unit(&self) -> Option<Unit> {
        match &self.attrs.unit {
            Some((_, unit)) => Some(*unit),
            None => Unit::of_key(&self.key),
        }
    }
}

/// An enum variant.
pub(crate) struct Variant<'a> {
    pub(crate) original: &'a syn::Variant,
    pub(crate) rename: Option<LitStr>,
    /// The JSON string, after `rename` and `rename_all`.
    pub(crate) key: String,
}

/// The `#[config(...)]` attributes of the struct or enum.
#[derive(Default)]
pub(crate) struct ContainerAttrs {
    pub(crate) rename_all: Option<(RenameRule, LitStr)>,
    pub(crate) validate: Option<(Ident, syn::Path)>,
    /// `allow_unknown_keys`: unknown keys are logged and ignored instead of refused.
    pub(crate) allow_unknown_keys: Option<Ident>,
}

/// The `#[config(...)]` attributes of a field.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    pub(crate) default: Option<(Ident, Default)>,
    pub(crate) rename: Option<LitStr>,
    pub(crate) range: Option<(Ident, Expr)>,
    pub(crate) non_empty: Option<Ident>,
    pub(crate) header_name: Option<Ident>,
    pub(crate) header_value: Option<Ident>,
    pub(crate) one_of: Option<(Ident, Vec<LitStr>)>,
    pub(crate) validate: Option<(Ident, syn::Path)>,
    pub(crate) unit: Option<(LitStr, Unit)>,
}

/// What an integer counts where a duration is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    /// `ms`.
    Millis,
    /// `s`.
    Secs,
}

impl Unit {
    /// The unit named `name` in `unit = "..."`.
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "ms" => Some(Unit::Millis),
            "s" => Some(Unit::Secs),
            _ => None,
        }
    }

    /// The unit a key says at its end, in any case style: `timeoutMs`, `timeout_ms`,
    /// `timeout-ms`, `TIMEOUT_MS`. Not a lowercase `ms` after a letter: `items` says nothing.
    pub(crate) fn of_key(key: &str) -> Option<Self> {
        let says_millis = ["Ms", "_ms", "-ms", "_MS", "-MS"]
            .iter()
            .any(|end| key.len() > end.len() && key.ends_with(end));
        says_millis.then_some(Unit::Millis)
    }

    /// The unit's name in messages and the schema.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::Secs => "s",
        }
    }
}

/// How a field's default is given.
pub(crate) enum Default {
    /// `default`: `Default::default()`, or a nested configuration read from `{}`.
    Bare,
    /// `default = "httpbin"`, `default = 10`: type-checked against the field.
    Literal(Lit),
    /// `default = Mode::Fast` or any other expression of the field's type.
    Expr(Expr),
}

impl<'a> Input<'a> {
    pub(crate) fn from_syn(cx: &mut Ctxt, original: &'a DeriveInput) -> Self {
        let attrs = ContainerAttrs::from_attrs(cx, &original.attrs);
        let rule = attrs
            .rename_all
            .as_ref()
            .map_or(RenameRule::Camel, |(rule, _)| *rule);
        let body = match &original.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(fields) => Body::Struct(
                    fields
                        .named
                        .iter()
                        .filter_map(|field| Field::from_syn(cx, field, rule))
                        .collect(),
                ),
                Fields::Unit => Body::Struct(Vec::new()),
                fields @ Fields::Unnamed(_) => Body::TupleStruct(fields),
            },
            Data::Enum(data) => Body::Enum(
                data.variants
                    .iter()
                    .map(|variant| Variant::from_syn(cx, variant, rule))
                    .collect(),
            ),
            Data::Union(data) => Body::Union(data),
        };
        Input {
            original,
            attrs,
            body,
            doc: doc_of(&original.attrs),
        }
    }
}

impl<'a> Field<'a> {
    fn from_syn(cx: &mut Ctxt, original: &'a syn::Field, rule: RenameRule) -> Option<Self> {
        let ident = original.ident.as_ref()?;
        let attrs = FieldAttrs::from_attrs(cx, &original.attrs);
        let key = match &attrs.rename {
            Some(rename) => rename.value(),
            None => rule.apply_to_field(&ident.unraw().to_string()),
        };
        Some(Field {
            original,
            ident,
            attrs,
            doc: doc_of(&original.attrs),
            key,
        })
    }
}

impl<'a> Variant<'a> {
    fn from_syn(cx: &mut Ctxt, original: &'a syn::Variant, rule: RenameRule) -> Self {
        let mut rename = None;
        for_each_config_meta(cx, &original.attrs, |cx, meta| {
            if meta.path == RENAME {
                let value: LitStr = meta.value()?.parse()?;
                set_once(cx, &meta, &mut rename, value);
                Ok(())
            } else {
                unknown(cx, meta)
            }
        });
        let key = match &rename {
            Some(rename) => rename.value(),
            None => rule.apply_to_variant(&original.ident.unraw().to_string()),
        };
        Variant {
            original,
            rename,
            key,
        }
    }
}

impl ContainerAttrs {
    fn from_attrs(cx: &mut Ctxt, attrs: &[Attribute]) -> Self {
        let mut this = ContainerAttrs::default();
        for_each_config_meta(cx, attrs, |cx, meta| {
            if meta.path == RENAME_ALL {
                let name: LitStr = meta.value()?.parse()?;
                match RenameRule::from_name(&name.value()) {
                    Some(rule) => set_once(cx, &meta, &mut this.rename_all, (rule, name)),
                    None => {
                        let known: Vec<String> = RULES
                            .iter()
                            .map(|(name, _)| format!("\"{name}\""))
                            .collect();
                        cx.error_spanned_by(
                            &name,
                            format_args!(
                                "unknown `rename_all` style {:?}, expected one of {}",
                                name.value(),
                                known.join(", ")
                            ),
                        );
                    }
                }
                Ok(())
            } else if meta.path == VALIDATE {
                let path = meta.value()?.parse()?;
                let ident = attr_ident(&meta);
                set_once(cx, &meta, &mut this.validate, (ident, path));
                Ok(())
            } else if meta.path == ALLOW_UNKNOWN_KEYS {
                no_value(&meta, ALLOW_UNKNOWN_KEYS)?;
                let ident = attr_ident(&meta);
                set_once(cx, &meta, &mut this.allow_unknown_keys, ident);
                Ok(())
            } else {
                unknown(cx, meta)
            }
        });
        this
    }
}

impl FieldAttrs {
    fn from_attrs(cx: &mut Ctxt, attrs: &[Attribute]) -> Self {
        let mut this = FieldAttrs::default();
        for_each_config_meta(cx, attrs, |cx, meta| {
            let ident = attr_ident(&meta);
            if meta.path == DEFAULT {
                let default = if meta.input.peek(Token![=]) {
                    match meta.value()?.parse()? {
                        Expr::Lit(ExprLit { attrs, lit }) if attrs.is_empty() => {
                            Default::Literal(lit)
                        }
                        expr => Default::Expr(expr),
                    }
                } else {
                    Default::Bare
                };
                set_once(cx, &meta, &mut this.default, (ident, default));
            } else if meta.path == RENAME {
                let rename = meta.value()?.parse()?;
                set_once(cx, &meta, &mut this.rename, rename);
            } else if meta.path == RANGE {
                let range = meta.value()?.parse()?;
                set_once(cx, &meta, &mut this.range, (ident, range));
            } else if meta.path == NON_EMPTY {
                no_value(&meta, NON_EMPTY)?;
                set_once(cx, &meta, &mut this.non_empty, ident);
            } else if meta.path == HEADER_NAME {
                no_value(&meta, HEADER_NAME)?;
                set_once(cx, &meta, &mut this.header_name, ident);
            } else if meta.path == HEADER_VALUE {
                no_value(&meta, HEADER_VALUE)?;
                set_once(cx, &meta, &mut this.header_value, ident);
            } else if meta.path == ONE_OF {
                let values = parse_one_of(cx, &meta)?;
                set_once(cx, &meta, &mut this.one_of, (ident, values));
            } else if meta.path == VALIDATE {
                let path = meta.value()?.parse()?;
                set_once(cx, &meta, &mut this.validate, (ident, path));
            } else if meta.path == UNIT {
                let name: LitStr = meta.value()?.parse()?;
                match Unit::from_name(&name.value()) {
                    Some(unit) => set_once(cx, &meta, &mut this.unit, (name, unit)),
                    None => cx.error_spanned_by(
                        &name,
                        format_args!(
                            "unknown `unit` {:?}, expected \"ms\" or \"s\"",
                            name.value()
                        ),
                    ),
                }
            } else {
                unknown(cx, meta)?;
            }
            Ok(())
        });
        this
    }
}

/// `one_of = ["a", "b"]`: the strings, with an error on any element that is not one.
fn parse_one_of(cx: &mut Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<LitStr>> {
    let expr: Expr = meta.value()?.parse()?;
    let Expr::Array(array) = expr else {
        return Err(syn::Error::new_spanned(
            expr,
            "expected a list of strings, such as `one_of = [\"GET\", \"POST\"]`",
        ));
    };
    let mut values = Vec::new();
    for element in &array.elems {
        match element {
            Expr::Lit(ExprLit {
                lit: Lit::Str(value),
                ..
            }) => values.push(value.clone()),
            other => cx.error_spanned_by(other, "`one_of` takes string literals only"),
        }
    }
    if values.is_empty() && array.elems.is_empty() {
        cx.error_spanned_by(&array, "`one_of` needs at least one string");
    }
    Ok(values)
}

/// Calls `each` for every item of every `#[config(...)]` attribute; records parse errors and
/// goes on with the next attribute.
fn for_each_config_meta(
    cx: &mut Ctxt,
    attrs: &[Attribute],
    mut each: impl FnMut(&mut Ctxt, ParseNestedMeta<'_>) -> syn::Result<()>,
) {
    for attr in attrs {
        if *attr.path() != CONFIG {
            continue;
        }
        if let syn::Meta::Path(_) = attr.meta {
            cx.error_spanned_by(attr, "expected `#[config(...)]`");
            continue;
        }
        if let Err(error) = attr.parse_nested_meta(|meta| each(cx, meta)) {
            cx.push(error);
        }
    }
}

/// Records an unknown attribute and skips its value, so that the next ones are still read.
fn unknown(cx: &mut Ctxt, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
    let path = &meta.path;
    let name = quote::quote!(#path).to_string().replace(' ', "");
    cx.error_spanned_by(
        &meta.path,
        format_args!("unknown config attribute `{name}`"),
    );
    if meta.input.peek(Token![=]) {
        let _: Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|_| Ok(()))?;
    }
    Ok(())
}

/// Stores `value` in `slot`, or records that the attribute is given twice.
fn set_once<T>(cx: &mut Ctxt, meta: &ParseNestedMeta<'_>, slot: &mut Option<T>, value: T) {
    if slot.is_some() {
        let name = attr_ident(meta);
        cx.error_spanned_by(
            &meta.path,
            format_args!("duplicate config attribute `{name}`"),
        );
    } else {
        *slot = Some(value);
    }
}

/// Refuses `name = ...` for an attribute that takes no value.
fn no_value(meta: &ParseNestedMeta<'_>, name: Symbol) -> syn::Result<()> {
    if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
        return Err(meta.error(format_args!("`{name}` takes no value")));
    }
    Ok(())
}

/// The attribute's name, with its span.
fn attr_ident(meta: &ParseNestedMeta<'_>) -> Ident {
    meta.path
        .get_ident()
        .cloned()
        .unwrap_or_else(|| Ident::new("config", meta.path.span()))
}

/// The doc comment, its lines trimmed and joined into one paragraph.
fn doc_of(attrs: &[Attribute]) -> Option<String> {
    let mut doc = String::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(syn::MetaNameValue {
            value:
                Expr::Lit(ExprLit {
                    lit: Lit::Str(line),
                    ..
                }),
            ..
        }) = &attr.meta
        {
            let line = line.value();
            let line = line.trim();
            if !line.is_empty() {
                if !doc.is_empty() {
                    doc.push(' ');
                }
                doc.push_str(line);
            }
        }
    }
    (!doc.is_empty()).then_some(doc)
}
