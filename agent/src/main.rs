//! `trustwatch-agent` command line: parses arguments, sets up logging to
//! stderr (RUST_LOG, default `info`), runs a command of the library and maps
//! its outcome to an exit status: 0 done, 1 failed (config, enrolment,
//! spool), 2 bad arguments (clap).
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tracing_subscriber::EnvFilter;

use trustwatch_agent::clock::{Clock, FixedClock, SystemClock};
use trustwatch_agent::collect::host;
use trustwatch_agent::collect::network;
use trustwatch_agent::collect::tls;
use trustwatch_agent::config::{self, Config, ConfigSource, ServerUrl};
use trustwatch_agent::enroll::{self, EnrollOptions};
use trustwatch_agent::service::{self, Agent};
use trustwatch_agent::state::StateDir;
use trustwatch_agent::{scan, status};

#[derive(Debug, Parser)]
#[command(
    name = "trustwatch-agent",
    version,
    about = "trustwatch agent: collects TLS, patch-level and legacy-device signals and ships reports"
)]
struct Cli {
    /// Config file [default: /etc/trustwatch/agent.toml; built-in defaults if that is missing].
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// State directory (overrides the config's state_dir) [default: /var/lib/trustwatch].
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
enum Format {
    Json,
    #[default]
    Table,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Obtain credentials from the server with an enrolment token.
    Enroll {
        /// Server base URL, https://host:port.
        #[arg(long, value_name = "URL", value_parser = parse_server_url)]
        server: ServerUrl,
        /// File holding the enrolment token (never pass it on the command line).
        #[arg(long, value_name = "FILE")]
        token_file: PathBuf,
        /// PEM file of the CA to trust for the server (default: the webpki roots).
        #[arg(long, value_name = "PEM")]
        server_ca: Option<PathBuf>,
    },
    /// One round now with every configured collector, spool it, ship the spool, exit.
    Once,
    /// The service: scheduled collection, spool and shipping until SIGTERM/SIGINT.
    Run,
    /// Enrolment, spool, last runs and server reachability.
    Status {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// One-shot scans that print their result.
    Scan {
        #[command(subcommand)]
        what: Scan,
    },
}

#[derive(Debug, Subcommand)]
enum Scan {
    /// This machine: OS identity, kernel, uptime, CPUs, memory, packages, reboot and update signals.
    Host {
        /// Root of the filesystem to inventory (a mounted image or container root).
        #[arg(long, value_name = "DIR", default_value = "/", value_parser = parse_root)]
        root: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// The clock to use, RFC 3339 (e.g. 2025-01-31T12:00:00Z).
        #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
        now: Option<OffsetDateTime>,
    },
    /// Sweep address ranges for legacy devices (SMBv1, EOL Windows, telnet, FTP, SNMP, RDP, SSH) and assess the TLS ports found.
    Network {
        /// Ranges to sweep, CIDR (an address alone is a /32 or /128); at most 65,536 addresses each.
        #[arg(required = true, value_name = "CIDR", value_parser = parse_scan_range)]
        ranges: Vec<config::Cidr>,
        /// Ports, like 22,80,8000-8100,161/udp [default: the config's, else the built-in list].
        #[arg(long, value_name = "LIST", value_parser = parse_ports)]
        ports: Option<network::ports::PortList>,
        /// A range never sent a packet (repeatable; the config's exclude ranges apply too).
        #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
        exclude: Vec<config::Cidr>,
        /// Connection attempts plus UDP requests per second, all hosts together [default: the config's, 1000].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
        rate: Option<u32>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// The clock to use, RFC 3339 (e.g. 2025-01-31T12:00:00Z).
        #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
        now: Option<OffsetDateTime>,
    },
    /// TLS endpoints: protocols, cipher suites, key exchange, certificate chain, grade.
    Tls {
        /// Endpoints, host:port ([v6addr]:port); the host is also the SNI and the name checked.
        #[arg(required = true, value_name = "TARGET", value_parser = parse_target)]
        targets: Vec<tls::Target>,
        /// PEM file of roots to trust beside the system's and the webpki roots (repeatable).
        #[arg(long, value_name = "PEM")]
        ca: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Endpoints assessed at the same time (each gets at most 2 connections at a time).
        #[arg(long, value_name = "N", default_value_t = 4,
              value_parser = clap::value_parser!(u16).range(1..=64))]
        concurrency: u16,
        /// Time limit of one connection, in milliseconds.
        #[arg(long, value_name = "N", default_value_t = 5000,
              value_parser = clap::value_parser!(u64).range(1..=600_000))]
        timeout_ms: u64,
        /// Upper bound of the random pause before each handshake, in milliseconds.
        #[arg(long, value_name = "N", default_value_t = 5,
              value_parser = clap::value_parser!(u64).range(0..=60_000))]
        pause_ms: u64,
        /// Time limit of one endpoint's whole assessment, in seconds.
        #[arg(long, value_name = "N", default_value_t = 60,
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        endpoint_timeout_s: u64,
        /// The clock to use, RFC 3339 (e.g. 2025-01-31T12:00:00Z).
        #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
        now: Option<OffsetDateTime>,
    },
}

