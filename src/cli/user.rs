//! `vigil user`: manage user accounts in a data dir's `meta.db`.
//!
//! Works offline and next to a running server (SQLite in WAL mode): a
//! disable or password change ends that user's browser sessions on the next
//! request, because the server compares every session with the user row.

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use super::DataArgs;

/// `vigil user …`
#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user (prompts for the password unless --password-stdin).
    Add {
        /// Login name (a-z A-Z 0-9 . _ - @, at most 64).
        name: String,
        /// admin, analyst, viewer or ingest.
        #[arg(long)]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List users.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Set a user's password (ends their sessions).
    Passwd {
        /// Login name.
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Disable a user: no logins, sessions and the user's tokens stop working.
    Disable {
        /// Login name.
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Re-enable a disabled user.
    Enable {
        /// Login name.
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Change a user's role.
    Role {
        /// Login name.
        name: String,
        /// admin, analyst, viewer or ingest.
        role: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// The data dir's identity store (`meta.db`).
pub fn store(data: &DataArgs) -> anyhow::Result<vigil_server::auth::TokenStore> {
    let config = data.load()?;
    vigil_server::prepare_data_dir(&config)?;
    let conn = vigil_server::meta::open(&config.data_dir)
        .with_context(|| format!("opening {}", config.data_dir.join("meta.db").display()))?;
    Ok(vigil_server::auth::TokenStore::new(conn))
}

/// Reads a new password: the first line of stdin, or twice from the
/// terminal with echo off.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .take(4096)
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let pw = line.trim_end_matches(['\n', '\r']).to_owned();
        if pw.is_empty() {
            bail!("no password on standard input");
        }
        return Ok(pw);
    }
    let first = prompt_hidden("new password: ")?;
    let second = prompt_hidden("repeat password: ")?;
    if first != second {
        bail!("the passwords differ");
    }
    Ok(first)
}

/// Prompts on the controlling terminal without echoing what is typed.
fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    use std::os::fd::AsRawFd;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("no terminal to ask for the password on; use --password-stdin")?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for a valid fd.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
        bail!("cannot read terminal settings; use --password-stdin");
    }
    let saved = term;
    term.c_lflag &= !libc::ECHO;
    term.c_lflag |= libc::ECHONL;
    // SAFETY: fd is open and term came from tcgetattr.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) } != 0 {
        bail!("cannot turn off terminal echo; use --password-stdin");
    }
    let mut out = &tty;
    let result = out
        .write_all(prompt.as_bytes())
        .and_then(|()| out.flush())
        .and_then(|()| {
            let mut line = String::new();
            std::io::BufReader::new(&tty)
                .take(4096)
                .read_line(&mut line)
                .map(|_| line)
        });
    // SAFETY: restores the settings read above on the same fd.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    let line = result.context("reading the password from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

fn done<E: std::fmt::Display>(
    r: Result<Result<(), E>, vigil_server::auth::AuthError>,
) -> anyhow::Result<()> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => bail!("{e}"),
        Err(e) => bail!("{e}"),
    }
}

/// Runs `vigil user …`.
pub fn run(a: UserArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
            data,
        } => {
            let store = store(&data)?;
            // Check name and role before asking for a password.
            vigil_server::users::check_name(&name)?;
            vigil_server::authz::Role::parse(&role)?;
            let pw = read_password(password_stdin)?;
            done(store.with_conn(|c| vigil_server::users::create(c, &name, &role, &pw)))?;
            audit(
                &data,
                rec("user_created")
                    .target(name.clone())
                    .with("vigil.user.role", role.clone()),
            )?;
            println!("user {name} created with role {role}");
        }
        UserCommand::List { json, data } => {
            let store = store(&data)?;
            let users = store
                .with_conn(vigil_server::meta::list_users)?
                .context("listing users")?;
            if !json {
                println!(
                    "{:<24} {:<8} {:<9} {:<31} PASSWORD CHANGED",
                    "NAME", "ROLE", "STATE", "CREATED"
                );
            }
            for u in users {
                let info = vigil_server::meta::UserInfo::from(u);
                if json {
                    println!("{}", serde_json::to_string(&info)?);
                } else {
                    println!(
                        "{:<24} {:<8} {:<9} {:<31} {}",
                        info.name,
                        info.role,
                        if info.disabled { "disabled" } else { "enabled" },
                        info.created_at,
                        info.password_changed_at
                    );
                }
            }
        }
        UserCommand::Passwd {
            name,
            password_stdin,
            data,
        } => {
            let store = store(&data)?;
            if store
                .with_conn(|c| vigil_server::meta::get_user(c, &name))?
                .context("reading the user")?
                .is_none()
            {
                bail!("no user named {:?}", vigil_server_display(&name));
            }
            let pw = read_password(password_stdin)?;
            done(store.with_conn(|c| vigil_server::users::set_password(c, &name, &pw)))?;
            audit(&data, rec("authn_password_change").target(name.clone()))?;
            println!("password of {name} changed; their sessions have ended");
        }
        UserCommand::Disable { name, data } => {
            let store = store(&data)?;
            done(store.with_conn(|c| vigil_server::users::set_disabled(c, &name, true)))?;
            audit(&data, rec("user_disabled").target(name.clone()))?;
            println!("user {name} disabled");
        }
        UserCommand::Enable { name, data } => {
            let store = store(&data)?;
            done(store.with_conn(|c| vigil_server::users::set_disabled(c, &name, false)))?;
            audit(
                &data,
                rec("user_updated").target(name.clone()).reason("enabled"),
            )?;
            println!("user {name} enabled");
        }
        UserCommand::Role { name, role, data } => {
            let store = store(&data)?;
            let previous = store
                .with_conn(|c| vigil_server::meta::get_user(c, &name))?
                .context("reading the user")?
                .map(|u| u.role);
            let r = store.with_conn(|c| vigil_server::users::set_role(c, &name, &role))?;
            let r = r?;
            let mut record = rec("privilege_permissions_changed")
                .target(name.clone())
                .with("vigil.user.role", r.as_str());
            if let Some(p) = previous {
                record = record.with("vigil.user.previous_role", p);
            }
            audit(&data, record)?;
            println!("user {name} now has role {r}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A successful identity change, for the audit spool.
pub(crate) fn rec(action: &'static str) -> vigil_server::audit::Record {
    vigil_server::audit::Record::new(action, vigil_server::audit::Category::Iam, true)
}

/// Spools an audit record for the server to store in the ledger (at once
/// when it runs, else at its next start).
pub(crate) fn audit(data: &DataArgs, record: vigil_server::audit::Record) -> anyhow::Result<()> {
    let config = data.load()?;
    vigil_server::audit_spool::write(&config.data_dir, record).with_context(|| {
        format!(
            "writing the audit record to {}",
            vigil_server::audit_spool::dir(&config.data_dir).display()
        )
    })?;
    Ok(())
}

fn vigil_server_display(s: &str) -> String {
    vigil_event::sanitize::display(s).into_owned()
}
