//! `vigil`: the command-line interface of the Vigil SIEM.
//!
//! A thin layer over the library crates: each subcommand parses its flags
//! and calls into `vigil-server`, `vigil-query`, `vigil-ledger` and
//! `vigil-parse`. See `vigil --help`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!("vigil: error: {}", vigil_event::sanitize::display(&msg));
            ExitCode::from(1)
        }
    }
}
