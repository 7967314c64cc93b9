//! `trustwatch-server`: enrolment, report ingest, storage and the query API
//! of DESIGN §3, plus the admin commands acting on the same store.
//!
//! Modules: [`config`] (serve settings), [`clock`] (the one clock),
//! [`pki`] (CA, server and agent certificates), [`tls`] (listener, client
//! certificates, accept loop), [`store`] (SQLite schema and queries),
//! [`api`] (HTTP routes), [`metrics`], [`secret`] (tokens and API keys),
//! [`admin`] (admin commands), [`server`] (`serve` wiring), [`vuln`]
//! (feeds and matching), [`feedcmd`] (`feed` and `match` commands),
//! [`score`] (the scoring model, roll-ups and ranks), [`scorecmd`] (the
//! `score` command), [`report`] (HTML/CSV/JSON reports, their schedule
//! and mail), [`html`] (escaping and the page shell), [`web`] (the
//! dashboard).
#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
pub mod clock;
pub mod config;
pub mod feedcmd;
pub mod html;
pub mod metrics;
pub mod pki;
pub mod report;
pub mod score;
pub mod scorecmd;
pub mod secret;
pub mod server;
pub mod store;
pub mod tls;
pub mod vuln;
pub mod web;
