//! The TLS collector: protocol versions, cipher suites, key exchange and
//! certificate chains of configured endpoints, measured on the wire.

pub mod wire;
