//! End-to-end tests: the `latchkey` facade against the real `latchkey-server`,
//! in process, over real HTTP on loopback, with a real database.

mod support;

mod api_keys;
mod attacks;
mod concurrency;
mod crash;
mod data_rules;
mod email_flows;
mod email_password;
mod faults;
mod guide;
mod hardening;
mod http_edge;
mod kit;
mod oauth_native;
mod oauth_web;
mod offline;
mod providers;
mod sessions;
mod users;
