//! When each collector runs next.
//!
//! Each registered collector has its own timer. The first run comes soon
//! after start: within `min(jitter, FIRST_RUN_SPREAD)`. After a run the next
//! is due `interval + random(0..=jitter)` later. Collectors that are due at
//! the same moment run in one round (one report). Pure logic over
//! `tokio::time::Instant`, so tests can drive it with paused time.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use crate::collect::{Registered, Registry};
use crate::random::Random;

/// Upper bound of the random delay before the first run.
pub const FIRST_RUN_SPREAD: Duration = Duration::from_secs(5);

/// Per-collector timers.
pub struct Scheduler {
    entries: Vec<(Registered, Instant)>,
    random: Arc<dyn Random>,
}

impl Scheduler {
    /// Schedules every collector of `registry` for its first run after `start`.
    pub fn new(registry: &Registry, start: Instant, random: Arc<dyn Random>) -> Self {
        let entries = registry
            .entries()
            .iter()
            .map(|r| {
                let first = start + random.up_to(r.schedule.jitter.min(FIRST_RUN_SPREAD));
                (r.clone(), first)
            })
            .collect();
        Scheduler { entries, random }
    }

    /// When the next collector is due; `None` with no collectors.
    pub fn next_due(&self) -> Option<Instant> {
        self.entries.iter().map(|(_, t)| *t).min()
    }

    /// The collectors due at `now`, each rescheduled after its interval.
    /// A due collector outside its scan windows at wall time `wall` is not
    /// run: it is held back until its next window opens.
    pub fn take_due(&mut self, now: Instant, wall: OffsetDateTime) -> Vec<Registered> {
        let mut due = Vec::new();
        for (r, next) in &mut self.entries {
            if *next <= now {
                let hold = r.collector.wait_for_window(wall);
                if !hold.is_zero() {
                    tracing::info!(
                        "{} collector outside its scan windows: next attempt in {}s",
                        r.collector.name(),
                        hold.as_secs()
                    );
                    *next = now + hold;
                    continue;
                }
                *next = now + r.schedule.interval + self.random.up_to(r.schedule.jitter);
                due.push(r.clone());
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{Registered, Unavailable};
    use crate::config::Schedule;
    use crate::random::FixedFraction;

    fn reg(name: &'static str, interval: u64, jitter: u64) -> Registered {
        Registered {
            collector: Arc::new(Unavailable::new(name)),
            schedule: Schedule {
                interval: Duration::from_secs(interval),
                jitter: Duration::from_secs(jitter),
            },
        }
    }

    impl Scheduler {
        fn take_due_now(&mut self, now: Instant) -> Vec<Registered> {
            self.take_due(now, OffsetDateTime::UNIX_EPOCH)
        }
    }

    /// A collector whose scan window opens at `opens` (wall time).
    struct Windowed {
        opens: OffsetDateTime,
    }

    impl crate::collect::Collector for Windowed {
        fn name(&self) -> &'static str {
            "network"
        }
        fn collect<'a>(
            &'a self,
            _ctx: &'a crate::collect::CollectContext,
        ) -> crate::collect::CollectFuture<'a> {
            Box::pin(async { Ok(crate::collect::CollectOutput::default()) })
        }
        fn wait_for_window(&self, now: OffsetDateTime) -> Duration {
            (self.opens - now).try_into().unwrap_or(Duration::ZERO)
        }
    }

    #[test]
    fn a_collector_outside_its_window_is_held_until_the_window_opens() {
        let opens = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(7200);
        let registry = Registry::new(vec![
            Registered {
                collector: Arc::new(Windowed { opens }),
                schedule: Schedule {
                    interval: Duration::from_secs(86_400),
                    jitter: Duration::ZERO,
                },
            },
            reg("host", 3600, 0),
        ]);
        let t0 = Instant::now();
        let wall0 = OffsetDateTime::UNIX_EPOCH;
        let mut s = Scheduler::new(&registry, t0, Arc::new(FixedFraction(0.0)));
        // Both are due; only host runs, network waits for its window.
        assert_eq!(names(&s.take_due(t0, wall0)), vec!["host"]);
        assert_eq!(s.next_due(), Some(t0 + Duration::from_secs(3600)));
        assert_eq!(
            names(&s.take_due(
                t0 + Duration::from_secs(3600),
                wall0 + Duration::from_secs(3600)
            )),
            vec!["host"]
        );
        // At the window's opening it runs, and then keeps its interval.
        let t2 = t0 + Duration::from_secs(7200);
        assert_eq!(names(&s.take_due(t2, opens)), vec!["network", "host"]);
        assert_eq!(s.next_due(), Some(t2 + Duration::from_secs(3600)));
    }

    fn names(v: &[Registered]) -> Vec<&'static str> {
        v.iter().map(|r| r.collector.name()).collect()
    }

    #[test]
    fn first_runs_come_soon_then_each_collector_keeps_its_own_interval() {
        let registry = Registry::new(vec![reg("host", 3600, 600), reg("tls", 7200, 0)]);
        let t0 = Instant::now();
        let mut s = Scheduler::new(&registry, t0, Arc::new(FixedFraction(1.0)));
        // host: jitter capped at FIRST_RUN_SPREAD; tls: no jitter, right away.
        assert_eq!(s.next_due(), Some(t0));
        assert_eq!(names(&s.take_due_now(t0)), vec!["tls"]);
        let t1 = t0 + FIRST_RUN_SPREAD;
        assert_eq!(s.next_due(), Some(t1));
        assert_eq!(names(&s.take_due_now(t1)), vec!["host"]);
        // Next host run: interval + full jitter (FixedFraction(1.0)).
        assert_eq!(s.next_due(), Some(t1 + Duration::from_secs(4200)));
        assert!(s.take_due_now(t1 + Duration::from_secs(4199)).is_empty());
        assert_eq!(
            names(&s.take_due_now(t1 + Duration::from_secs(4200))),
            vec!["host"]
        );
        assert_eq!(
            names(&s.take_due_now(t0 + Duration::from_secs(7200))),
            vec!["tls"]
        );
    }

    #[test]
    fn collectors_due_together_share_a_round_and_none_means_no_timer() {
        let registry = Registry::new(vec![reg("host", 60, 0), reg("tls", 60, 0)]);
        let t0 = Instant::now();
        let mut s = Scheduler::new(&registry, t0, Arc::new(FixedFraction(0.0)));
        assert_eq!(names(&s.take_due_now(t0)), vec!["host", "tls"]);
        let empty = Scheduler::new(&Registry::default(), t0, Arc::new(FixedFraction(0.0)));
        assert_eq!(empty.next_due(), None);
    }
}
