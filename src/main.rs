//! `switchboard serve` runs a node; `switchboard agent add` creates an agent (the first admin);
//! the other `switchboard agent` commands manage agents (`cli`).
//! Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 agent already exists (or the last
//! enabled admin), 4 no such agent, 64 bad configuration or input.

mod cli;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use switchboard::config::Settings;
use switchboard::store::{NewAgent, Store, StoreError};

/// mimalloc rather than the system allocator: a node holds many small long-lived blocks per
/// connection between short-lived ones, and mimalloc packs them tighter and gives freed
/// memory back (see docs/benchmarks.md for the per-connection figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "switchboard", version, about = "Live-chat cluster node")]
struct Cli {
    /// Configuration file layered over the defaults (environment variables still win).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: HTTP and WebSocket on `server.listen`.
    Serve,
    /// Manage agents.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Create an agent (use --role admin for the first admin). Give the password with
    /// --password-stdin or --password-file: a --password argument shows in `ps` to every user
    /// of the machine.
    Add {
        #[arg(long)]
        username: String,
        /// The password on the command line (visible in `ps`; prefer the two forms below).
        #[arg(
            long,
            required_unless_present = "password_source",
            conflicts_with = "password_source"
        )]
        password: Option<String>,
        #[command(flatten)]
        source: cli::PasswordSource,
        /// Display name shown to visitors.
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "agent")]
        role: String,
        #[arg(long)]
        max_chats: Option<i64>,
        /// Comma-separated queue names.
        #[arg(long)]
        queues: Option<String>,
    },
    #[command(flatten)]
    Manage(cli::Manage),
}

fn init_logs(s: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&s.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt().with_env_filter(filter);
    if s.log.format == "json" {
        b.json().init();
    } else {
        b.init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(64);
        }
    };
    init_logs(&settings);
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::Agent {
            command: AgentCommand::Manage(cmd),
        } => cli::run(settings, cmd).await,
        Command::Agent {
            command:
                AgentCommand::Add {
                    username,
                    password,
                    source,
                    name,
                    role,
                    max_chats,
                    queues,
                },
        } => {
            let password = match password.map(Ok).unwrap_or_else(|| {
                source.read().and_then(|p| {
                    p.ok_or_else(|| {
                        "give the password with --password-stdin, --password-file or --password"
                            .into()
                    })
                })
            }) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(64);
                }
            };
            let timeouts = switchboard::store::Timeouts::from_settings(&settings.store);
            let store = match Store::connect_with(&settings.store.url, 1, timeouts).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("opening the store: {e}");
                    return ExitCode::from(1);
                }
            };
            let new = NewAgent {
                display_name: name.unwrap_or_else(|| username.clone()),
                username,
                password,
                role,
                max_chats: max_chats.unwrap_or(settings.chat.default_max_chats as i64),
                queues: queues
                    .map(|q| {
                        q.split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_else(|| vec![settings.chat.default_queue.clone()]),
            };
            match store.create_agent(&new).await {
                Ok(a) => {
                    println!(
                        "created agent {} (id {}, role {})",
                        a.username, a.id, a.role
                    );
                    ExitCode::SUCCESS
                }
                Err(StoreError::Conflict(m)) => {
                    eprintln!("{m}");
                    ExitCode::from(3)
                }
                Err(StoreError::Invalid(m)) => {
                    eprintln!("invalid agent: {m}");
                    ExitCode::from(64)
                }
                Err(e) => {
                    eprintln!("creating the agent: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

async fn serve(settings: Settings) -> ExitCode {
    // Every socket is a file: a node holding many connections must not stop accepting at a
    // low default soft limit while the hard limit allows more.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::info!(open_files = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    let running = match switchboard::app::start(settings).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitCode::from(1);
        }
    };
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("installing the SIGTERM handler: {e}");
            return ExitCode::from(1);
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    running.drain().await;
    ExitCode::SUCCESS
}
