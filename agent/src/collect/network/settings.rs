//! The do-no-harm settings of the network collector (`[collect.network]`
//! beyond `ranges`/`exclude`), their defaults, their validation, and scan
//! windows.
//!
//! Every value has a safe default, so an empty `[collect.network]` with
//! only `ranges` is gentle: [`DEFAULT_RATE`] connection attempts (and UDP
//! requests) per second overall, [`DEFAULT_HOST_RATE`] per host, at most
//! [`MAX_HOST_CONNECTIONS`] connections to one host at a time, a hard
//! [`DEFAULT_BUDGET`] per run and no scan window (any time).
//!
//! Scan-window format: `"HH:MM-HH:MM"` in **UTC** (24-hour clock). The start
//! is inclusive, the end exclusive; a window whose end is not after its
//! start wraps midnight (`"20:00-06:00"` is 20:00 to 06:00 the next
//! morning); `"00:00-00:00"` is the whole day. Windows apply to the
//! service (`run`) only: `once` and `scan network` ignore them (DESIGN §3).

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;
use trustwatch_common::identity::parse_duration;

use super::ports::{parse_port_list, PortList};

/// Default overall rate: connection attempts plus UDP requests per second.
pub const DEFAULT_RATE: u32 = 1000;
/// Default rate towards one host, per second.
pub const DEFAULT_HOST_RATE: u32 = 40;
/// Most connections open to one host at the same time (and the default).
pub const MAX_HOST_CONNECTIONS: usize = 2;
/// Default hard time budget of one run.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(4 * 3600);
/// Default wait for a TCP connection during the sweep.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Highest rate accepted (anything above is a typo, not a wish).
pub const MAX_RATE: u32 = 100_000;

/// A scan window: minutes after midnight UTC, `start` inclusive, `end`
/// exclusive; `end <= start` wraps midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanWindow {
    start: u16,
    end: u16,
}

impl ScanWindow {
    /// Parses `"HH:MM-HH:MM"`.
    pub fn parse(text: &str) -> Result<ScanWindow, String> {
        let (a, b) = text
            .split_once('-')
            .ok_or_else(|| format!("{text:?} is not HH:MM-HH:MM"))?;
        let minute = |s: &str| -> Result<u16, String> {
            let s = s.trim();
            let (h, m) = s
                .split_once(':')
                .ok_or_else(|| format!("{s:?} is not HH:MM"))?;
            let ok = |p: &str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit());
            if !ok(h) || !ok(m) {
                return Err(format!("{s:?} is not HH:MM"));
            }
            let (h, m): (u16, u16) = (
                h.parse().map_err(|_| format!("{s:?}: bad hour"))?,
                m.parse().map_err(|_| format!("{s:?}: bad minute"))?,
            );
            if h > 23 || m > 59 {
                return Err(format!("{s:?} is not a time of day"));
            }
            Ok(h * 60 + m)
        };
        Ok(ScanWindow {
            start: minute(a)?,
            end: minute(b)?,
        })
    }

    /// Whether the window is open at minute `m` of the day (UTC).
    fn contains_minute(&self, m: u16) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&m)
        } else {
            // Wraps midnight (or the whole day when start == end).
            m >= self.start || m < self.end
        }
    }

    /// Whether the window is open at `t`.
    pub fn is_open(&self, t: OffsetDateTime) -> bool {
        let utc = t.to_offset(time::UtcOffset::UTC);
        self.contains_minute(u16::from(utc.hour()) * 60 + u16::from(utc.minute()))
    }
}

impl fmt::Display for ScanWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// How long from `t` until a scan may run: zero when a window is open (or
/// none is configured), else the time to the next window's start.
pub fn wait_for_window(windows: &[ScanWindow], t: OffsetDateTime) -> std::time::Duration {
    if windows_open(windows, t) {
        return std::time::Duration::ZERO;
    }
    let utc = t.to_offset(time::UtcOffset::UTC);
    let minute = u16::from(utc.hour()) * 60 + u16::from(utc.minute());
    let into_minute = u64::from(utc.second());
    let minutes = windows
        .iter()
        .map(|w| (w.start + 1440 - minute) % 1440)
        .min()
        .unwrap_or(0);
    std::time::Duration::from_secs((u64::from(minutes) * 60).saturating_sub(into_minute).max(1))
}

/// Whether a scan may run at `t`: no windows means any time.
pub fn windows_open(windows: &[ScanWindow], t: OffsetDateTime) -> bool {
    windows.is_empty() || windows.iter().any(|w| w.is_open(t))
}

