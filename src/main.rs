//! `vigil`: the command-line interface of the Vigil SIEM.
//!
//! A thin layer over the library crates: each subcommand parses its flags
//! and calls into `vigil-server`, `vigil-query`, `vigil-ledger` and
//! `vigil-parse`. See `vigil --help`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

// Events are built on decoder threads and freed on the writer thread; glibc's
// allocator handles that cross-thread pattern poorly (measured in PERFORMANCE.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
