//! End-to-end tests: the `latchkey` facade against the real `latchkey-server`,
//! in process, over real HTTP on loopback, with a real database.

mod support;

mod email_password;
mod offline;
mod sessions;
