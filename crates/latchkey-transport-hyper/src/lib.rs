//! hyper-util client adapter for latchkey's HttpTransport.
