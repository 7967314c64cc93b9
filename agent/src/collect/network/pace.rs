//! Rate limiting of the network collector: every TCP connection attempt
//! and every UDP request it makes waits here first.
//!
//! Model: two spacings, one for all hosts together (`1/rate`) and one per
//! host (`1/host_rate`). A send may happen at `now` only when both its host
//! and the whole scan are past their next free instant; it then pushes both
//! forward by their spacing. There is no burst allowance, so in any
//! half-open window of one second a host receives at most `host_rate`
//! sends, and all hosts together at most `rate`.
//!
//! The logic ([`Spacing`]) is pure and reads time only through its
//! arguments; [`Pacer`] runs it against a [`PaceClock`] (tokio's clock in
//! production, a fake one in tests).
//!
//! The probes open their own connections; they are paced through a task
//! local: code run inside [`with_pacer`] has every `Conn::connect` and
//! every UDP request of the probe module pass [`admit_current`] first.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A monotonic clock that can wait.
pub trait PaceClock: Send + Sync {
    /// Time since an arbitrary origin.
    fn now(&self) -> Duration;
    /// Completes once `now() >= t`.
    fn sleep_until(&self, t: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Tokio's clock.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    pub fn new() -> Self {
        TokioClock {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl PaceClock for TokioClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn sleep_until(&self, t: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep_until(self.origin + t))
    }
}

/// The pure spacing state.
#[derive(Debug, Clone)]
pub struct Spacing {
    global_every: Duration,
    host_every: Duration,
    global_next: Duration,
    hosts: HashMap<IpAddr, Duration>,
}

fn every(per_second: u32) -> Duration {
    Duration::from_secs(1) / per_second.max(1)
}

impl Spacing {
    /// `rate` sends per second overall, `host_rate` per host.
    pub fn new(rate: u32, host_rate: u32) -> Spacing {
        Spacing {
            global_every: every(rate),
            host_every: every(host_rate),
            global_next: Duration::ZERO,
            hosts: HashMap::new(),
        }
    }

    /// Takes the slot for a send to `host` at `now`, or says when to try
    /// again (the later of the host's and the scan's next free instant).
    pub fn try_take(&mut self, host: IpAddr, now: Duration) -> Result<(), Duration> {
        let host_next = self.hosts.get(&host).copied().unwrap_or(Duration::ZERO);
        let free_at = host_next.max(self.global_next);
        if now < free_at {
            return Err(free_at);
        }
        self.global_next = now + self.global_every;
        self.hosts.insert(host, now + self.host_every);
        Ok(())
    }
}

/// Paces sends against a clock; counts them.
pub struct Pacer {
    clock: Arc<dyn PaceClock>,
    state: Mutex<Spacing>,
    sent: AtomicU64,
}

impl Pacer {
    pub fn new(rate: u32, host_rate: u32, clock: Arc<dyn PaceClock>) -> Pacer {
        Pacer {
            clock,
            state: Mutex::new(Spacing::new(rate, host_rate)),
            sent: AtomicU64::new(0),
        }
    }

    /// Waits until a send to `host` is allowed, and takes its slot.
    pub async fn admit(&self, host: IpAddr) {
        loop {
            let taken = {
                // A poisoned lock only means another task panicked while
                // holding it; the spacing state is still consistent.
                let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                s.try_take(host, self.clock.now())
            };
            match taken {
                Ok(()) => {
                    self.sent.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(at) => self.clock.sleep_until(at).await,
            }
        }
    }

    /// Sends admitted so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

tokio::task_local! {
    static CURRENT: Arc<Pacer>;
}

/// Runs `f` with `pacer` pacing every connection and UDP request the probe
/// module makes inside it.
pub async fn with_pacer<F: Future>(pacer: Arc<Pacer>, f: F) -> F::Output {
    CURRENT.scope(pacer, f).await
}

/// Waits for the current task's pacer (if any) to admit a send to `host`.
pub async fn admit_current(host: IpAddr) {
    if let Ok(p) = CURRENT.try_with(Arc::clone) {
        p.admit(host).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock whose sleeps return at once, moving time forward; it records
    /// every instant it was asked for.
    struct FakeClock {
        now: Mutex<Duration>,
    }

    impl PaceClock for FakeClock {
        fn now(&self) -> Duration {
            *self.now.lock().expect("lock")
        }
        fn sleep_until(&self, t: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
            let mut n = self.now.lock().expect("lock");
            if *n < t {
                *n = t;
            }
            Box::pin(std::future::ready(()))
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    /// Most sends in any half-open one-second window.
    fn max_per_second(times: &[Duration]) -> usize {
        times
            .iter()
            .map(|&start| {
                times
                    .iter()
                    .filter(|&&t| t >= start && t < start + Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn one_host_is_spaced_by_its_own_rate() {
        let mut s = Spacing::new(1000, 40);
        let h = ip("10.0.0.1");
        assert_eq!(s.try_take(h, Duration::ZERO), Ok(()));
        assert_eq!(
            s.try_take(h, Duration::from_millis(10)),
            Err(Duration::from_millis(25))
        );
        assert_eq!(s.try_take(h, Duration::from_millis(25)), Ok(()));
        // Another host only waits for the global spacing (1 ms).
        assert_eq!(
            s.try_take(ip("10.0.0.2"), Duration::from_millis(25)),
            Err(Duration::from_millis(26))
        );
        assert_eq!(
            s.try_take(ip("10.0.0.2"), Duration::from_millis(26)),
            Ok(())
        );
    }

    #[test]
    fn the_global_rate_binds_many_hosts_together() {
        let mut s = Spacing::new(10, 10);
        let mut times = Vec::new();
        let mut now = Duration::ZERO;
        let mut host = 0u8;
        while times.len() < 50 {
            match s.try_take(IpAddr::from([10, 0, 0, host]), now) {
                Ok(()) => {
                    times.push(now);
                    host = host.wrapping_add(1);
                }
                Err(at) => now = at,
            }
        }
        assert_eq!(max_per_second(&times), 10);
        assert!(now >= Duration::from_millis(4900), "{now:?}");
    }

    #[tokio::test]
    async fn pacer_keeps_every_host_under_its_cap_and_counts_sends() {
        let clock = Arc::new(FakeClock {
            now: Mutex::new(Duration::ZERO),
        });
        let pacer = Pacer::new(1000, 40, clock.clone());
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let (mut ta, mut tb) = (Vec::new(), Vec::new());
        for _ in 0..120 {
            pacer.admit(a).await;
            ta.push(clock.now());
            pacer.admit(b).await;
            tb.push(clock.now());
        }
        assert_eq!(pacer.sent(), 240);
        assert_eq!(max_per_second(&ta), 40);
        assert_eq!(max_per_second(&tb), 40);
        // 120 sends at 40/s need (120 - 1) / 40 s.
        assert!(
            clock.now() >= Duration::from_millis(2975),
            "{:?}",
            clock.now()
        );
    }

    #[tokio::test]
    async fn admit_current_waits_only_inside_a_pacer_scope() {
        let clock = Arc::new(FakeClock {
            now: Mutex::new(Duration::ZERO),
        });
        let pacer = Arc::new(Pacer::new(1, 1, clock.clone()));
        admit_current(ip("10.0.0.1")).await;
        assert_eq!(pacer.sent(), 0);
        with_pacer(pacer.clone(), async {
            admit_current(ip("10.0.0.1")).await;
            admit_current(ip("10.0.0.1")).await;
        })
        .await;
        assert_eq!(pacer.sent(), 2);
        assert_eq!(clock.now(), Duration::from_secs(1));
    }
}
