//! Token and session management for latchkey.
