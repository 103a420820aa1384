//! reqwest adapter for latchkey's HttpTransport.
