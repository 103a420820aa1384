//! Anonymous credentials for latchkey.
