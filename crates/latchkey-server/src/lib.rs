//! A self-hostable App Services-compatible authentication server.
