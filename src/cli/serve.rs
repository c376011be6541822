//! `vigil serve`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use vigil_server::config::{Config, Overrides};

/// Flags of `vigil serve`; each also reads a `VIGIL_*` variable.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (default: ./vigil.toml when present).
    #[arg(long, env = "VIGIL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory [default: ./vigil-data].
    #[arg(long, env = "VIGIL_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// HTTP API address [default: 127.0.0.1:8514].
    #[arg(long, env = "VIGIL_HTTP", value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Syslog UDP+TCP address [default: 127.0.0.1:5514].
    #[arg(long, env = "VIGIL_SYSLOG", value_name = "ADDR")]
    syslog: Option<SocketAddr>,
    /// Time zone for RFC 3164 timestamps without one [default: UTC].
    #[arg(long, env = "VIGIL_TIMEZONE", value_name = "TZ")]
    timezone: Option<String>,
    /// Log filter (tracing env-filter syntax).
    #[arg(long, env = "VIGIL_LOG", default_value = "info")]
    log: String,
}

pub fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&a.log).context("invalid --log filter")?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut config = Config::load(a.config.as_deref())?;
    config.apply_overrides(&Overrides {
        data_dir: a.data_dir,
        http: a.http,
        syslog: a.syslog,
        timezone: a.timezone,
    });
    let admin_token = std::env::var("VIGIL_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let data_dir = config.data_dir.clone();
        let server =
            vigil_server::start(config, vigil_server::StartOptions { admin_token }).await?;
        // The banner is informational: a closed stdout must not stop the server.
        macro_rules! println {
            ($($t:tt)*) => {{
                use std::io::Write;
                let _ = writeln!(std::io::stdout(), $($t)*);
            }};
        }
        println!("vigil {} serving", env!("CARGO_PKG_VERSION"));
        println!("  data dir      {}", data_dir.display());
        let scheme = if server.http_tls { "https" } else { "http" };
        println!("  HTTP API      {scheme}://{}", server.http_addr);
        if let Some(a) = server.syslog_udp_addr {
            println!("  syslog UDP    udp://{a}");
        }
        if let Some(a) = server.syslog_tcp_addr {
            println!("  syslog TCP    tcp://{a}");
        }
        if let Some(a) = server.syslog_tls_addr {
            println!("  syslog TLS    tls://{a}");
        }
        for (what, fp, generated) in &server.tls_fingerprints {
            let note = if *generated { " (self-signed, generated now)" } else { "" };
            println!("  TLS {what:<9} sha256 {fp}{note}");
        }
        println!("  ledger        {} events stored", server.recovered_seq);
        println!("  verifier key  {}", server.verifier_key);
        if server.recovered_truncated_bytes > 0 {
            println!(
                "  recovery      cut {} bytes of an unfinished write",
                server.recovered_truncated_bytes
            );
        }
        if let Some(secrets) = &server.new_integrity_secrets {
            if !secrets.initial_seal_key.is_empty() {
                println!("");
                println!("  initial sealing key (shown once, never stored; give it to your auditor");
                println!("  and keep it offline: it proves later that no past checkpoint was rewritten):");
                println!("    {}", secrets.initial_seal_key.as_str());
            }
        }
        if let Some(t) = &server.new_admin_token {
            println!("");
            println!("  admin token (shown once; only its hash is stored):");
            println!("    {t}");
            println!("");
        }
        println!("ready (Ctrl-C or SIGTERM stops the server cleanly)");
        std::io::Write::flush(&mut std::io::stdout()).ok();
        server.wait().await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Flags of `vigil init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    data: super::DataArgs,
    /// Also generate a self-signed TLS certificate and key (key mode 0600)
    /// at `[http] tls_cert`/`tls_key`, or DATA_DIR/tls/cert.pem and key.pem,
    /// and print its SHA-256 fingerprint.
    #[arg(long)]
    self_signed: bool,
}

/// Creates the data dir, the ledger keys and (unless one exists or
/// `VIGIL_ADMIN_TOKEN` is set) an admin token, and prints what must be kept.
pub fn init(a: InitArgs) -> anyhow::Result<ExitCode> {
    let config = a.data.load()?;
    vigil_server::prepare_data_dir(&config)?;
    let (notary, secrets) = vigil_server::open_notary(&config)?;
    let tokens = vigil_server::auth::TokenStore::new(
        vigil_server::meta::open(&config.data_dir).context("opening the metadata database")?,
    );
    println!("data dir      {}", config.data_dir.display());
    println!("verifier key  {}", notary.verifier());
    match &secrets {
        Some(s) if !s.initial_seal_key.is_empty() => {
            println!();
            println!("initial sealing key (shown once, never stored; give it to your auditor and keep it offline):");
            println!("  {}", s.initial_seal_key.as_str());
        }
        _ => println!(
            "keys already existed; the initial sealing key was shown when they were created"
        ),
    }
    if std::env::var("VIGIL_ADMIN_TOKEN").map_or(true, |t| t.is_empty()) && tokens.active()? == 0 {
        let t = vigil_server::auth::generate_token();
        tokens.add(&t, "admin", "admin")?;
        println!();
        println!("admin token (shown once; only its hash is stored):");
        println!("  {t}");
    }
    if a.self_signed {
        let files = config
            .http_tls()
            .unwrap_or_else(|| vigil_server::tls::TlsFiles {
                cert: config.data_dir.join("tls").join("cert.pem"),
                key: config.data_dir.join("tls").join("key.pem"),
                client_ca: None,
            });
        let generated = vigil_server::tls::ensure_certificate(&files)?;
        let fp = vigil_server::tls::file_fingerprint(&files.cert)?;
        println!();
        match generated {
            Some(_) => println!("TLS certificate (self-signed, generated now)"),
            None => println!("TLS certificate (already present, kept)"),
        }
        println!("  cert         {}", files.cert.display());
        println!("  key          {}", files.key.display());
        println!("  sha256       {fp}");
    }
    Ok(ExitCode::SUCCESS)
}