fn parse_scan_range(s: &str) -> Result<config::Cidr, String> {
    let c: config::Cidr = s.parse()?;
    network::targets::check_range(&c).map_err(|e| e.to_string())?;
    Ok(c)
}

fn parse_cidr(s: &str) -> Result<config::Cidr, String> {
    s.parse()
}

fn parse_ports(s: &str) -> Result<network::ports::PortList, String> {
    network::ports::parse_port_list(s).map_err(|e| e.to_string())
}

fn parse_target(s: &str) -> Result<tls::Target, String> {
    s.parse()
}

fn parse_server_url(s: &str) -> Result<ServerUrl, String> {
    ServerUrl::parse(s)
}

fn parse_root(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    if p.is_dir() {
        Ok(p)
    } else {
        Err(format!("{s} is not a directory"))
    }
}

fn parse_now(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| format!("not an RFC 3339 time: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let source = match &cli.config {
        Some(p) => ConfigSource::Explicit(p),
        None => ConfigSource::Default,
    };
    Ok(config::load(source, cli.state_dir.as_deref())?)
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Enroll {
            server,
            token_file,
            server_ca,
        } => {
            let cfg = load_config(&cli)?;
            let opts = EnrollOptions {
                server: server.clone(),
                token_file: token_file.clone(),
                server_ca: server_ca.clone(),
                state: StateDir::new(&cfg.state_dir),
                hostname: host::hostname(),
            };
            let e = enroll::enroll(&opts, &SystemClock).await?;
            println!("enrolled as agent {} of organisation {}", e.agent_id, e.org);
            Ok(ExitCode::SUCCESS)
        }
        Command::Once => {
            let cfg = load_config(&cli)?;
            let agent = Agent::load(&cfg)?;
            let out = service::once(&agent).await?;
            let remaining = agent.spool.stats().map(|s| s.depth).unwrap_or_default();
            match out.drain.end.problem() {
                None => tracing::info!(
                    "report {} spooled; {} report(s) shipped",
                    out.report_id,
                    out.drain.shipped
                ),
                Some(p) => eprintln!(
                    "report {} spooled, but shipping failed: {p} ({} report(s) shipped, {remaining} still spooled)",
                    out.report_id, out.drain.shipped
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => {
            let mut cfg = load_config(&cli)?;
            // Scan windows apply to the service only (DESIGN §3).
            cfg.collect.network.enforce_windows = true;
            let agent = Arc::new(Agent::load(&cfg)?);
            tracing::info!(
                "trustwatch-agent {} running as agent {}",
                env!("CARGO_PKG_VERSION"),
                agent.agent.id
            );
            service::run(agent, service::shutdown_signal()).await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { format } => {
            let cfg = load_config(&cli)?;
            let s = status::gather(&cfg).await;
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&s).context("encoding status")?
                ),
                Format::Table => print!("{}", status::render_table(&s)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Scan {
            what:
                Scan::Tls {
                    targets,
                    ca,
                    format,
                    concurrency,
                    timeout_ms,
                    pause_ms,
                    endpoint_timeout_s,
                    now,
                },
        } => {
            let store = match tls::TrustStore::load(ca, true) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: --ca {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let clock: Arc<dyn Clock> = match now {
                Some(t) => Arc::new(FixedClock(*t)),
                None => Arc::new(SystemClock),
            };
            let limits = tls::ScanLimits {
                timeout: std::time::Duration::from_millis(*timeout_ms),
                pause: std::time::Duration::from_millis(*pause_ms),
                endpoint_budget: std::time::Duration::from_secs(*endpoint_timeout_s),
                concurrency: usize::from(*concurrency),
                ..tls::ScanLimits::default()
            };
            let doc = tls::scan_document(targets, limits, store, clock).await;
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&doc).context("encoding the scan document")?
                ),
                Format::Table => print!("{}", tls::table::render_table(&doc)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Scan {
            what:
                Scan::Network {
                    ranges,
                    ports,
                    exclude,
                    rate,
                    format,
                    now,
                },
        } => {
            let cfg = load_config(&cli)?;
            let n = &cfg.collect.network;
            let mut settings = n.settings.clone();
            if let Some(p) = ports {
                settings.ports = p.clone();
            }
            if let Some(r) = rate {
                settings.rate = *r;
                settings.host_rate = settings.host_rate.min(*r);
            }
            let mut excluded = n.exclude.clone();
            excluded.extend(exclude.iter().copied());
            let mut job = network::NetworkJob::new(ranges.clone(), excluded, settings);
            job.tls_ca = cfg.collect.tls.ca.clone();
            let clock: Arc<dyn Clock> = match now {
                Some(t) => Arc::new(FixedClock(*t)),
                None => Arc::new(SystemClock),
            };
            let doc = network::scan_document(&job, clock).await?;
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&doc).context("encoding the scan document")?
                ),
                Format::Table => print!("{}", network::table::render_table(&doc)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Scan {
            what: Scan::Host { root, format, now },
        } => {
            let clock: Arc<dyn Clock> = match now {
                Some(t) => Arc::new(FixedClock(*t)),
                None => Arc::new(SystemClock),
            };
            let doc = scan::scan_host(root.clone(), clock).await;
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&doc).context("encoding the scan document")?
                ),
                Format::Table => print!("{}", scan::render_table(&doc)),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
