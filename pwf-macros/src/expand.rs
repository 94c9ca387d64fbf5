//! Generates the `PluginConfig` and `ConfigValue` impls from the validated input.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{DeriveInput, Expr, ExprRange, RangeLimits};

use crate::ast::{Body, Default, Field, Input, Variant};
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
                ::pwf::__private::unknown_keys(__object, &[#(#keys),*], __path, __problems);
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
    quote! {
        let #var: ::core::option::Option<#ty> = match ::pwf::__private::field(__object, #key) {
            ::core::option::Option::Some(__value) => {
                let __path = __path.key(#key);
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
        Some((_, Default::Literal(lit))) => {
            // A string is read as a duration when compiled, whatever the field's type: only
            // a `Duration` field looks at it.
            let read = match lit {
                syn::Lit::Str(_) => quote!(const { ::pwf::__private::DefaultText::read(#lit) }),
                _ => quote!(::pwf::__private::DefaultText::NONE),
            };
            quote_spanned! {lit.span()=>
                ::pwf::__private::default_literal::<#ty, _>(
                    #lit,
                    #read,
                    &__path.key(#key),
                    __problems,
                )
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
        Some((_, Default::Bare)) => Some("Default::default()".to_owned()),
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

/// The tokens as the user wrote them, or as the compiler prints them.
fn source(tokens: &impl ToTokens) -> String {
    let tokens = tokens.to_token_stream();
    let span = tokens
        .clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span());
    let printed = tokens.to_string();
    match span.join(tokens.into_iter().last().map_or(span, |t| t.span())) {
        Some(joined) => joined.source_text().unwrap_or(printed),
        None => printed,
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
