//! Test helpers: in-process latchkey-server, fake identity providers.
