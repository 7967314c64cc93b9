//! Discovery and identification: which addresses answer, which ports are
//! open, and what the probes learn from them.
//!
//! Per address, hosts first: a TCP connect to a few common ports of the
//! list ([`first_ports`]); an address where none of them connects or
//! refuses (a RST proves a host) is left alone, so a dead address costs at
//! most those few connection attempts. For a live host the rest of the TCP
//! list is connected to, then each open port gets what
//! [`action_for`](super::ports::action_for) allows: its protocol probe,
//! nothing more than the connect (printer ports), or one TLS ClientHello
//! for ports no probe knows (443 and 8443 are taken for TLS without it).
//! SMB is probed once per host, on 445 if open, else on 139. UDP ports are
//! probed on live hosts only (SNMP on 161); a UDP port that does not answer
//! is not reported.
//!
//! Do-no-harm invariants:
//! - every connection attempt and UDP request passes the [`Pacer`] (the
//!   global and per-host rates);
//! - at most `host_connections` (1 or 2) connections to one host at a
//!   time: the host's steps run that many at a time, and each probe holds
//!   one connection at a time;
//! - at most [`PARALLEL_HOSTS`] hosts are being scanned at once;
//! - nothing starts after the run's budget or (for `run`) outside its scan
//!   windows: the host is then marked cut short, the addresses not reached
//!   are counted; in-flight probes end within their own deadline, and a
//!   hard stop aborts whatever is left after that.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::audit::{Audit, Traffic};
use super::pace::{with_pacer, PaceClock, Pacer};
use super::ports::{action_for, is_printer_port, PortAction, Transport};
use super::probe::{run_probe, tlshello, ProbeKind, ProbeLimits, ServiceInfo};
use super::settings::{windows_open, ScanSettings};
use crate::clock::Clock;

/// Hosts scanned at the same time.
pub const PARALLEL_HOSTS: usize = 128;
/// Ports tried first on every address, in this order of preference.
pub const PREFERRED_FIRST: [u16; 9] = [445, 80, 443, 22, 3389, 139, 23, 21, 8080];
/// How many ports are tried before an address is judged dead.
pub const FIRST_COUNT: usize = 3;
/// Ports taken for TLS without a ClientHello of ours.
pub const TLS_PORTS: [u16; 2] = [443, 8443];

/// What to sweep, and how gently.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    /// Addresses to sweep (already stripped of excluded ones).
    pub addresses: Vec<IpAddr>,
    pub settings: ScanSettings,
    /// Bounds of each protocol probe.
    pub probe_limits: ProbeLimits,
    /// Scan windows apply (the service); otherwise they are ignored.
    pub enforce_windows: bool,
}

/// Why a sweep stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The run's time budget was spent.
    Budget,
    /// The scan window closed.
    Window,
}

impl StopReason {
    pub fn describe(&self) -> &'static str {
        match self {
            StopReason::Budget => "the run's time budget was spent",
            StopReason::Window => "the scan window closed",
        }
    }
}

/// What one open port turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// A probe's answer.
    Probed(ServiceInfo),
    /// The probe of this port failed.
    ProbeFailed { kind: ProbeKind, reason: String },
    /// A printer port: connected to, nothing written.
    Printer,
    /// Speaks TLS (handed to the TLS collector).
    Tls,
    /// Open; no probe speaks here and it does not answer a ClientHello.
    Unknown,
    /// Open, not probed: the protocol expected there (if any), and why.
    NotProbed {
        kind: Option<ProbeKind>,
        note: String,
    },
}

/// One open port.
#[derive(Debug, Clone, PartialEq)]
pub struct PortScan {
    pub port: u16,
    pub transport: Transport,
    pub found: Found,
}

/// One address.
#[derive(Debug, Clone, PartialEq)]
pub struct HostScan {
    pub addr: IpAddr,
    /// Something answered (a connect, a refusal, a UDP answer).
    pub alive: bool,
    /// Open ports, TCP then UDP, ascending.
    pub ports: Vec<PortScan>,
    /// The host's scan stopped early.
    pub cut_short: Option<StopReason>,
}

