//! The command line: global options, the scenarios and their flags, and the number parsers
//! that refuse a rate or duration no run could use before anything starts.

use crate::{chat, net};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "switchboard-loadtest",
    about = "Load generator for a Switchboard cluster (loopback targets only)"
)]
pub(crate) struct Cli {
    /// Node base URLs, comma-separated; clients are spread over them like a load balancer would.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    pub(crate) targets: String,
    /// What the targets are: Switchboard nodes, or the Socket.IO peer or the bare relay
    /// (loadtest/peers/; scenarios chat, ramp and idle).
    #[arg(long, global = true, value_enum, default_value = "switchboard")]
    pub(crate) peer: net::Peer,
    #[arg(long, global = true, value_enum, default_value = "msgpack")]
    pub(crate) encoding: Enc,
    /// Write the full report as JSON here.
    #[arg(long, global = true)]
    pub(crate) json: Option<std::path::PathBuf>,
    /// Spread client sockets over 127.0.0.1 ..= 127.0.0.N.
    #[arg(long, global = true, default_value_t = 8)]
    pub(crate) source_addrs: u8,
    /// PIDs of the node processes, in the order of --targets (memory and CPU are read from /proc).
    #[arg(long, global = true, value_delimiter = ',')]
    pub(crate) node_pids: Vec<u32>,
    /// PID of redis-server, to report its CPU.
    #[arg(long, global = true)]
    pub(crate) redis_pid: Option<u32>,
    /// Runtime threads of the load generator (1: one thread reads every socket; the paced
    /// sends come from the sender thread in any case).
    #[arg(long, global = true, default_value_t = 1)]
    pub(crate) threads: usize,
    /// Hard bound on the whole run; the report is written with what was measured so far.
    #[arg(long, global = true, default_value_t = 900)]
    pub(crate) max_seconds: u64,
    #[command(subcommand)]
    pub(crate) scenario: Scenario,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Enc {
    Json,
    Msgpack,
}

#[derive(Subcommand)]
pub(crate) enum Scenario {
    /// Create load-test agents through the admin HTTP API (needs an admin account).
    Agents {
        #[arg(long)]
        admin_user: String,
        #[arg(long)]
        admin_password: String,
        #[arg(long, default_value_t = 500)]
        count: usize,
        #[arg(long, default_value = "lt-agent-")]
        prefix: String,
        #[arg(long, default_value = "load-test-password")]
        password: String,
        #[arg(long, default_value_t = 20)]
        max_chats: i64,
        #[arg(long, default_value_t = 4)]
        parallel: usize,
    },
    /// Open N visitor connections and hold them.
    Idle {
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        hold_secs: u64,
        /// Connections being set up at once.
        #[arg(long, default_value_t = 64)]
        parallel: usize,
        /// One visitor session per target shared by all its connections (skips N HTTP calls).
        #[arg(long)]
        shared_token: bool,
        /// Index of the first connection (when several client processes share the work).
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// Chats exchanging messages both ways at a fixed total rate.
    Chat {
        #[command(flatten)]
        c: ChatArgs,
        /// Total messages per second (both directions, all chats).
        #[arg(long, value_parser = at_least_zero, default_value_t = 1000.0)]
        rate: f64,
        #[arg(long, value_parser = above_zero, default_value_t = 10.0)]
        duration: f64,
        /// Seconds at the rate before measuring.
        #[arg(long, value_parser = at_least_zero, default_value_t = 2.0)]
        warmup: f64,
    },
    /// Step the rate up until p99 passes the bound (or messages are lost or refused).
    Ramp {
        #[command(flatten)]
        c: ChatArgs,
        #[arg(long, value_parser = above_zero, default_value_t = 1000.0)]
        start_rate: f64,
        /// Each step multiplies the rate by this.
        #[arg(long, value_parser = above_one, default_value_t = 1.25)]
        factor: f64,
        #[arg(long, value_parser = above_zero, default_value_t = 5.0)]
        step_secs: f64,
        #[arg(long, value_parser = above_zero, default_value_t = 50.0)]
        p99_bound_ms: f64,
        #[arg(long, value_parser = above_zero, default_value_t = 200000.0)]
        max_rate: f64,
        #[arg(long, default_value_t = 30)]
        max_steps: usize,
    },
    /// Drop N visitors at once; they reconnect (to the next node) and resume from their last sequence.
    Storm {
        #[command(flatten)]
        c: ChatArgs,
        /// Visitors to drop (at most the chats started).
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Total message rate kept up before, during and after the storm.
        #[arg(long, value_parser = at_least_zero, default_value_t = 1000.0)]
        rate: f64,
        #[arg(long, value_parser = at_least_zero, default_value_t = 3.0)]
        warmup: f64,
        #[arg(long, value_parser = at_least_zero, default_value_t = 3.0)]
        after: f64,
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
    /// Open N chats, exchange a few messages, end all at once (agents decide `create`); measure
    /// how fast the transcripts land in the nodes' PostgreSQL store.
    Flush {
        #[command(flatten)]
        c: ChatArgs,
        /// Messages per chat before the end (both sides together).
        #[arg(long, default_value_t = 10)]
        messages: u64,
        /// Total message rate while exchanging them.
        #[arg(long, value_parser = above_zero, default_value_t = 5000.0)]
        rate: f64,
        /// The nodes' store (postgres://, loopback only): polled for the final check.
        #[arg(long)]
        store_url: String,
        /// Longest wait from ending all chats until all are written.
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
        /// Interval of polling the nodes' /metrics flush counters.
        #[arg(long, default_value_t = 20)]
        poll_ms: u64,
    },
    /// A website's load: visitors spread over the targets each reporting a page view every
    /// --page-every seconds, agents on the agent targets watching the site-visitors list, and
    /// a few chats at a low rate. Browsers speak JSON: pass `--encoding json` for their bytes.
    Site {
        #[arg(long, default_value_t = 1000)]
        visitors: usize,
        /// Seconds between two page views of a visitor.
        #[arg(long, value_parser = above_zero, default_value_t = 30.0)]
        page_every: f64,
        /// Agents watching the site-visitors list.
        #[arg(long, default_value_t = 20)]
        watchers: usize,
        /// What the watchers' rows carry: `in_view` (compact rows, whole records for a view
        /// of --view rows each, as the console watches) or `full` (every record).
        #[arg(long, default_value = "in_view", value_parser = ["in_view", "full"])]
        rows: String,
        /// Rows in each watcher's view (`--rows in_view`).
        #[arg(long, default_value_t = 40)]
        view: usize,
        /// Visitors that start browsing per second (0: as fast as they connect). Every arrival
        /// reaches every watcher (compact with `in_view`): faster than its byte budget allows,
        /// and the watchers are told `visitors_stale` and read the list again.
        #[arg(long, value_parser = at_least_zero, default_value_t = 0.0)]
        arrivals_per_s: f64,
        /// Index of the first watching agent (`lt-agent-N`); chat agents start at 0.
        #[arg(long, default_value_t = 100)]
        watcher_offset: usize,
        /// Chats running meanwhile (0: none).
        #[arg(long, default_value_t = 0)]
        chats: usize,
        #[arg(long, default_value_t = 50)]
        chat_agents: usize,
        /// Total message rate of those chats.
        #[arg(long, value_parser = at_least_zero, default_value_t = 100.0)]
        chat_rate: f64,
        /// Seconds after every visitor connected before measuring (default: one page period).
        #[arg(long, value_parser = at_least_zero)]
        warmup: Option<f64>,
        #[arg(long, value_parser = above_zero, default_value_t = 60.0)]
        duration: f64,
        #[arg(long, default_value_t = 64)]
        connect_parallel: usize,
        #[arg(long, default_value = "lt-agent-")]
        agent_prefix: String,
        #[arg(long, default_value = "load-test-password")]
        agent_password: String,
        #[arg(long, default_value_t = 300)]
        setup_timeout_secs: u64,
    },
    /// The machine's own floor: round trips between two threads over loopback TCP at a fixed
    /// rate (no server involved; --targets is not used), and how late a sleeping thread wakes.
    Floor {
        /// Round trips per second.
        #[arg(long, value_parser = above_zero, default_value_t = 1000.0)]
        rate: f64,
        #[arg(long, value_parser = above_zero, default_value_t = 10.0)]
        duration: f64,
        /// Bytes each way.
        #[arg(long, default_value_t = 250)]
        bytes: usize,
    },
}

#[derive(Args, Clone)]
pub(crate) struct ChatArgs {
    #[arg(long, default_value_t = 100)]
    pub(crate) agents: usize,
    #[arg(long, default_value_t = 200)]
    pub(crate) visitors: usize,
    #[arg(long, default_value = "lt-agent-")]
    pub(crate) agent_prefix: String,
    #[arg(long, default_value = "load-test-password")]
    pub(crate) agent_password: String,
    /// Length of each message text (counter + timestamp + padding).
    #[arg(long, default_value_t = 250)]
    pub(crate) text_bytes: usize,
    #[arg(long, default_value_t = 120)]
    pub(crate) setup_timeout_secs: u64,
    /// Agent logins at once (each is an argon2 verification on the node).
    #[arg(long, default_value_t = 4)]
    pub(crate) login_parallel: usize,
    /// Visitor connections being set up at once.
    #[arg(long, default_value_t = 64)]
    pub(crate) connect_parallel: usize,
    /// Visitors arriving per second (each connects, then requests its chat); 0: all at once,
    /// as fast as --connect-parallel lets them.
    #[arg(long, value_parser = at_least_zero, default_value_t = 0.0)]
    pub(crate) request_rate: f64,
    /// Put visitors and agents on the same targets (default: visitors on the first half, agents on the second).
    #[arg(long)]
    pub(crate) mixed: bool,
}

impl ChatArgs {
    pub(crate) fn opts(&self) -> chat::ChatOpts {
        chat::ChatOpts {
            agents: self.agents,
            visitors: self.visitors,
            agent_prefix: self.agent_prefix.clone(),
            agent_password: self.agent_password.clone(),
            text_bytes: self.text_bytes,
            setup_timeout: Duration::from_secs(self.setup_timeout_secs),
            login_parallel: self.login_parallel,
            connect_parallel: self.connect_parallel,
            request_rate: self.request_rate,
            placement_split: !self.mixed,
        }
    }
}

/// Rates, durations and bounds are checked as they are parsed: a negative, infinite or NaN
/// value would otherwise panic deep in a timer, or run without end. Up to a year: far past
/// any run's --max-seconds, and still a valid `Duration`.
fn number_in(s: &str, min: f64, min_allowed: bool) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && v <= 3.2e7 && (v > min || min_allowed && v == min) {
        return Ok(v);
    }
    let bound = if min_allowed { "at least" } else { "more than" };
    Err(format!("must be a number {bound} {min}"))
}

pub(crate) fn at_least_zero(s: &str) -> Result<f64, String> {
    number_in(s, 0.0, true)
}

fn above_zero(s: &str) -> Result<f64, String> {
    number_in(s, 0.0, false)
}

fn above_one(s: &str) -> Result<f64, String> {
    number_in(s, 1.0, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &str) -> Result<(), String> {
        let argv = std::iter::once("switchboard-loadtest").chain(args.split_whitespace());
        Cli::try_parse_from(argv)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_pass_and_numbers_out_of_range_are_refused_with_the_flag_named() {
        for ok in [
            "chat",
            "ramp",
            "storm",
            "floor",
            "chat --rate 0 --warmup 0",
            "flush --store-url x",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for (bad, flag) in [
            ("chat --duration inf", "--duration"),
            ("chat --duration=-1", "--duration"),
            ("chat --rate NaN", "--rate"),
            ("chat --request-rate=-2", "--request-rate"),
            ("ramp --factor 1", "--factor"),
            ("ramp --step-secs 0", "--step-secs"),
            ("storm --after 1e300", "--after"),
            ("floor --rate 0", "--rate"),
        ] {
            let e = check(bad).expect_err(bad);
            assert!(e.contains(&format!("for '{flag} <")), "{bad}: {e}");
        }
    }
}
