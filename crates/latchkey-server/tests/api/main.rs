//! HTTP-level tests of latchkey-server: raw HTTP against `Server::start` on 127.0.0.1:0.

mod binary;
mod common;
mod cors;
mod http_rules;
mod link;
mod login;
mod persistence;
mod sessions;
mod tokens;
mod userpass;