/// The sweep's result.
#[derive(Debug)]
pub struct SweepOutcome {
    /// Hosts with at least one open port, by address.
    pub hosts: Vec<HostScan>,
    /// Addresses swept (started).
    pub swept: usize,
    /// Addresses that answered.
    pub live: usize,
    /// Addresses never started (budget or window).
    pub not_started: usize,
    /// Why the sweep stopped early, if it did.
    pub stop: Option<StopReason>,
    /// What was sent to whom.
    pub audit: Arc<Audit>,
    /// Sends the pacer admitted.
    pub sent: u64,
}

/// Up to [`FIRST_COUNT`] ports of `tcp`: the preferred ones it has, then
/// its first ports.
pub fn first_ports(tcp: &[u16]) -> Vec<u16> {
    let mut out: Vec<u16> = PREFERRED_FIRST
        .iter()
        .copied()
        .filter(|p| tcp.binary_search(p).is_ok())
        .take(FIRST_COUNT)
        .collect();
    for p in tcp {
        if out.len() >= FIRST_COUNT {
            break;
        }
        if !out.contains(p) {
            out.push(*p);
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Open,
    Refused,
    Unreachable,
    Silent,
}

struct Ctx {
    settings: ScanSettings,
    probe_limits: ProbeLimits,
    tcp: Vec<u16>,
    udp: Vec<u16>,
    first: Vec<u16>,
    pacer: Arc<Pacer>,
    audit: Arc<Audit>,
    deadline: Instant,
    enforce_windows: bool,
    wall: Arc<dyn Clock>,
}

impl Ctx {
    fn stop_reason(&self) -> Option<StopReason> {
        if Instant::now() >= self.deadline {
            return Some(StopReason::Budget);
        }
        if self.enforce_windows && !windows_open(&self.settings.windows, self.wall.now()) {
            return Some(StopReason::Window);
        }
        None
    }

    async fn connect(&self, addr: IpAddr, port: u16) -> Reach {
        self.pacer.admit(addr).await;
        let traffic = if is_printer_port(port) {
            Traffic::Printer
        } else {
            Traffic::Connect
        };
        self.audit.record(traffic, addr);
        let sa = SocketAddr::new(addr, port);
        match tokio::time::timeout(self.settings.connect_timeout, TcpStream::connect(sa)).await {
            // Dropping the stream closes it: nothing is ever written here.
            Ok(Ok(stream)) => {
                drop(stream);
                Reach::Open
            }
            Ok(Err(e)) => match e.kind() {
                std::io::ErrorKind::ConnectionRefused => Reach::Refused,
                std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => {
                    Reach::Unreachable
                }
                _ => Reach::Silent,
            },
            Err(_) => Reach::Silent,
        }
    }
}

type Job<'a> = Pin<Box<dyn Future<Output = Option<PortScan>> + Send + 'a>>;

/// Runs `jobs` `n` at a time (n is 1 or 2), unless the scan must stop.
async fn run_jobs<'a>(
    cx: &Ctx,
    n: usize,
    jobs: Vec<Job<'a>>,
) -> (Vec<PortScan>, Option<StopReason>) {
    let mut out = Vec::new();
    let mut it = jobs.into_iter();
    loop {
        if let Some(why) = cx.stop_reason() {
            return (out, it.next().map(|_| why));
        }
        let Some(a) = it.next() else { break };
        let got = if n >= 2 {
            match it.next() {
                Some(b) => {
                    let (x, y) = tokio::join!(a, b);
                    vec![x, y]
                }
                None => vec![a.await],
            }
        } else {
            vec![a.await]
        };
        out.extend(got.into_iter().flatten());
    }
    (out, None)
}

/// Connects to `ports` of `addr`, `n` at a time; stops early on an
/// unreachable host when `stop_if_unreachable`.
async fn connect_ports(
    cx: &Ctx,
    addr: IpAddr,
    ports: &[u16],
    stop_if_unreachable: bool,
) -> (Vec<(u16, Reach)>, Option<StopReason>) {
    let n = cx.settings.host_connections.max(1);
    let mut out = Vec::new();
    for chunk in ports.chunks(n) {
        if let Some(why) = cx.stop_reason() {
            return (out, Some(why));
        }
        let got = match chunk {
            [a, b, ..] => {
                let (x, y) = tokio::join!(cx.connect(addr, *a), cx.connect(addr, *b));
                vec![(*a, x), (*b, y)]
            }
            [a] => vec![(*a, cx.connect(addr, *a).await)],
            [] => vec![],
        };
        let unreachable = got.iter().any(|(_, r)| *r == Reach::Unreachable);
        out.extend(got);
        if stop_if_unreachable && unreachable {
            break;
        }
    }
    (out, None)
}

async fn probe_job(
    cx: &Ctx,
    addr: IpAddr,
    port: u16,
    transport: Transport,
    kind: ProbeKind,
) -> Option<PortScan> {
    cx.audit.record(Traffic::Probe(kind), addr);
    let sa = SocketAddr::new(addr, port);
    let result = with_pacer(cx.pacer.clone(), run_probe(kind, sa, &cx.probe_limits)).await;
    let found = match result {
        Ok(info) => Found::Probed(info),
        // A UDP service that does not answer is not reported.
        Err(_) if transport == Transport::Udp => return None,
        Err(e) => Found::ProbeFailed {
            kind,
            reason: e.to_string(),
        },
    };
    Some(PortScan {
        port,
        transport,
        found,
    })
}

async fn sniff_job(cx: &Ctx, addr: IpAddr, port: u16) -> Option<PortScan> {
    cx.audit.record(Traffic::TlsHello, addr);
    let sa = SocketAddr::new(addr, port);
    let found = match with_pacer(cx.pacer.clone(), tlshello::speaks_tls(sa, &cx.probe_limits)).await
    {
        Ok(true) => Found::Tls,
        Ok(false) => Found::Unknown,
        Err(e) => Found::NotProbed {
            kind: None,
            note: format!("TLS hello failed: {e}"),
        },
    };
    Some(PortScan {
        port,
        transport: Transport::Tcp,
        found,
    })
}

fn ready(p: PortScan) -> Job<'static> {
    Box::pin(std::future::ready(Some(p)))
}

