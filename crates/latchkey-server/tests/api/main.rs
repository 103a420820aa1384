//! HTTP-level tests of latchkey-server: raw HTTP against `Server::start` on 127.0.0.1:0.

mod admin;
mod api_keys;
mod binary;
mod cli;
mod common;
mod console;
mod cors;
mod custom_function;
mod custom_token;
mod housekeeping;
mod http_rules;
mod key_admin;
mod link;
mod link_rules;
mod login;
mod nodes;
mod oauth;
mod ops;
mod outage;
mod persistence;
mod sessions;
mod signing_keys;
mod throttle;
mod tokens;
mod userpass;
mod userpass_flows;
