//! `#[procession::test]`: a test body run on a fresh runtime, which is then shut down and
//! checked (see `procession::__private::run_test` for what the check is).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitInt, ReturnType};

/// The options: `paused`, `seed = N`, `workers = N`, `panics = N`.
#[derive(Default)]
struct Options {
    paused: bool,
    seed: Option<LitInt>,
    workers: Option<LitInt>,
    /// How many process panics the test expects; `None` for none.
    panics: Option<u64>,
}

fn parse_options(args: TokenStream) -> syn::Result<Options> {
    let mut options = Options::default();
    let parser = syn::meta::parser(|meta| {
        let twice = || meta.error("this option is given twice");
        if meta.path.is_ident("paused") {
            if options.paused {
                return Err(twice());
            }
            options.paused = true;
        } else if meta.path.is_ident("seed") {
            if options.seed.is_some() {
                return Err(twice());
            }
            let seed: LitInt = meta.value()?.parse()?;
            seed.base10_parse::<u64>()?;
            options.seed = Some(seed);
        } else if meta.path.is_ident("workers") {
            if options.workers.is_some() {
                return Err(twice());
            }
            let workers: LitInt = meta.value()?.parse()?;
            if workers.base10_parse::<usize>()? == 0 {
                return Err(syn::Error::new(
                    workers.span(),
                    "a runtime needs at least one worker",
                ));
            }
            options.workers = Some(workers);
        } else if meta.path.is_ident("panics") {
            if options.panics.is_some() {
                return Err(twice());
            }
            if !meta.input.peek(syn::Token![=]) {
                return Err(meta.error(
                    "`panics` takes the number of process panics the test expects: `panics = N`",
                ));
            }
            let panics: LitInt = meta.value()?.parse()?;
            let count = panics.base10_parse::<u64>().map_err(|_| {
                syn::Error::new(panics.span(), "`panics = N` takes a count: 1, 2, ...")
            })?;
            if count == 0 {
                return Err(syn::Error::new(
                    panics.span(),
                    "a test expects no process panic unless told otherwise; remove `panics = 0`",
                ));
            }
            options.panics = Some(count);
        } else {
            return Err(meta.error(
                "unknown #[procession::test] option; expected `paused`, `seed = N`, \
                 `workers = N` or `panics = N`",
            ));
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, args)?;
    if let (Some(_), Some(workers)) = (&options.seed, &options.workers) {
        return Err(syn::Error::new(
            workers.span(),
            "a seeded runtime runs everything on the test's thread; `workers` does not apply",
        ));
    }
    Ok(options)
}

pub(crate) fn expand(args: TokenStream, function: ItemFn) -> syn::Result<TokenStream> {
    let options = parse_options(args)?;
    let sig = &function.sig;
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a test function cannot be generic",
        ));
    }
    let param = match sig.inputs.iter().collect::<Vec<_>>().as_slice() {
        [] => None,
        [FnArg::Typed(typed)] => Some(typed),
        [FnArg::Receiver(receiver)] => {
            return Err(syn::Error::new(
                receiver.span(),
                "a test function has no `self`",
            ))
        }
        [_, second, ..] => {
            return Err(syn::Error::new(
                second.span(),
                "a test function takes nothing, or the runtime: `fn name(runtime: &Runtime)`",
            ))
        }
    };
    let ItemFn {
        attrs, vis, block, ..
    } = &function;
    if let Some(test) = attrs.iter().find(|attr| attr.path().is_ident("test")) {
        return Err(syn::Error::new(
            test.span(),
            "#[procession::test] adds `#[test]` itself; remove this one",
        ));
    }
    let name = &sig.ident;
    let output = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let output_sig = &sig.output;
    let mut builder = quote!(::procession::Runtime::builder().name(::core::stringify!(#name)));
    if options.paused {
        builder.extend(quote!(.paused()));
    }
    if let Some(seed) = &options.seed {
        builder.extend(quote!(.deterministic(#seed)));
    }
    if let Some(workers) = &options.workers {
        builder.extend(quote!(.workers(#workers)));
    }
    let panics = options.panics.unwrap_or(0);
    let runtime = quote!(__procession_runtime);
    let bind = param.map(|typed| {
        let (pat, ty) = (&typed.pat, &typed.ty);
        quote_spanned!(typed.span()=> let #pat: #ty = #runtime;)
    });
    let body = match &sig.asyncness {
        None => quote! {
            |#runtime: &::procession::Runtime| -> #output {
                #bind
                #block
            }
        },
        Some(_) => quote! {
            |#runtime: &::procession::Runtime| -> #output {
                #bind
                #runtime.block_on(async move #block)
            }
        },
    };
    Ok(quote! {
        #(#attrs)*
        #[::core::prelude::v1::test]
        #vis fn #name() #output_sig {
            ::procession::__private::run_test(#builder, #panics, #body)
        }
    })
}