async fn scan_host(addr: IpAddr, cx: Arc<Ctx>) -> HostScan {
    let mut host = HostScan {
        addr,
        alive: false,
        ports: Vec::new(),
        cut_short: None,
    };
    let n = cx.settings.host_connections.max(1);

    // Hosts first: a few ports, and only then the rest.
    let (first, stop) = connect_ports(&cx, addr, &cx.first, true).await;
    let answered = |r: &Reach| matches!(r, Reach::Open | Reach::Refused);
    host.alive = first.iter().any(|(_, r)| answered(r));
    if let Some(why) = stop {
        host.cut_short = Some(why);
        return host;
    }
    let tcp_only_udp = cx.tcp.is_empty();
    if !host.alive && !tcp_only_udp {
        return host;
    }
    let rest: Vec<u16> = cx
        .tcp
        .iter()
        .copied()
        .filter(|p| !cx.first.contains(p))
        .collect();
    let (more, stop) = connect_ports(&cx, addr, &rest, false).await;
    host.alive |= more.iter().any(|(_, r)| answered(r));
    let mut open: Vec<u16> = first
        .iter()
        .chain(&more)
        .filter(|(_, r)| *r == Reach::Open)
        .map(|(p, _)| *p)
        .collect();
    open.sort_unstable();
    if let Some(why) = stop {
        host.cut_short = Some(why);
    }

    // What each open port gets.
    let smb_port = [445u16, 139].into_iter().find(|p| {
        open.contains(p) && action_for(*p, Transport::Tcp) == PortAction::Probe(ProbeKind::Smb)
    });
    let mut jobs: Vec<Job<'_>> = Vec::new();
    for &port in &open {
        let scan = |found| PortScan {
            port,
            transport: Transport::Tcp,
            found,
        };
        match action_for(port, Transport::Tcp) {
            PortAction::ConnectOnly => jobs.push(ready(scan(Found::Printer))),
            PortAction::Probe(ProbeKind::Smb) if Some(port) != smb_port => {
                jobs.push(ready(scan(Found::NotProbed {
                    kind: Some(ProbeKind::Smb),
                    note: format!("SMB probed on port {}", smb_port.unwrap_or(445)),
                })))
            }
            PortAction::Probe(kind) => {
                jobs.push(Box::pin(probe_job(&cx, addr, port, Transport::Tcp, kind)))
            }
            PortAction::Unknown if TLS_PORTS.contains(&port) => jobs.push(ready(scan(Found::Tls))),
            PortAction::Unknown => jobs.push(Box::pin(sniff_job(&cx, addr, port))),
        }
    }
    if host.alive || tcp_only_udp {
        for &port in &cx.udp {
            if let PortAction::Probe(kind) = action_for(port, Transport::Udp) {
                jobs.push(Box::pin(probe_job(&cx, addr, port, Transport::Udp, kind)));
            }
        }
    }
    if host.cut_short.is_none() {
        let (ports, stop) = run_jobs(&cx, n, jobs).await;
        host.ports = ports;
        host.cut_short = stop;
    }
    // Open ports whose turn never came (the scan stopped) are reported
    // unprobed.
    for &port in &open {
        if !host
            .ports
            .iter()
            .any(|p| p.port == port && p.transport == Transport::Tcp)
        {
            let kind = match action_for(port, Transport::Tcp) {
                PortAction::Probe(k) => Some(k),
                _ => None,
            };
            host.ports.push(PortScan {
                port,
                transport: Transport::Tcp,
                found: Found::NotProbed {
                    kind,
                    note: "the scan stopped before this port was probed".into(),
                },
            });
        }
    }
    if host.ports.iter().any(|p| p.transport == Transport::Udp) {
        host.alive = true;
    }
    host.ports.sort_by_key(|p| (p.transport, p.port));
    host
}

