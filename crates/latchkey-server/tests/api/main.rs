//! HTTP-level tests of latchkey-server: raw HTTP against `Server::start` on 127.0.0.1:0.

mod api_keys;
mod binary;
mod common;
mod cors;
mod custom_function;
mod custom_token;
mod http_rules;
mod link;
mod link_rules;
mod login;
mod oauth;
mod persistence;
mod sessions;
mod tokens;
mod userpass;
mod admin;
mod cli;
mod throttle;
mod userpass_flows;
