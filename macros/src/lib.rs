//! Macros for procession, re-exported by the facade crate: `#[derive(Message)]`.
//!
//! Everything a macro generates can be written by hand against the public API; the docs of each
//! macro show the expansion.

#![forbid(unsafe_code)]

mod message;

use proc_macro::TokenStream;

/// Implements `procession::Message` with a stable name: `crate_name::TypeName` by default (the
/// crate name and the type's identifier, not its module path, so moving the type keeps its wire
/// name), or the name given by `#[message(name = "...")]`.
///
/// ```
/// use procession::Message;
///
/// #[derive(serde::Serialize, serde::Deserialize, Message)]
/// struct Heartbeat { agent: String }
///
/// #[derive(serde::Serialize, serde::Deserialize, Message)]
/// #[message(name = "cluster.v1.Register")]
/// struct Register;
///
/// assert!(Heartbeat::NAME.ends_with("::Heartbeat")); // `<this crate>::Heartbeat`
/// assert_eq!(Register::NAME, "cluster.v1.Register");
/// ```
///
/// <details><summary>Expansion</summary>
///
/// ```ignore
/// impl ::procession::Message for Heartbeat {
///     const NAME: &'static str = concat!(env!("CARGO_CRATE_NAME"), "::", "Heartbeat");
/// }
/// ```
/// </details>
#[proc_macro_derive(Message, attributes(message))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    message::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
