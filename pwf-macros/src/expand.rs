//! Generates the `PluginConfig` and `ConfigValue` impls from the validated input.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{DeriveInput, Expr, ExprRange, RangeLimits};

use crate::ast::{Body, Default, Field, Input, Unit, Variant};
use crate::ctxt::Ctxt;
use crate::fallback;

/// The derive's output: the impls, or the errors and stub impls.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let mut cx = Ctxt::default();
    let ast = Input::from_syn(&mut cx, input);
    ast.validate(&mut cx);
    match cx.check() {
        Ok(()) => match &ast.body {
            Body::Struct(fields) => expand_struct(&ast, fields),
            Body::Enum(variants) => expand_enum(&ast, variants),
            Body::TupleStruct(_) | Body::Union(_) => fallback::expand(input),
        },
        Err(errors) => {
            let errors = errors.into_compile_error();
            let stub = fallback::expand(input);
            quote!(#errors #stub)
        }
    }
}

fn expand_struct(input: &Input<'_>, fields: &[Field<'_>]) -> TokenStream {
    let ident = &input.original.ident;
    let name = ident.to_string();
    let vars: Vec<_> = (0..fields.len())
        .map(|i| format_ident!("__field{i}"))
        .collect();
    let ops: Vec<_> = (0..fields.len())
        .map(|i| format_ident!("__field{i}_ops"))
        .collect();
    let ops_fns = fields.iter().zip(&ops).map(|(field, ops)| {
        let ty = &field.original.ty;
        quote_spanned! {ty.span()=>
            fn #ops() -> ::pwf::__private::FieldOps<#ty> {
                (&::pwf::__private::Wrap::<#ty>::NEW).__ops()
            }
        }
    });
    let reads = fields
        .iter()
        .zip(&vars)
        .zip(&ops)
        .map(|((field, var), ops)| read_field(field, var, ops));
    let idents = fields.iter().map(|field| field.ident);
    let keys = fields.iter().map(|field| &field.key);
    let schema_fields = fields
        .iter()
        .zip(&ops)
        .map(|(field, ops)| schema_field(field, ops));
    // One match on every field read: a missing one drops the others in one place.
    let build = if fields.is_empty() {
        quote!(Self {})
    } else {
        quote! {
            match (#(#vars,)*) {
                (#(::core::option::Option::Some(#vars),)*) => Self {
                    #(#idents: #vars,)*
                },
                _ => return ::core::option::Option::None,
            }
        }
    };
    let unknown_keys = match &input.attrs.allow_unknown_keys {
        Some(_) => quote! {
            ::pwf::__private::ignore_unknown_keys(__object, &[#(#keys),*], __path, __problems);
        },
        None => quote! {
            ::pwf::__private::unknown_keys(__object, &[#(#keys),*], __path, __problems);
        },
    };
    let doc = option_str(input.doc.as_deref());
    let finish = match &input.attrs.validate {
        Some((_, hook)) => quote_spanned! {hook.span()=>
            if ::pwf::__private::check_with(&__this, #hook, __path, __problems) {
                ::core::option::Option::Some(__this)
            } else {
                ::core::option::Option::None
            }
        },
        None => quote!(::core::option::Option::Some(__this)),
    };
    quote! {
        const _: () = {
        #[allow(unused_imports)]
        use ::pwf::__private::{
            ViaConfigValue as _, ViaDefault as _, ViaPluginConfigDefault as _, ViaSerde as _,
        };

        #(#ops_fns)*

        #[automatically_derived]
        impl ::pwf::config::ConfigValue for #ident {
            fn from_config(
                __value: &::pwf::__private::Value,
                __path: &::pwf::config::Path<'_>,
                __problems: &mut ::pwf::config::Problems,
            ) -> ::core::option::Option<Self> {
                let __object = ::pwf::__private::expect_object(__value, __path, __problems)?;
                #(#reads)*
                #unknown_keys
                let __this = #build;
                #finish
            }

            fn describe() -> ::pwf::config::Type {
                ::pwf::config::Type::object(#name, <Self as ::pwf::PluginConfig>::schema)
            }
        }

        #[automatically_derived]
        impl ::pwf::PluginConfig for #ident {
            fn schema() -> ::pwf::config::Schema {
                ::pwf::config::Schema::__new(#name, #doc, ::std::vec![#(#schema_fields),*])
            }
        }
        };
    }
}

/// `let __fieldN: Option<T> = ...;`: the field read, checked, or defaulted.
fn read_field(field: &Field<'_>, var: &syn::Ident, ops: &syn::Ident) -> TokenStream {
    let ty = &field.original.ty;
    let key = &field.key;
    let read = quote!((#ops().read)(__value, &__path, __problems));
    let read = match checks(field) {
        Some(checks) => quote! {
            match #read {
                ::core::option::Option::Some(__x) => {
                    if #checks {
                        ::core::option::Option::Some(__x)
                    } else {
                        ::core::option::Option::None
                    }
                }
                ::core::option::Option::None => ::core::option::Option::None,
            }
        },
        None => read,
    };
    let absent = absent(field, ops);
    let path = match field.unit() {
        Some(unit) => {
            let unit = unit_tokens(unit);
            quote!(__path.key(#key).__in_unit(#unit))
        }
        None => quote!(__path.key(#key)),
    };
    // A declared `unit` needs a duration field.
    let unit_check = field.attrs.unit.as_ref().map(|(name, _)| {
        quote_spanned! {name.span()=>
            let _: ::core::marker::PhantomData<#ty> = ::pwf::__private::unit_field();
        }
    });
    quote! {
        #unit_check
        let #var: ::core::option::Option<#ty> = match ::pwf::__private::field(__object, #key) {
            ::core::option::Option::Some(__value) => {
                let __path = #path;
                #read
            }
            ::core::option::Option::None => #absent,
        };
    }
}

/// The expression checking `__x` against the field's checks, all of them run; the
/// `validate` hook only when the others passed.
fn checks(field: &Field<'_>) -> Option<TokenStream> {
    let attrs = &field.attrs;
    let mut each = Vec::new();
    if let Some((ident, range)) = &attrs.range {
        let span = range_span(ident, range);
        each.push(quote_spanned! {span=>
            ::pwf::__private::check_range(&__x, #range, &__path, __problems)
        });
    }
    // `header_name` refuses an empty name itself, with the same message.
    if let (Some(ident), None) = (&attrs.non_empty, &attrs.header_name) {
        each.push(quote_spanned! {ident.span()=>
            ::pwf::__private::check_non_empty(&__x, &__path, __problems)
        });
    }
    if let Some(ident) = &attrs.header_name {
        each.push(quote_spanned! {ident.span()=>
            ::pwf::__private::check_header_name(&__x, &__path, __problems)
        });
    }
    if let Some(ident) = &attrs.header_value {
        each.push(quote_spanned! {ident.span()=>
            ::pwf::__private::check_header_value(&__x, &__path, __problems)
        });
    }
    if let Some((ident, values)) = &attrs.one_of {
        each.push(quote_spanned! {ident.span()=>
            ::pwf::__private::check_one_of(&__x, &[#(#values),*], &__path, __problems)
        });
    }
    let hook = attrs.validate.as_ref().map(|(_, hook)| {
        quote_spanned! {hook.span()=>
            ::pwf::__private::check_with(&__x, #hook, &__path, __problems)
        }
    });
    match (each.is_empty(), hook) {
        (true, None) => None,
        (true, Some(hook)) => Some(hook),
        (false, None) => Some(quote!(#(#each)&*)),
        (false, Some(hook)) => Some(quote!((#(#each)&*) && #hook)),
    }
}

/// Where a misused `range` is reported: its first bound, or the attribute name.
fn range_span(ident: &syn::Ident, range: &Expr) -> Span {
    match range {
        Expr::Range(ExprRange {
            start: Some(start), ..
        }) => start.span(),
        Expr::Range(ExprRange { end: Some(end), .. }) => end.span(),
        _ => ident.span(),
    }
}

/// The value of an absent key.
fn absent(field: &Field<'_>, ops: &syn::Ident) -> TokenStream {
    let ty = &field.original.ty;
    let key = &field.key;
    match &field.attrs.default {
        Some((_, Default::Literal(syn::Lit::Str(lit)))) => {
            // Read when compiled, in a `const` item: a string that does not fit a duration
            // field panics it, which is a compile error at the literal.
            quote_spanned! {lit.span()=>
                {
                    const __DEFAULT: ::pwf::__private::DefaultText<#ty> = {
                        let __read = ::pwf::__private::default_text(#lit);
                        if __read.is_invalid() {
                            ::core::panic!("this default is not a duration: write one such as \"250ms\", \"5s\" or \"1m30s\"");
                        }
                        __read
                    };
                    ::core::option::Option::Some(__DEFAULT.value(#lit))
                }
            }
        }
        Some((_, Default::Literal(lit))) => {
            // An integer counts the unit the key or `unit` says, if any; a duration field
            // takes no integer without one.
            let literal = match field.unit() {
                Some(unit) => {
                    let unit = unit_tokens(unit);
                    quote_spanned!(lit.span()=> ::pwf::__private::Count(#lit, #unit))
                }
                None => quote!(#lit),
            };
            quote_spanned! {lit.span()=>
                ::core::option::Option::Some::<#ty>(::pwf::__private::default_literal(#literal))
            }
        }
        Some((_, Default::Expr(expr))) => quote_spanned! {expr.span()=>
            ::core::option::Option::Some::<#ty>(#expr)
        },
        Some((ident, Default::Bare)) => quote_spanned! {ident.span()=>
            (&::pwf::__private::Wrap::<#ty>::NEW).__default(&__path.key(#key), __problems)
        },
        None => quote! {{
            let __absent = (#ops().absent)();
            if __absent.is_none() {
                ::pwf::__private::missing(#key, __path, __problems);
            }
            __absent
        }},
    }
}

/// The `IntegerUnit` for `unit`, as tokens.
fn unit_tokens(unit: Unit) -> TokenStream {
    match unit {
        Unit::Millis => quote!(::pwf::__private::IntegerUnit::Millis),
        Unit::Secs => quote!(::pwf::__private::IntegerUnit::Secs),
    }
}

/// `Field::__new(...)` describing the field.
fn schema_field(field: &Field<'_>, ops: &syn::Ident) -> TokenStream {
    let key = &field.key;
    let attrs = &field.attrs;
    let describe = quote!((#ops().describe)());
    let required = match &attrs.default {
        Some(_) => quote!(false),
        None => quote!((#ops().absent)().is_none()),
    };
    let default = match &attrs.default {
        Some((_, Default::Literal(lit))) => Some(source(lit)),
        Some((_, Default::Expr(expr))) => Some(source(expr)),
        Some((_, Default::Bare)) => Some("(the type's default)".to_owned()),
        None => None,
    };
    let default = option_str(default.as_deref());
    let mut constraints = Vec::new();
    if let Some((_, range)) = &attrs.range {
        constraints.push(describe_range(range));
    }
    if attrs.non_empty.is_some() {
        constraints.push("not empty".to_owned());
    }
    if attrs.header_name.is_some() {
        constraints.push("a header name".to_owned());
    }
    if attrs.header_value.is_some() {
        constraints.push("a header value".to_owned());
    }
    if let Some((_, values)) = &attrs.one_of {
        let values: Vec<String> = values.iter().map(|v| format!("{:?}", v.value())).collect();
        constraints.push(format!("one of {}", values.join(", ")));
    }
    if let Some(unit) = field.unit() {
        constraints.push(format!("an integer counts {}", unit.name()));
    }
    if let Some((_, hook)) = &attrs.validate {
        constraints.push(format!("checked by `{}`", source(hook)));
    }
    let doc = option_str(field.doc.as_deref());
    quote! {
        ::pwf::config::Field::__new(
            #key,
            #describe,
            #required,
            #default,
            ::std::vec![#(::std::string::String::from(#constraints)),*],
            #doc,
        )
    }
}

/// `in 1..=100`, `at least 1`, `less than 10`...
fn describe_range(range: &Expr) -> String {
    let Expr::Range(range) = range else {
        return String::new();
    };
    let start = range.start.as_deref().map(source);
    let end = range.end.as_deref().map(source);
    match (start, &range.limits, end) {
        (Some(start), RangeLimits::Closed(_), Some(end)) => format!("in {start}..={end}"),
        (Some(start), RangeLimits::HalfOpen(_), Some(end)) => format!("in {start}..{end}"),
        (Some(start), _, None) => format!("at least {start}"),
        (None, RangeLimits::Closed(_), Some(end)) => format!("at most {end}"),
        (None, RangeLimits::HalfOpen(_), Some(end)) => format!("less than {end}"),
        (None, _, None) => String::new(),
    }
}

/// The tokens as Rust code is usually written: `pwf::config::call_timeout`, `1..=100`,
/// `RateLimit::new(100, Duration::from_secs(60))`. (The compiler's own printing spaces every
/// token, `pwf :: config :: call_timeout`, and the source text is not available on stable.)
fn source(tokens: &impl ToTokens) -> String {
    let mut text = String::new();
    write_source(&mut text, tokens.to_token_stream());
    text
}

/// What was written last, which decides whether a space comes before the next token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Nothing, an opening delimiter, or a token that binds to what follows (`::`, `.`,
    /// `..=`, a unary `&`, `!` or `-`, `<`): no space.
    Glue,
    /// A name, a literal or a closing delimiter: a space before another of those.
    Word,
    /// A comma or a binary operator: a space after it.
    Separator,
}

/// Appends `tokens` to `text`, spaced as in [`source`].
fn write_source(text: &mut String, tokens: TokenStream) {
    use proc_macro2::{Delimiter, Spacing, TokenTree};

    let mut last = Last::Glue;
    for token in tokens {
        match token {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{ ", " }"),
                    Delimiter::None => ("", ""),
                };
                // A call or an index follows its callee without a space; a block does not.
                let space = match group.delimiter() {
                    Delimiter::Brace => last != Last::Glue,
                    _ => last == Last::Separator,
                };
                if space {
                    text.push(' ');
                }
                text.push_str(open);
                write_source(text, group.stream());
                text.push_str(close);
                last = Last::Word;
            }
            TokenTree::Ident(_) | TokenTree::Literal(_) => {
                if last != Last::Glue {
                    text.push(' ');
                }
                text.push_str(&token.to_string());
                last = Last::Word;
            }
            TokenTree::Punct(punct) => {
                let c = punct.as_char();
                let glued_to_next = punct.spacing() == Spacing::Joint;
                let unary = last != Last::Word && matches!(c, '&' | '!' | '-' | '*');
                let binds = matches!(c, ':' | '.' | '<' | '>' | '\'') || unary;
                // `..=`: the `=` of a range binds like the dots.
                let range_end = c == '=' && text.ends_with("..");
                if c == ',' || c == ';' {
                    text.push(c);
                    last = Last::Separator;
                } else if binds || range_end {
                    if last == Last::Separator {
                        text.push(' ');
                    }
                    text.push(c);
                    last = Last::Glue;
                } else {
                    // A binary operator, spaced on both sides; `==`, `=>` and the like are
                    // written whole.
                    if last != Last::Glue || !text.ends_with(|b: char| b.is_ascii_punctuation()) {
                        text.push(' ');
                    }
                    text.push(c);
                    last = if glued_to_next {
                        Last::Glue
                    } else {
                        Last::Separator
                    };
                }
            }
        }
    }
}

/// `Some("text")` or `None`, as tokens.
fn option_str(text: Option<&str>) -> TokenStream {
    match text {
        Some(text) => quote!(::core::option::Option::Some(#text)),
        None => quote!(::core::option::Option::None),
    }
}

fn expand_enum(input: &Input<'_>, variants: &[Variant<'_>]) -> TokenStream {
    let ident = &input.original.ident;
    let keys: Vec<_> = variants.iter().map(|variant| &variant.key).collect();
    let arms = variants.iter().enumerate().map(|(i, variant)| {
        let variant = &variant.original.ident;
        quote!(::core::option::Option::Some(#i) => ::core::option::Option::Some(Self::#variant),)
    });
    quote! {
        #[automatically_derived]
        impl ::pwf::config::ConfigValue for #ident {
            fn from_config(
                __value: &::pwf::__private::Value,
                __path: &::pwf::config::Path<'_>,
                __problems: &mut ::pwf::config::Problems,
            ) -> ::core::option::Option<Self> {
                match ::pwf::__private::read_variant(__value, &[#(#keys),*], __path, __problems) {
                    #(#arms)*
                    _ => ::core::option::Option::None,
                }
            }

            fn describe() -> ::pwf::config::Type {
                ::pwf::__private::variants_type(&[#(#keys),*])
            }
        }
    }
}
