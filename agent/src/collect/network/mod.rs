//! The network collector: discovery of what answers on the organisation's
//! ranges, protocol probes of legacy services, and fingerprints of
//! end-of-life systems.

pub mod fingerprint;
pub mod ports;
pub mod probe;
