//! `#[derive(Message)]`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{DeriveInput, LitStr};

pub(crate) fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut name: Option<LitStr> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("message")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                if name.is_some() {
                    return Err(meta.error("the message name is given twice"));
                }
                let value: LitStr = meta.value()?.parse()?;
                if value.value().is_empty() {
                    return Err(syn::Error::new(
                        value.span(),
                        "a message name cannot be empty",
                    ));
                }
                name = Some(value);
                Ok(())
            } else {
                Err(meta.error("unknown message attribute; expected `name = \"...\"`"))
            }
        })?;
    }
    let ident = &input.ident;
    let ident_text = ident.to_string();
    let name = match name {
        Some(name) => quote!(#name),
        None => quote!(::core::concat!(::core::env!("CARGO_CRATE_NAME"), "::", #ident_text)),
    };
    let mut generics = input.generics.clone();
    if !generics.params.is_empty() {
        // A generic message is one only where its parameters make it serializable and sendable.
        let clause = generics.make_where_clause();
        clause.predicates.push(syn::parse_quote!(
            Self: ::procession::__private::serde::Serialize
                + ::procession::__private::serde::de::DeserializeOwned
                + ::core::marker::Send
                + 'static
        ));
    }
    let (impl_generics, type_generics, where_clause) = generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::procession::Message for #ident #type_generics #where_clause {
            const NAME: &'static str = #name;
        }
    })
}
