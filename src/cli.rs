//! `switchboard agent ...` commands that manage existing agents: list, change, disable,
//! enable, delete, reset a password, end sessions. They act on the running cluster through
//! Redis and the store like the admin API (sessions end and sockets close at once on every
//! node). Exit codes: 0 ok, 1 runtime failure (Redis or the store unreachable), 3 refused (the
//! last enabled admin), 4 no such agent, 64 invalid input (2: a usage error, from clap).

use clap::{Args, Subcommand};
use std::io::Read;
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

/// Where a password comes from: never the command line, where `ps` shows it.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct PasswordSource {
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    /// Read the password from the first line of this file.
    #[arg(long, value_name = "PATH")]
    password_file: Option<PathBuf>,
}

impl PasswordSource {
    /// The password: the first line, without its line ending.
    pub fn read(&self) -> std::io::Result<String> {
        let text = match &self.password_file {
            Some(path) => std::fs::read_to_string(path)?,
            None => {
                let mut s = String::new();
                std::io::stdin().take(64 * 1024).read_to_string(&mut s)?;
                s
            }
        };
        Ok(text.lines().next().unwrap_or("").to_string())
    }
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
            let password = password.read().map_err(|e| {
                ChatError::new(
                    ErrorCode::InvalidField,
                    format!("reading the password: {e}"),
                )
            })?;
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