/// Validated do-no-harm settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSettings {
    /// Ports swept on every address.
    pub ports: PortList,
    /// Connection attempts plus UDP requests per second, all hosts together.
    pub rate: u32,
    /// The same towards one host.
    pub host_rate: u32,
    /// Connections open to one host at the same time (1 or 2).
    pub host_connections: usize,
    /// When `run` may scan (UTC); empty: any time.
    pub windows: Vec<ScanWindow>,
    /// Hard limit of one run: no connection starts after it.
    pub budget: Duration,
    /// Wait for one TCP connection of the sweep.
    pub connect_timeout: Duration,
    /// The estate has Windows Extended Security Updates (a Windows release
    /// counts as supported until its ESU end).
    pub windows_esu: bool,
}

impl Default for ScanSettings {
    fn default() -> Self {
        ScanSettings {
            ports: PortList::default_sweep(),
            rate: DEFAULT_RATE,
            host_rate: DEFAULT_HOST_RATE,
            host_connections: MAX_HOST_CONNECTIONS,
            windows: Vec::new(),
            budget: DEFAULT_BUDGET,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            windows_esu: false,
        }
    }
}

/// The settings as written in the config file (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSettings<'a> {
    pub ports: Option<&'a str>,
    pub rate: Option<u32>,
    pub host_rate: Option<u32>,
    pub host_connections: Option<u32>,
    pub windows: &'a [String],
    pub budget: Option<&'a str>,
    pub connect_timeout: Option<&'a str>,
    pub windows_esu: Option<bool>,
}

