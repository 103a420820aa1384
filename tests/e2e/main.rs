//! End-to-end tests (placeholder until the SDK lands).
