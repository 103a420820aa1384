//! Email/password credentials for latchkey.
