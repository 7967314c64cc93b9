//! `trustwatch-agent`: collectors, scheduler, spool, shipper and the
//! commands of the agent CLI (DESIGN §3). The binary (`main.rs`) is a thin
//! shell over this library: it parses arguments, sets up logging and maps
//! errors to exit codes.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod clock;
pub mod collect;
pub mod config;
pub mod enroll;
pub mod fsio;
pub mod random;
pub mod round;
pub mod scan;
pub mod schedule;
pub mod service;
pub mod ship;
pub mod spool;
pub mod state;
pub mod status;
pub mod tlsconf;