/// Sweeps `plan.addresses`.
pub async fn sweep(
    plan: SweepPlan,
    wall: Arc<dyn Clock>,
    pace: Arc<dyn PaceClock>,
) -> SweepOutcome {
    let settings = plan.settings;
    let tcp: Vec<u16> = settings.ports.iter(Transport::Tcp).collect();
    let udp: Vec<u16> = settings.ports.iter(Transport::Udp).collect();
    let first = first_ports(&tcp);
    let deadline = Instant::now() + settings.budget;
    let audit = Arc::new(Audit::default());
    let pacer = Arc::new(Pacer::new(settings.rate, settings.host_rate, pace));
    let cx = Arc::new(Ctx {
        probe_limits: plan.probe_limits,
        tcp,
        udp,
        first,
        pacer: pacer.clone(),
        audit: audit.clone(),
        deadline,
        enforce_windows: plan.enforce_windows,
        wall,
        settings,
    });
    let gate = Arc::new(Semaphore::new(PARALLEL_HOSTS));
    let mut set = tokio::task::JoinSet::new();
    let mut hosts = Vec::new();
    let mut swept = 0usize;
    let mut live = 0usize;
    let mut stop = None;
    let total = plan.addresses.len();
    let mut collect = |h: HostScan, hosts: &mut Vec<HostScan>, stop: &mut Option<StopReason>| {
        if h.alive {
            live += 1;
        }
        if stop.is_none() {
            *stop = h.cut_short;
        }
        if !h.ports.is_empty() {
            hosts.push(h);
        }
    };
    for addr in plan.addresses {
        if let Some(why) = cx.stop_reason() {
            stop = Some(why);
            break;
        }
        // The gate is never closed.
        let Ok(permit) = gate.clone().acquire_owned().await else {
            break;
        };
        while let Some(done) = set.try_join_next() {
            if let Ok(h) = done {
                collect(h, &mut hosts, &mut stop);
            }
        }
        let cx = cx.clone();
        swept += 1;
        set.spawn(async move {
            let _permit = permit;
            scan_host(addr, cx).await
        });
    }
    // In-flight probes end within their own deadline; past that, abort.
    let hard_stop = deadline.max(Instant::now())
        + cx.probe_limits.deadline
        + cx.settings.connect_timeout
        + Duration::from_secs(2);
    loop {
        match tokio::time::timeout_at(hard_stop, set.join_next()).await {
            Ok(Some(Ok(h))) => collect(h, &mut hosts, &mut stop),
            Ok(Some(Err(e))) => tracing::error!("a host scan task failed: {e}"),
            Ok(None) => break,
            Err(_) => {
                set.abort_all();
                stop = stop.or(Some(StopReason::Budget));
                break;
            }
        }
    }
    hosts.sort_by_key(|h| h.addr);
    SweepOutcome {
        hosts,
        swept,
        live,
        not_started: total - swept,
        stop,
        audit,
        sent: pacer.sent(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::collect::network::pace::TokioClock;
    use crate::collect::network::ports::parse_port_list;
    use crate::collect::network::probe::testutil::quick_limits;
    use crate::collect::network::settings::ScanWindow;
    use std::net::Ipv4Addr;
    use time::macros::datetime;
    use tokio::io::AsyncReadExt;

    #[test]
    fn first_ports_prefer_the_common_ones_then_the_lists_own() {
        assert_eq!(first_ports(&[21, 22, 23, 80, 443, 445]), vec![445, 80, 443]);
        assert_eq!(first_ports(&[22, 5000, 6000, 7000]), vec![22, 5000, 6000]);
        assert_eq!(first_ports(&[9000]), vec![9000]);
        assert!(first_ports(&[]).is_empty());
    }

    fn plan(ports: &str, addresses: Vec<IpAddr>) -> SweepPlan {
        SweepPlan {
            addresses,
            settings: ScanSettings {
                ports: parse_port_list(ports).expect("ports"),
                ..ScanSettings::default()
            },
            probe_limits: quick_limits(),
            enforce_windows: false,
        }
    }

    fn wall() -> Arc<dyn Clock> {
        Arc::new(FixedClock(datetime!(2026-11-26 12:00 UTC)))
    }

    async fn listener() -> (tokio::net::TcpListener, u16) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let p = l.local_addr().expect("addr").port();
        (l, p)
    }

    #[tokio::test]
    async fn open_printer_ports_are_reported_and_never_written_to() {
        use crate::collect::network::probe::testutil::live;
        // In a network namespace of its own, where 9100 is free.
        if !live::isolated(&live::test_path(
            module_path!(),
            "open_printer_ports_are_reported_and_never_written_to",
        )) {
            return;
        }
        let port = 9100;
        let l = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .expect("bind 127.0.0.1:9100");
        let got = tokio::spawn(async move {
            let mut all = Vec::new();
            while let Ok(Ok((mut s, _))) =
                tokio::time::timeout(Duration::from_secs(3), l.accept()).await
            {
                let mut b = Vec::new();
                let _ = s.read_to_end(&mut b).await;
                all.extend(b);
            }
            all
        });
        let out = sweep(
            plan(&port.to_string(), vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]),
            wall(),
            Arc::new(TokioClock::new()),
        )
        .await;
        assert_eq!(out.hosts.len(), 1);
        assert_eq!(
            out.hosts[0].ports,
            vec![PortScan {
                port,
                transport: Transport::Tcp,
                found: Found::Printer
            }]
        );
        assert!(got.await.expect("join").is_empty(), "printer got bytes");
    }

    #[tokio::test]
    async fn closed_ports_prove_a_live_host_but_make_no_host_entry() {
        let (l, port) = listener().await;
        drop(l);
        let out = sweep(
            plan(&port.to_string(), vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]),
            wall(),
            Arc::new(TokioClock::new()),
        )
        .await;
        assert_eq!(out.live, 1);
        assert!(out.hosts.is_empty());
        assert_eq!(out.swept, 1);
        assert_eq!(out.sent, 1);
    }

    #[tokio::test]
    async fn unknown_ports_get_a_bare_connect_then_one_hello() {
        let (l, port) = listener().await;
        let seen = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok(Ok((mut s, _))) =
                tokio::time::timeout(Duration::from_secs(3), l.accept()).await
            {
                let mut b = Vec::new();
                let _ =
                    tokio::time::timeout(Duration::from_millis(500), s.read_to_end(&mut b)).await;
                conns.push(b);
            }
            conns
        });
        let out = sweep(
            plan(&port.to_string(), vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]),
            wall(),
            Arc::new(TokioClock::new()),
        )
        .await;
        let conns = seen.await.expect("join");
        assert_eq!(conns.len(), 2, "the sweep's connect, then the hello");
        assert!(conns[0].is_empty(), "the sweep writes nothing");
        assert_eq!(&conns[1][..3], &[0x16, 0x03, 0x01], "a ClientHello");
        assert_eq!(out.hosts[0].ports[0].found, Found::Unknown);
        assert_eq!(out.sent, 2);
    }

    #[tokio::test]
    async fn an_ipv6_address_is_swept_like_an_ipv4_one() {
        use crate::collect::network::probe::testutil::live;
        // In a namespace of its own, whose loopback has ::1.
        if !live::isolated(&live::test_path(
            module_path!(),
            "an_ipv6_address_is_swept_like_an_ipv4_one",
        )) {
            return;
        }
        let l = tokio::net::TcpListener::bind("[::1]:0")
            .await
            .expect("bind ::1");
        let port = l.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                drop(s);
            }
        });
        let v6: IpAddr = "::1".parse().expect("ip");
        let out = sweep(
            plan(&port.to_string(), vec![v6]),
            wall(),
            Arc::new(TokioClock::new()),
        )
        .await;
        assert_eq!(out.hosts.len(), 1);
        assert_eq!(out.hosts[0].addr, v6);
        assert_eq!(out.hosts[0].ports[0].port, port);
        assert_eq!(out.hosts[0].ports[0].found, Found::Unknown);
    }

    #[tokio::test]
    async fn outside_its_window_the_service_starts_nothing() {
        let mut p = plan("22", vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        p.enforce_windows = true;
        p.settings.windows = vec![ScanWindow::parse("20:00-06:00").expect("window")];
        let out = sweep(p.clone(), wall(), Arc::new(TokioClock::new())).await;
        assert_eq!(out.stop, Some(StopReason::Window));
        assert_eq!(out.not_started, 1);
        assert_eq!(out.sent, 0);
        // `once` and `scan` ignore windows.
        p.enforce_windows = false;
        let out = sweep(p, wall(), Arc::new(TokioClock::new())).await;
        assert_eq!(out.stop, None);
        assert_eq!(out.swept, 1);
    }

    #[tokio::test]
    async fn a_spent_budget_stops_the_sweep_and_counts_what_was_not_reached() {
        let mut p = plan(
            "22",
            (1..=4)
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
                .collect(),
        );
        p.settings.budget = Duration::ZERO;
        let out = sweep(p, wall(), Arc::new(TokioClock::new())).await;
        assert_eq!(out.stop, Some(StopReason::Budget));
        assert_eq!(out.not_started, 4);
        assert_eq!(out.sent, 0);
    }
}
