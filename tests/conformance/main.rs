//! Transport conformance suite (placeholder until the adapters land).
