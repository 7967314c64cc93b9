//! End-to-end test harness: starts the real `trustwatch-server` and
//! `trustwatch-agent` binaries on temporary directories, talks to them over
//! real HTTPS, and provides the small network fixtures tests need (a proxy
//! that can hold the server's answers back).
//!
//! The binaries are looked up next to the test executable (`target/<profile>/`)
//! or in `$TRUSTWATCH_BIN_DIR`; build them first with
//! `cargo build --workspace --bins` (the README's test command does).
#![forbid(unsafe_code)]

pub mod bins;
pub mod client;
pub mod legacylab;
pub mod netns;
pub mod pki;
pub mod process;
pub mod proxy;
pub mod tlsfixtures;

pub use bins::bin_path;
pub use client::ApiClient;
pub use process::{AgentDir, ServerProcess};
pub use proxy::HoldingProxy;
