//! Scoring: what an organisation's findings are worth, as plain functions
//! and types (no I/O). [`model`] scores one organisation from aggregated
//! facts; [`rollup`] combines organisations into their parents and ranks
//! siblings. The store computes the facts, runs these functions and keeps
//! the results (`store::scores`); `docs/SCORING.md` explains the weights.
//!
//! Invariants of model v1 ([`MODEL_VERSION`]), each tested here:
//! * **Range.** Every score (organisation, category, roll-up) is a number
//!   of tenths in 0.0..=100.0, higher is better; its grade is A (≥ 90),
//!   B (≥ 80), C (≥ 70), D (≥ 60) or F. Confidence is a whole percentage.
//! * **Monotone.** Over a fixed set of assets, adding an open finding never
//!   raises any score and removing one never lowers it (proptests).
//! * **Nonlinear in severity.** The first finding of a severity costs a
//!   category a fixed share of that severity's budget, so one critical
//!   (≥ 48 points) costs more than all mediums and lows together can
//!   (≤ 35), one high (≥ 22.5) more than all lows (≤ 10). Hence an
//!   organisation with only low findings scores ≥ 90 (A), one with an open
//!   high < 90, one with an open critical ≤ 62: no number of lows
//!   outweighs one critical.
//! * **Caps.** An open `legacy.smb.v1` caps the organisation and its
//!   category at 59, an end-of-life operating system (`patch.os.eol`,
//!   `legacy.os.eol`) at 69, a known-exploited vulnerability (an open
//!   `patch.package.vulnerable` whose evidence has `kev.listed = true`) at
//!   49, whatever the estate's size.
//! * **Size-normalised, weakest-link aware.** Spread and density are
//!   fractions of the assets of the kind concerned, so the same proportion
//!   of affected assets scores the same in an estate of 50 and of 5,000,
//!   and the same findings score no worse in the bigger estate; but the
//!   mere presence of a severity costs most of its budget (the worst asset
//!   matters), and the organisation is never more than 10 points better
//!   than its worst category.
//! * **Explainable.** Every score comes with its deductions per category
//!   and severity, the caps that apply, and what to fix first: per code,
//!   the points won back by re-scoring without that code's open findings.
//! * **Versioned and recomputable.** Every score carries `model_version`;
//!   scores are a function of stored findings, assets and agents only, so a
//!   model change re-scores current data and history.
//! * **Confidence is not score.** Stale agents and unobserved asset kinds
//!   lower the confidence shown beside a score, never the score itself
//!   (stale agents lower the score only through their
//!   `coverage.agent.stale` findings).

pub mod model;
pub mod rollup;

pub use model::{
    score, Cap, CapApplied, CategoryScore, Counts, Deduction, Facts, FixItem, Grade, Score,
    MODEL_VERSION,
};
pub use rollup::{roll_up, Member, OrgNode, Rolled};