impl ScanSettings {
    /// Validates raw values; an error names the key (below
    /// `collect.network.`) and the reason.
    pub fn from_raw(raw: &RawSettings<'_>) -> Result<ScanSettings, (String, String)> {
        let d = ScanSettings::default();
        let bad = |key: &str, why: String| (key.to_owned(), why);
        let ports = match raw.ports {
            None => d.ports,
            Some(p) => parse_port_list(p).map_err(|e| bad("ports", e.to_string()))?,
        };
        let rate = raw.rate.unwrap_or(d.rate);
        if rate == 0 || rate > MAX_RATE {
            return Err(bad("rate", format!("must be 1..={MAX_RATE}")));
        }
        let host_rate = raw.host_rate.unwrap_or(d.host_rate);
        if host_rate == 0 || host_rate > rate {
            return Err(bad(
                "host_rate",
                "must be at least 1 and at most `rate`".into(),
            ));
        }
        let host_connections = match raw.host_connections {
            None => d.host_connections,
            Some(n @ 1..=2) => n as usize,
            Some(_) => return Err(bad("host_connections", "must be 1 or 2".into())),
        };
        let windows = raw
            .windows
            .iter()
            .enumerate()
            .map(|(i, w)| ScanWindow::parse(w).map_err(|e| bad(&format!("windows[{i}]"), e)))
            .collect::<Result<Vec<_>, _>>()?;
        let dur = |key: &str, v: Option<&str>, default: Duration| match v {
            None => Ok(default),
            Some(s) => match parse_duration(s) {
                Ok(d) if d >= Duration::from_secs(1) => Ok(d),
                Ok(_) => Err(bad(key, "must be at least 1s".into())),
                Err(e) => Err(bad(key, e.to_string())),
            },
        };
        Ok(ScanSettings {
            ports,
            rate,
            host_rate,
            host_connections,
            windows,
            budget: dur("budget", raw.budget, d.budget)?,
            connect_timeout: dur("connect_timeout", raw.connect_timeout, d.connect_timeout)?,
            windows_esu: raw.windows_esu.unwrap_or(d.windows_esu),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn windows_parse_print_and_wrap_midnight() {
        let w = ScanWindow::parse("20:00-06:00").expect("valid");
        assert_eq!(w.to_string(), "20:00-06:00");
        assert!(w.is_open(datetime!(2026-11-26 20:00 UTC)));
        assert!(w.is_open(datetime!(2026-11-26 23:59 UTC)));
        assert!(w.is_open(datetime!(2026-11-27 05:59 UTC)));
        assert!(!w.is_open(datetime!(2026-11-27 06:00 UTC)));
        assert!(!w.is_open(datetime!(2026-11-26 12:00 UTC)));
        assert!(!w.is_open(datetime!(2026-11-26 19:59 UTC)));
        let day = ScanWindow::parse("09:30-17:00").expect("valid");
        assert!(day.is_open(datetime!(2026-11-26 09:30 UTC)));
        assert!(!day.is_open(datetime!(2026-11-26 17:00 UTC)));
        assert!(!day.is_open(datetime!(2026-11-26 09:29 UTC)));
        let all = ScanWindow::parse("00:00-00:00").expect("valid");
        assert!(all.is_open(datetime!(2026-11-26 13:13 UTC)));
    }

    #[test]
    fn windows_are_judged_in_utc_whatever_the_offset_of_the_time() {
        let w = ScanWindow::parse("20:00-06:00").expect("valid");
        // 21:00 at +02:00 is 19:00 UTC: closed.
        assert!(!w.is_open(datetime!(2026-11-26 21:00 +02:00)));
        // 01:00 at +02:00 is 23:00 UTC: open.
        assert!(w.is_open(datetime!(2026-11-27 01:00 +02:00)));
    }

    #[test]
    fn no_window_means_any_time_and_several_windows_are_ored() {
        assert!(windows_open(&[], datetime!(2026-11-26 12:00 UTC)));
        let ws = [
            ScanWindow::parse("01:00-02:00").expect("valid"),
            ScanWindow::parse("12:00-13:00").expect("valid"),
        ];
        assert!(windows_open(&ws, datetime!(2026-11-26 12:30 UTC)));
        assert!(windows_open(&ws, datetime!(2026-11-26 01:00 UTC)));
        assert!(!windows_open(&ws, datetime!(2026-11-26 02:00 UTC)));
    }

    #[test]
    fn malformed_windows_are_refused() {
        for bad in [
            "",
            "20:00",
            "20-06",
            "24:00-01:00",
            "20:60-21:00",
            "8:00-9:00",
            "ab:cd-01:00",
            "20:00-06:00-07:00",
        ] {
            assert!(ScanWindow::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn defaults_are_gentle() {
        let s = ScanSettings::from_raw(&RawSettings::default()).expect("defaults");
        assert_eq!(s, ScanSettings::default());
        assert_eq!(s.rate, 1000);
        assert_eq!(s.host_rate, 40);
        assert_eq!(s.host_connections, 2);
        assert!(s.windows.is_empty());
        assert_eq!(s.budget, Duration::from_secs(4 * 3600));
        assert!(!s.windows_esu);
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let windows = vec!["20:00-06:00".to_owned(), "nope".to_owned()];
        let cases: Vec<(RawSettings<'_>, &str)> = vec![
            (
                RawSettings {
                    ports: Some("0"),
                    ..Default::default()
                },
                "ports",
            ),
            (
                RawSettings {
                    rate: Some(0),
                    ..Default::default()
                },
                "rate",
            ),
            (
                RawSettings {
                    rate: Some(10),
                    host_rate: Some(20),
                    ..Default::default()
                },
                "host_rate",
            ),
            (
                RawSettings {
                    host_connections: Some(3),
                    ..Default::default()
                },
                "host_connections",
            ),
            (
                RawSettings {
                    windows: &windows,
                    ..Default::default()
                },
                "windows[1]",
            ),
            (
                RawSettings {
                    budget: Some("0s"),
                    ..Default::default()
                },
                "budget",
            ),
            (
                RawSettings {
                    connect_timeout: Some("soon"),
                    ..Default::default()
                },
                "connect_timeout",
            ),
        ];
        for (raw, key) in cases {
            let (got, _) = ScanSettings::from_raw(&raw).expect_err(key);
            assert_eq!(got, key);
        }
    }

    #[test]
    fn wait_for_window_counts_to_the_next_start_and_is_zero_inside() {
        use time::macros::datetime;
        let w = vec![ScanWindow::parse("20:00-06:00").unwrap()];
        let d = |t| wait_for_window(&w, t).as_secs();
        assert_eq!(d(datetime!(2026-11-26 21:00 UTC)), 0);
        assert_eq!(d(datetime!(2026-11-26 05:59 UTC)), 0);
        assert_eq!(d(datetime!(2026-11-26 06:00 UTC)), 14 * 3600);
        assert_eq!(d(datetime!(2026-11-26 19:59:30 UTC)), 30);
        assert_eq!(
            wait_for_window(&[], datetime!(2026-11-26 12:00 UTC)).as_secs(),
            0
        );
        let two = vec![
            ScanWindow::parse("01:00-02:00").unwrap(),
            ScanWindow::parse("13:00-14:00").unwrap(),
        ];
        assert_eq!(
            wait_for_window(&two, datetime!(2026-11-26 12:00 UTC)).as_secs(),
            3600
        );
        assert_eq!(
            wait_for_window(&two, datetime!(2026-11-26 15:00 UTC)).as_secs(),
            10 * 3600
        );
    }
}
