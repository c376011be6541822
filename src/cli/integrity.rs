//! `vigil verify`, `vigil prove`, `vigil verify-proof`, `vigil key`.

use std::process::ExitCode;

use clap::Args;

use super::DataArgs;

/// Flags of `vigil verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    data: DataArgs,
}

/// Flags of `vigil key`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(flatten)]
    data: DataArgs,
}

pub fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let _ = a;
    anyhow::bail!("not implemented yet")
}

pub fn key(a: KeyArgs) -> anyhow::Result<ExitCode> {
    let config = a.data.load()?;
    let v = vigil_ledger::integrity::load_verifier(&config.data_dir.join("keys"))?;
    println!("{v}");
    Ok(ExitCode::SUCCESS)
}
