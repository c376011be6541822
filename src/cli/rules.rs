//! `vigil rules lint` and `vigil rules test`: detection as code.
//!
//! The checks and the test-case logic live in `vigil_sigma::testcases`;
//! this module only walks the paths and prints.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use vigil_event::sanitize::display;
use vigil_sigma::error::RuleError;
use vigil_sigma::loader::{load_file, load_source, rule_files, LoadReport};
use vigil_sigma::ruleset::RuleSet;
use vigil_sigma::testcases::{self, Severity};
use vigil_sigma::value::Placeholders;

/// `vigil rules …`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    command: RulesCommand,
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Load every rule and check SigmaHQ conventions; exit 1 on errors.
    Lint(LintArgs),
    /// Run each rule's `X.tests.yml` sidecar; exit 1 on any failure.
    Test(TestArgs),
}

/// Flags of `vigil rules lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Treat warnings as errors.
    #[arg(long)]
    strict: bool,
    /// Rule files or directories (recursive; `*.tests.yml` are skipped).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

/// Flags of `vigil rules test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Rule files or directories (recursive).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

pub fn run(a: RulesArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        RulesCommand::Lint(a) => lint(a),
        RulesCommand::Test(a) => test(a),
    }
}

/// The rule files of every path; unreadable paths become errors.
fn files(paths: &[PathBuf], errors: &mut Vec<RuleError>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        match rule_files(p) {
            Ok(f) => out.extend(f),
            Err(e) => errors.push(RuleError::new(
                p.display().to_string(),
                1,
                format!("cannot read: {e}"),
            )),
        }
    }
    out
}

fn lint(a: LintArgs) -> anyhow::Result<ExitCode> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let files = files(&a.paths, &mut errors);
    let ph = Placeholders::default();
    // One report for all files: correlations and filters may name rules
    // of other files.
    let mut report = LoadReport::default();
    let mut seen: HashMap<String, (String, usize)> = HashMap::new();
    for f in &files {
        let name = f.display().to_string();
        // Read once: the loader and the style checks see the same text.
        let src = match vigil_sigma::loader::read_rule_file(f) {
            Ok(src) => src,
            Err(e) => {
                errors.push(RuleError::new(&name, 1, format!("cannot read file: {e}")));
                continue;
            }
        };
        load_source(&src, &name, &ph, &mut report);
        let (findings, ids) = testcases::lint_source(&src, &name);
        for x in findings {
            match x.severity {
                Severity::Warning => warnings.push(x.error),
                Severity::Error => errors.push(x.error),
            }
        }
        for (id, line) in ids {
            if let Some((pf, pl)) = seen.get(&id) {
                errors.push(RuleError::new(
                    &name,
                    line,
                    format!("duplicate id {id} (also in {pf}:{pl})"),
                ));
            } else {
                seen.insert(id, (name.clone(), line));
            }
        }
    }
    report.finish(&ph);
    let loaded = report.rules.len();
    errors.extend(report.refused);
    warnings.extend(report.warnings);
    errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    warnings.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    let mut out = std::io::stdout().lock();
    for e in &errors {
        writeln!(out, "{}", display(&e.to_string()))?;
    }
    for w in &warnings {
        writeln!(
            out,
            "{}",
            display(&format!("{}:{}: warning: {}", w.file, w.line, w.reason))
        )?;
    }
    writeln!(
        std::io::stderr(),
        "lint: {} files, {loaded} rules loaded, {} errors, {} warnings",
        files.len(),
        errors.len(),
        warnings.len()
    )?;
    let fail = !errors.is_empty() || (a.strict && !warnings.is_empty());
    Ok(if fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn test(a: TestArgs) -> anyhow::Result<ExitCode> {
    let mut errors = Vec::new();
    let files = files(&a.paths, &mut errors);
    let ph = Placeholders::default();
    let opts = vigil_parse::ParseOptions::default();
    let mut out = std::io::stdout().lock();
    let (mut passed, mut failed, mut untested) = (0usize, 0usize, 0usize);
    for e in &errors {
        writeln!(out, "FAIL {}", display(&e.to_string()))?;
        failed += 1;
    }
    for f in &files {
        let side = testcases::sidecar_path(f);
        if !side.is_file() {
            untested += 1;
            continue;
        }
        let side_name = side.display().to_string();
        let report = load_file(f, &ph);
        if !report.refused.is_empty() {
            for e in &report.refused {
                writeln!(out, "FAIL {}", display(&e.to_string()))?;
            }
            failed += 1;
            continue;
        }
        let rules = RuleSet::new(report.rules);
        let cases = match read_sidecar(&side, &side_name) {
            Ok(c) => c,
            Err(e) => {
                writeln!(out, "FAIL {}", display(&e.to_string()))?;
                failed += 1;
                continue;
            }
        };
        for r in testcases::run_cases(&rules, &cases, &opts) {
            match r.failure() {
                None => {
                    passed += 1;
                    writeln!(out, "PASS {}: case {}", display(&side_name), r.case.number)?;
                }
                Some(why) => {
                    failed += 1;
                    writeln!(
                        out,
                        "FAIL {}: case {}: {} (line {})",
                        display(&side_name),
                        r.case.number,
                        display(&why),
                        r.case.line
                    )?;
                }
            }
        }
    }
    writeln!(
        out,
        "{passed} passed, {failed} failed; {} rule files, {untested} without tests",
        files.len()
    )?;
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn read_sidecar(path: &Path, name: &str) -> Result<Vec<testcases::TestCase>, RuleError> {
    let src = vigil_sigma::loader::read_rule_file(path)
        .map_err(|e| RuleError::new(name, 1, format!("cannot read file: {e}")))?;
    testcases::parse_sidecar(&src, name)
}
