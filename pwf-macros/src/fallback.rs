//! Stub impls emitted next to the compile errors, so that the user sees the derive's errors
//! and not every use of the trait failing as well.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput};

/// Impls of the traits the derive would implement, with bodies that are never run: they
/// are emitted only beside a compile error, so no program containing them is ever built.
pub(crate) fn expand(input: &DeriveInput) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let plugin_config = match input.data {
        Data::Enum(_) => None,
        Data::Struct(_) | Data::Union(_) => Some(quote! {
            #[automatically_derived]
            impl #impl_generics ::pwf::PluginConfig for #ident #ty_generics #where_clause {
                fn schema() -> ::pwf::config::Schema {
                    ::core::unreachable!("the derive reported an error, so this impl never reaches a program")
                }
            }
        }),
    };
    quote! {
        #[automatically_derived]
        impl #impl_generics ::pwf::config::ConfigValue for #ident #ty_generics #where_clause {
            fn from_config(
                _: &::pwf::__private::Value,
                _: &::pwf::config::Path<'_>,
                _: &mut ::pwf::config::Problems,
            ) -> ::core::option::Option<Self> {
                ::core::unreachable!("the derive reported an error, so this impl never reaches a program")
            }

            fn describe() -> ::pwf::config::Type {
                ::core::unreachable!("the derive reported an error, so this impl never reaches a program")
            }
        }
        #plugin_config
    }
}
