//! The documentation of latchkey as a crate: README.md and every page of docs/ are the
//! documentation of one module each, so `cargo test --doc -p latchkey-docs` (part of
//! `cargo xtask test`) compiles every ```` ```rust ```` block of them, and runs those not
//! marked `no_run`. A snippet that stops compiling fails the test suite.
//!
//! Blocks tagged `no_run` need a server; `ignore` is kept for the templates of code
//! that lives inside the server crate (docs/contributing.md). The README's SDK program
//! (marked `<!-- test: rust-program -->`) is also run, twice, against a server configured
//! as `latchkey-server dev` by `tests/readme_program.rs`.

// The pages are Markdown written for GitHub, not rustdoc: their reference-style links
// (`[web] file.ts`) and literal `<tags>` are prose, not intra-doc links or HTML.
#![allow(
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls,
    rustdoc::invalid_rust_codeblocks
)]

include!(concat!(env!("OUT_DIR"), "/pages.rs"));
