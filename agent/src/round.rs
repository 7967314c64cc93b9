//! One round of collection: run some collectors, gather what they found,
//! and package it as a `trustwatch.report/v1` report or a
//! `trustwatch.scan/v1` document.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use trustwatch_common::report::{AgentInfo, CollectorError, REPORT_SCHEMA};
use trustwatch_common::{Report, ScanDocument};
use uuid::Uuid;

use crate::collect::{CollectContext, CollectOutput, Collector};

/// This agent's version, as reported.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a round produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    pub started_at: OffsetDateTime,
    pub finished_at: OffsetDateTime,
    /// Collectors that ran to completion.
    pub collectors: Vec<String>,
    /// Everything they found, and every error (including collectors that
    /// could not run).
    pub output: CollectOutput,
}

/// Runs each collector in turn, each within its time limit (if any).
pub async fn run_round(
    collectors: &[(Arc<dyn Collector>, Option<Duration>)],
    ctx: &CollectContext,
) -> Round {
    let started_at = ctx.clock.now();
    let mut names = Vec::new();
    let mut output = CollectOutput::default();
    for (c, limit) in collectors {
        let name = c.name();
        let fut = c.collect(ctx);
        let result = match limit {
            Some(l) => match tokio::time::timeout(*l, fut).await {
                Ok(r) => r,
                Err(_) => Err(crate::collect::CollectFailed::new(format!(
                    "did not finish within {}s",
                    l.as_secs()
                ))),
            },
            None => fut.await,
        };
        match result {
            Ok(out) => {
                names.push(name.to_owned());
                output.assets.extend(out.assets);
                output
                    .findings
                    .extend(out.findings.into_iter().map(|mut f| {
                        if f.collector.is_empty() {
                            f.collector = name.to_owned();
                        }
                        f
                    }));
                output.errors.extend(out.errors);
            }
            Err(e) => {
                tracing::warn!("collector {name} did not run: {e}");
                output.errors.push(CollectorError {
                    collector: name.to_owned(),
                    target: None,
                    reason: e.reason,
                });
            }
        }
    }
    Round {
        started_at,
        finished_at: ctx.clock.now(),
        collectors: names,
        output,
    }
}

impl Round {
    /// The report of this round (its `spool_dropped` is set by the spool).
    pub fn into_report(self, report_id: Uuid, agent: AgentInfo) -> Report {
        Report {
            schema: REPORT_SCHEMA.to_owned(),
            report_id,
            collected_at: self.finished_at,
            agent,
            agent_version: AGENT_VERSION.to_owned(),
            started_at: self.started_at,
            finished_at: self.finished_at,
            collectors: self.collectors,
            assets: self.output.assets,
            findings: self.output.findings,
            errors: self.output.errors,
            spool_dropped: 0,
        }
    }

    /// The scan document of this round.
    pub fn into_scan_document(self) -> ScanDocument {
        let mut doc = ScanDocument::new(AGENT_VERSION, self.started_at);
        doc.finished_at = self.finished_at;
        doc.assets = self.output.assets;
        doc.findings = self.output.findings;
        doc.errors = self.output.errors;
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::collect::{CollectFuture, Unavailable, NOT_AVAILABLE};
    use serde_json::json;
    use trustwatch_common::{Asset, AssetKind, Finding, FindingCode};

    struct Fake;
    impl Collector for Fake {
        fn name(&self) -> &'static str {
            "host"
        }
        fn collect<'a>(&'a self, _ctx: &'a CollectContext) -> CollectFuture<'a> {
            Box::pin(async {
                Ok(CollectOutput {
                    assets: vec![Asset {
                        kind: AssetKind::Host,
                        id: "h1".into(),
                        details: Default::default(),
                    }],
                    findings: vec![Finding::new(
                        FindingCode::PatchKernelRebootRequired,
                        "h1",
                        json!({}),
                    )],
                    errors: vec![],
                })
            })
        }
    }

    struct Hangs;
    impl Collector for Hangs {
        fn name(&self) -> &'static str {
            "network"
        }
        fn collect<'a>(&'a self, _ctx: &'a CollectContext) -> CollectFuture<'a> {
            Box::pin(std::future::pending())
        }
    }

    fn ctx() -> CollectContext {
        CollectContext {
            clock: Arc::new(FixedClock(
                OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap(),
            )),
            root: "/".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unavailable_and_hung_collectors_become_errors_not_listed_collectors() {
        let round = run_round(
            &[
                (Arc::new(Fake) as Arc<dyn Collector>, None),
                (Arc::new(Unavailable::new("tls")), None),
                (Arc::new(Hangs), Some(Duration::from_secs(5))),
            ],
            &ctx(),
        )
        .await;
        assert_eq!(round.collectors, vec!["host"]);
        assert_eq!(round.output.errors.len(), 2);
        assert_eq!(round.output.errors[0].collector, "tls");
        assert_eq!(round.output.errors[0].reason, NOT_AVAILABLE);
        assert_eq!(round.output.errors[1].collector, "network");
        assert_eq!(round.output.findings[0].collector, "host");

        let id = Uuid::now_v7();
        let agent = AgentInfo {
            id: Uuid::now_v7(),
            hostname: "h1".into(),
            version: AGENT_VERSION.into(),
        };
        let report = round.into_report(id, agent);
        report.validate().unwrap();
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["schema"], "trustwatch.report/v1");
        assert_eq!(v["collected_at"], "2025-10-09T08:53:20Z");
        assert_eq!(v["collectors"], json!(["host"]));
        assert_eq!(
            v["errors"][0],
            json!({"collector": "tls", "reason": NOT_AVAILABLE})
        );
    }
}
