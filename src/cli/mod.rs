//! Subcommands and their shared options.

mod alerts;
mod bench;
mod bench_detect;
mod bench_flood;
mod bench_search;
mod bench_sigma;
mod blocklist;
mod client;
mod export;
mod hunt;
mod hunt_input;
mod incident;
mod ingest;
mod integrity;
mod lines;
mod output;
mod playbook;
mod reindex;
mod retain;
mod rules;
mod search;
mod serve;
mod simulate;
mod token;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Vigil: receive, normalize, store tamper-evidently and search security logs.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: syslog and HTTP inputs, ledger, search API.
    Serve(serve::ServeArgs),
    /// Create a data dir's keys and admin token, printing the secrets once.
    Init(serve::InitArgs),
    /// Append a log file (or stdin) to a data dir while no server runs.
    Ingest(ingest::IngestArgs),
    /// Search stored events (offline on a data dir, or on a server).
    Search(search::SearchArgs),
    /// Export every event a filter matches as NDJSON or CSV, streamed to a file.
    Export(export::ExportArgs),
    /// Follow newly stored events that match a query (needs a server).
    Tail(search::TailArgs),
    /// Run Sigma rules over EVTX, JSON or log files, offline.
    Hunt(hunt::HuntArgs),
    /// Measure performance.
    Bench(bench::BenchArgs),
    /// Prove that nothing stored was changed, dropped or reordered.
    Verify(integrity::VerifyArgs),
    /// Show the ledger's checkpoint verifier key.
    Key(integrity::KeyArgs),
    /// Print an inclusion or consistency proof against a signed checkpoint.
    Prove(integrity::ProveArgs),
    /// Check a proof from `vigil prove` with the verifier key (no data dir).
    VerifyProof(integrity::VerifyProofArgs),
    /// Delete old ledger segments by age or size, keeping proofs working.
    Retain(retain::RetainArgs),
    /// Rebuild the search index of a data dir from its ledger.
    Reindex(reindex::ReindexArgs),
    /// Lint Sigma rules and run their test cases (detection as code).
    Rules(rules::RulesArgs),
    /// Generate realistic, labelled security telemetry (demos, benchmarks, tests).
    Simulate(simulate::SimulateArgs),
    /// List, acknowledge, close and suppress alerts (needs a server).
    Alerts(alerts::AlertsArgs),
    /// List, add and remove blocked addresses (needs a server).
    Blocklist(blocklist::BlocklistArgs),
    /// Check playbook files offline, or list playbooks.
    Playbook(playbook::PlaybookArgs),
    /// Work incidents: list, show, open, move, assign, note, pin, export (needs a server).
    Incident(incident::IncidentArgs),
    /// Manage user accounts (offline on the data dir).
    User(user::UserArgs),
    /// Create, list and revoke API tokens (offline on the data dir).
    Token(token::TokenArgs),
}

/// `--data-dir` and `--config` for commands that read or write stored data.
#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// Data directory.
    #[arg(long, env = "VIGIL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Config file (default: ./vigil.toml when present).
    #[arg(long, env = "VIGIL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl DataArgs {
    /// The effective configuration for offline commands.
    pub fn load(&self) -> anyhow::Result<vigil_server::config::Config> {
        let mut c = vigil_server::config::Config::load(self.config.as_deref())?;
        c.apply_overrides(&vigil_server::config::Overrides {
            data_dir: self.data_dir.clone(),
            ..Default::default()
        });
        c.validate()?;
        Ok(c)
    }
}

/// `--server` and `--token` for commands that talk to a running server.
#[derive(Debug, Args, Clone)]
pub struct ServerArgs {
    /// Server base URL, e.g. http://127.0.0.1:8514.
    #[arg(long, env = "VIGIL_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// API token.
    #[arg(
        long,
        env = "VIGIL_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if !matches!(cli.command, Command::Serve(_)) {
        // Printing commands end quietly when the reader goes away (`| head`),
        // as Unix tools do. The server keeps Rust's default of ignoring
        // SIGPIPE, so a client that disconnects mid-response cannot kill it.
        // SAFETY: called before any other thread exists; restores the default action.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Init(a) => serve::init(a),
        Command::Ingest(a) => ingest::run(a),
        Command::Search(a) => search::run(a),
        Command::Export(a) => export::run(a),
        Command::Tail(a) => search::tail(a),
        Command::Hunt(a) => hunt::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Verify(a) => integrity::verify(a),
        Command::Key(a) => integrity::key(a),
        Command::Prove(a) => integrity::prove(a),
        Command::VerifyProof(a) => integrity::verify_proof(a),
        Command::Retain(a) => retain::run(a),
        Command::Reindex(a) => reindex::run(a),
        Command::Rules(a) => rules::run(a),
        Command::Simulate(a) => simulate::run(a),
        Command::Alerts(a) => alerts::run(a),
        Command::Blocklist(a) => blocklist::run(a),
        Command::Playbook(a) => playbook::run(a),
        Command::Incident(a) => incident::run(a),
        Command::User(a) => user::run(a),
        Command::Token(a) => token::run(a),
    }
}
