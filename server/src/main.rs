//! The `trustwatch-server` binary: argument parsing, logging, exit codes
//! (0 success, 1 failure with a message on stderr, 2 bad arguments).
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use time::OffsetDateTime;
use trustwatch_server::admin::{self, Format};
use trustwatch_server::clock::{Clock, SystemClock};
use trustwatch_server::config::{FileConfig, ServeFlags, ServeOptions};
use trustwatch_server::feedcmd;
use trustwatch_server::store::{ApiKeyRole, Store};
use trustwatch_server::vuln::{FeedKind, Policy};
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "trustwatch-server",
    version,
    about = "trustwatch server: enrolment, ingest, storage and query API"
)]
struct Cli {
    /// Directory holding the database, the CA and the server certificate.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "./trustwatch-data"
    )]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTPS API.
    Serve {
        /// TOML configuration file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Address to listen on (default 127.0.0.1:8443; port 0 picks one).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// PEM certificate of an existing CA (with --ca-key).
        #[arg(long, value_name = "PEM", requires = "ca_key")]
        ca_cert: Option<PathBuf>,
        /// PEM key of that CA (with --ca-cert).
        #[arg(long, value_name = "PEM", requires = "ca_cert")]
        ca_key: Option<PathBuf>,
        /// PEM server certificate chain (with --tls-key).
        #[arg(long, value_name = "PEM", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM key of that certificate (with --tls-cert).
        #[arg(long, value_name = "PEM", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Largest request body as sent, in bytes (default 8 MiB).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        max_body_bytes: Option<u64>,
    },
    /// Organisations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Enrollment tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Query API keys.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// Enrolled agents.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Vulnerability and end-of-life feeds.
    Feed {
        #[command(subcommand)]
        command: FeedCommand,
    },
    /// Recompute every organisation's score now (stale agents included)
    /// and print the league table.
    Score {
        /// Server config whose `[score]` section sets the agent interval.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The instant to score at (RFC 3339); default the clock.
        #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
        now: Option<OffsetDateTime>,
        /// Also re-score the daily history from this day (YYYY-MM-DD) to
        /// yesterday under the current model.
        #[arg(long, value_name = "DAY", value_parser = parse_day)]
        history_from: Option<time::Date>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Write a report (HTML, CSV or JSON) of one organisation, a parent and
    /// its descendants, or all organisations.
    #[command(group(clap::ArgGroup::new("scope").required(true).args(["org", "parent", "all"])))]
    Report {
        /// One organisation.
        #[arg(long, value_parser = parse_org_code)]
        org: Option<String>,
        /// An organisation and all its descendants.
        #[arg(long, value_parser = parse_org_code)]
        parent: Option<String>,
        /// Every organisation.
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum)]
        format: ReportFormatArg,
        /// The file to write (atomically); `-` for stdout.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The instant of the report (RFC 3339); default the clock.
        #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
        now: Option<OffsetDateTime>,
        /// Server config whose `[score]` section sets the agent interval.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Match an inventory (as printed by `trustwatch-agent scan host
    /// --format json`) against the imported feeds; stores nothing.
    Match {
        /// The inventory: a trustwatch.scan/v1 document or a host asset.
        #[arg(value_name = "INVENTORY.json")]
        inventory: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// The instant to judge at (RFC 3339); default the clock.
        #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
        now: Option<OffsetDateTime>,
        /// Server config whose `[eol]` section sets the policy.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ReportFormatArg {
    Html,
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KindArg {
    Osv,
    Kev,
    Epss,
    Eol,
}

#[derive(Debug, Subcommand)]
enum FeedCommand {
    /// Import feed files (kind told from content), then re-match every
    /// stored host inventory.
    Import {
        /// OSV zip, directory or JSON; KEV JSON; EPSS CSV(.gz); end-of-life
        /// JSON or endoflife.date file.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Force the kind instead of telling it from content.
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
        /// Server config whose `[eol]` section sets the re-matching policy
        /// (default: the policy `serve` last ran with).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The instant of the import (RFC 3339); default the clock.
        #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
        now: Option<OffsetDateTime>,
    },
    /// List imports with their age.
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// Add an organisation.
    Add {
        /// Organisation code: 1-32 of [A-Za-z0-9_-], starting alphanumeric.
        #[arg(value_parser = parse_org_code)]
        code: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Parent organisation code.
        #[arg(long, value_parser = parse_org_code)]
        parent: Option<String>,
    },
    /// List organisations.
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an enrollment token; prints it alone on the last line.
    Create {
        #[arg(long, value_parser = parse_org_code)]
        org: String,
        /// Lifetime, like 30m, 24h, 7d.
        #[arg(long, value_parser = parse_ttl, default_value = "24h")]
        ttl: Duration,
        /// How many agents may enrol with it.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        uses: u32,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    National,
    Org,
    Admin,
}

#[derive(Debug, Subcommand)]
enum ApikeyCommand {
    /// Create an API key; prints it alone on the last line.
    Create {
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The organisation an `org` key is limited to (only with --role org).
        #[arg(long, value_parser = parse_org_code, required_if_eq("role", "org"))]
        org: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// List agents.
    List {
        #[arg(long, value_parser = parse_org_code)]
        org: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Revoke an agent: its reports are refused from now on.
    Revoke {
        #[arg(value_name = "AGENT_ID")]
        id: Uuid,
    },
}

fn parse_org_code(s: &str) -> Result<String, String> {
    if trustwatch_common::identity::is_valid_org_code(s) {
        Ok(s.to_owned())
    } else {
        Err("expected 1-32 of [A-Za-z0-9_-], starting alphanumeric".into())
    }
}

fn parse_now(s: &str) -> Result<OffsetDateTime, String> {
    trustwatch_server::clock::parse_rfc3339(s).map_err(|e| format!("not an RFC 3339 instant: {e}"))
}

fn parse_day(s: &str) -> Result<time::Date, String> {
    trustwatch_server::store::scores::parse_day(s).ok_or_else(|| "expected YYYY-MM-DD".into())
}

fn load_policy(config: Option<&PathBuf>) -> anyhow::Result<Option<Policy>> {
    Ok(match config {
        Some(p) => Some(FileConfig::load(p)?.eol.policy()),
        None => None,
    })
}

fn parse_ttl(s: &str) -> Result<Duration, String> {
    trustwatch_common::identity::parse_duration(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Apikey {
        command: ApikeyCommand::Create { role, org: Some(_) },
    } = &cli.command
    {
        if !matches!(role, RoleArg::Org) {
            use clap::CommandFactory;
            Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--org is only allowed with --role org",
                )
                .exit();
        }
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let clock = Arc::new(SystemClock::from_env()?);
    let data_dir = cli.data_dir;
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Serve {
            config,
            listen,
            ca_cert,
            ca_key,
            tls_cert,
            tls_key,
            max_body_bytes,
        } => {
            drop(stdout);
            let file = match &config {
                Some(p) => FileConfig::load(p)?,
                None => FileConfig::default(),
            };
            let flags = ServeFlags {
                listen,
                max_body_bytes,
                ca_cert,
                ca_key,
                tls_cert,
                tls_key,
            };
            let opts = ServeOptions::resolve(data_dir, file, flags)?;
            let shutdown = trustwatch_server::server::shutdown_signal()
                .context("cannot install signal handlers")?;
            let clock: Arc<dyn Clock> = clock;
            let running = trustwatch_server::server::start(&opts, clock, shutdown).await?;
            running.wait().await?;
        }
        Command::Org { command } => {
            let store = Store::open_in(&data_dir).await?;
            match command {
                OrgCommand::Add { code, name, parent } => {
                    admin::org_add(
                        &store,
                        clock.as_ref(),
                        &code,
                        &name,
                        parent.as_deref(),
                        &mut stdout,
                    )
                    .await?
                }
                OrgCommand::List { format } => admin::org_list(&store, format, &mut stdout).await?,
            }
            store.close().await;
        }
        Command::Token {
            command: TokenCommand::Create { org, ttl, uses },
        } => {
            let store = Store::open_in(&data_dir).await?;
            admin::token_create(&store, clock.as_ref(), &org, ttl, uses, &mut stdout).await?;
            store.close().await;
        }
        Command::Apikey {
            command: ApikeyCommand::Create { role, org },
        } => {
            let role = match role {
                RoleArg::National => ApiKeyRole::National,
                RoleArg::Org => ApiKeyRole::Org,
                RoleArg::Admin => ApiKeyRole::Admin,
            };
            let store = Store::open_in(&data_dir).await?;
            admin::apikey_create(&store, clock.as_ref(), role, org.as_deref(), &mut stdout).await?;
            store.close().await;
        }
        Command::Feed { command } => {
            let store = Store::open_in(&data_dir).await?;
            match command {
                FeedCommand::Import {
                    paths,
                    kind,
                    config,
                    now,
                } => {
                    let policy = match load_policy(config.as_ref())? {
                        Some(p) => p,
                        None => store.saved_policy().await?.unwrap_or_default(),
                    };
                    let kind = kind.map(|k| match k {
                        KindArg::Osv => FeedKind::Osv,
                        KindArg::Kev => FeedKind::Kev,
                        KindArg::Epss => FeedKind::Epss,
                        KindArg::Eol => FeedKind::Eol,
                    });
                    let now = now.unwrap_or_else(|| clock.now());
                    let r = feedcmd::feed_import(
                        &store,
                        &paths,
                        kind,
                        now,
                        policy,
                        &mut stdout,
                        &mut std::io::stderr(),
                    )
                    .await;
                    store.close().await;
                    r?;
                }
                FeedCommand::List { format } => {
                    feedcmd::feed_list(&store, format, clock.now(), &mut stdout).await?;
                    store.close().await;
                }
            }
        }
        Command::Match {
            inventory,
            format,
            now,
            config,
        } => {
            let policy = load_policy(config.as_ref())?.unwrap_or_default();
            let now = now.unwrap_or_else(|| clock.now());
            feedcmd::match_inventory(&data_dir, &inventory, format, now, policy, &mut stdout)
                .await?;
        }
        Command::Score {
            config,
            now,
            history_from,
            format,
        } => {
            let settings = match &config {
                Some(p) => FileConfig::load(p)?.score.settings()?,
                None => Default::default(),
            };
            let store = Store::open_in(&data_dir).await?;
            let now = now.unwrap_or_else(|| clock.now());
            let r = trustwatch_server::scorecmd::score_command(
                &store,
                now,
                settings.agent_interval,
                history_from,
                format,
                &mut stdout,
                &mut std::io::stderr(),
            )
            .await;
            store.close().await;
            r?;
        }
        Command::Report {
            org,
            parent,
            all,
            format,
            out,
            now,
            config,
        } => {
            use trustwatch_server::report::{cmd::report_command, Format as ReportFormat, Scope};
            let scope = match (org, parent, all) {
                (Some(o), _, _) => Scope::Org(o),
                (None, Some(p), _) => Scope::Parent(p),
                _ => Scope::All,
            };
            let format = match format {
                ReportFormatArg::Html => ReportFormat::Html,
                ReportFormatArg::Csv => ReportFormat::Csv,
                ReportFormatArg::Json => ReportFormat::Json,
            };
            let settings = match &config {
                Some(p) => FileConfig::load(p)?.score.settings()?,
                None => Default::default(),
            };
            let store = Store::open_in(&data_dir).await?;
            let now = now.unwrap_or_else(|| clock.now());
            let r = report_command(
                &store,
                &scope,
                format,
                &out,
                now,
                settings.agent_interval,
                &mut stdout,
            )
            .await;
            store.close().await;
            let n = r?;
            if out.as_os_str() != "-" {
                eprintln!("report written to {} ({n} bytes)", out.display());
            }
        }
        Command::Agent { command } => {
            let store = Store::open_in(&data_dir).await?;
            match command {
                AgentCommand::List { org, format } => {
                    admin::agent_list(&store, org.as_deref(), format, &mut stdout).await?
                }
                AgentCommand::Revoke { id } => {
                    admin::agent_revoke(&store, clock.as_ref(), id, &mut stdout).await?
                }
            }
            store.close().await;
        }
    }
    Ok(())
}
