//! `switchboard agent ...` commands that manage existing agents: list, change, disable,
//! enable, delete, reset a password, end sessions. They act on the running cluster through
//! Redis and the store like the admin API (sessions end and sockets close at once on every
//! node). Exit codes: 0 ok, 1 runtime failure (Redis or the store unreachable), 3 refused (the
//! last enabled admin), 4 no such agent, 64 invalid input (2: a usage error, from clap).

use clap::{Args, Subcommand};
use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use switchboard::chat::sessions::Ending;
use switchboard::chat::{ChatError, Service};
use switchboard::config::Settings;
use switchboard::protocol::ErrorCode;
use switchboard::store::{AgentChanges, Store};

#[derive(Subcommand)]
pub enum Manage {
    /// List every agent.
    List,
    /// Change an agent's display name, role, queues or capacity (its open consoles reconnect
    /// with the new settings).
    Set {
        username: String,
        /// Display name shown to visitors.
        #[arg(long)]
        name: Option<String>,
        /// agent, supervisor or admin.
        #[arg(long)]
        role: Option<String>,
        /// Comma-separated queue names (replaces the agent's queues).
        #[arg(long)]
        queues: Option<String>,
        #[arg(long)]
        max_chats: Option<i64>,
    },
    /// Disable an agent: it cannot log in, its sessions end, its chats are handed on.
    Disable { username: String },
    /// Enable a disabled agent again (it logs in anew).
    Enable { username: String },
    /// Delete an agent: its sessions end, its chats are handed on, its record goes.
    Delete { username: String },
    /// Set a new password (read from stdin or a file, never the command line); the agent's
    /// sessions end.
    ResetPassword {
        username: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// End every session of an agent (sign it out everywhere).
    Logout { username: String },
}

/// Longest password read from stdin or a file; the login refuses longer ones anyway.
const MAX_PASSWORD_BYTES: u64 = 1024;

/// Where a password comes from: standard input or a file, never the command line, where `ps`
/// shows it. At most one of the two; `reset-password` requires one, `agent add` one of them or
/// its `--password`.
#[derive(Args)]
#[group(id = "password_source", multiple = false)]
pub struct PasswordSource {
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    /// Read the password from the first line of this file.
    #[arg(long, value_name = "PATH")]
    password_file: Option<PathBuf>,
}

impl PasswordSource {
    /// The password: the first line, without its line ending; `None` when neither source was
    /// given. `Err` says what is wrong in words for the operator.
    pub fn read(&self) -> Result<Option<String>, String> {
        if self.password_stdin {
            return first_line(&mut std::io::stdin().lock(), "standard input").map(Some);
        }
        let Some(path) = &self.password_file else {
            return Ok(None);
        };
        let f = std::fs::File::open(path)
            .map_err(|e| format!("opening the password file {}: {e}", path.display()))?;
        first_line(&mut std::io::BufReader::new(f), &path.display().to_string()).map(Some)
    }
}

/// The first line of `r` (a password), bounded, non-empty, without its line ending.
fn first_line(r: &mut dyn BufRead, from: &str) -> Result<String, String> {
    let mut line = String::new();
    r.take(MAX_PASSWORD_BYTES + 2)
        .read_line(&mut line)
        .map_err(|e| format!("reading the password from {from}: {e}"))?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(format!("the password from {from} is empty"));
    }
    if line.len() as u64 > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password from {from} is longer than {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    Ok(line.to_string())
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(code)
}

/// The exit code of a refused change.
fn refused(e: ChatError) -> ExitCode {
    let code = match e.code {
        ErrorCode::NotFound => 4,
        ErrorCode::WrongState => 3,
        ErrorCode::InvalidField => 64,
        _ => 1,
    };
    fail(code, e.message)
}

pub async fn run(settings: Settings, cmd: Manage) -> ExitCode {
    if let Manage::List = cmd {
        return list(&settings).await;
    }
    let svc = match switchboard::app::service(settings, "cli").await {
        Ok(s) => s,
        Err(e) => return fail(1, format!("{e:#}")),
    };
    let username = match &cmd {
        Manage::Set { username, .. }
        | Manage::Disable { username }
        | Manage::Enable { username }
        | Manage::Delete { username }
        | Manage::ResetPassword { username, .. }
        | Manage::Logout { username } => username.clone(),
        Manage::List => unreachable!("handled above"),
    };
    let id = match svc.store.agent_by_username(&username).await {
        Ok(Some(a)) => a.id,
        Ok(None) => return fail(4, format!("no agent named {username:?}")),
        Err(e) => return fail(1, format!("reading the store: {e}")),
    };
    let done = apply(&svc, id, cmd).await;
    svc.redis.quit().await;
    match done {
        Ok(what) => {
            println!("{what} {username} (id {id})");
            ExitCode::SUCCESS
        }
        Err(e) => refused(e),
    }
}

async fn apply(svc: &Service, id: i64, cmd: Manage) -> Result<&'static str, ChatError> {
    match cmd {
        Manage::Set {
            name,
            role,
            queues,
            max_chats,
            ..
        } => {
            let changes = AgentChanges {
                display_name: name,
                role,
                max_chats,
                queues: queues.map(|q| {
                    q.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                }),
            };
            svc.change_agent(id, &changes).await?;
            Ok("changed")
        }
        Manage::Disable { .. } => svc.set_agent_disabled(id, true).await.map(|_| "disabled"),
        Manage::Enable { .. } => svc.set_agent_disabled(id, false).await.map(|_| "enabled"),
        Manage::Delete { .. } => svc.delete_agent(id).await.map(|_| "deleted"),
        Manage::ResetPassword { password, .. } => {
            let password = password
                .read()
                .and_then(|p| {
                    p.ok_or_else(|| {
                        "give the password with --password-stdin or --password-file".into()
                    })
                })
                .map_err(|e| ChatError::new(ErrorCode::InvalidField, e))?;
            svc.reset_agent_password(id, &password).await?;
            Ok("new password set for")
        }
        Manage::Logout { .. } => svc
            .end_agent_sessions(id, Ending::Admin)
            .await
            .map(|_| "signed out"),
        Manage::List => unreachable!("handled by run"),
    }
}

async fn list(settings: &Settings) -> ExitCode {
    let store = match Store::connect(&settings.store.url, 1).await {
        Ok(s) => s,
        Err(e) => return fail(1, format!("opening the store: {e}")),
    };
    let agents = match store.agents().await {
        Ok(a) => a,
        Err(e) => return fail(1, format!("reading the agents: {e}")),
    };
    println!(
        "{:>5}  {:<20} {:<6} {:<9} {:>4}  {:<24} name",
        "id", "username", "role", "state", "max", "queues"
    );
    for a in agents {
        println!(
            "{:>5}  {:<20} {:<6} {:<9} {:>4}  {:<24} {}",
            a.id,
            a.username,
            a.role,
            if a.disabled { "disabled" } else { "enabled" },
            a.max_chats,
            a.queues.join(","),
            a.display_name
        );
    }
    ExitCode::SUCCESS
}
