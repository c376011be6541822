//! Loading every rule of a directory tree.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml::Value;

use crate::compile::CompiledRule;
use crate::correlation::{CorrelationDoc, CorrelationSet};
use crate::error::RuleError;
use crate::filter::FilterDoc;
use crate::rule::{parse_document, Document};
use crate::value::Placeholders;

/// The outcome of loading a directory: the rules that compiled, and why the
/// others were refused. One bad rule never stops the others.
///
/// Correlation and filter documents refer to rules of any file, so they are
/// kept in `pending_*` by [`load_source`] and resolved by
/// [`LoadReport::finish`] (which [`load_paths`], [`load_dir`] and
/// [`load_file`] call).
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Compiled rules, in path order (filters applied after `finish`).
    pub rules: Vec<CompiledRule>,
    /// Refused rules (or files), with file, line and reason.
    pub refused: Vec<RuleError>,
    /// Whether a path, directory or file could not be read at all (its
    /// rules are missing, not refused for what they say).
    pub io_error: bool,
    /// Resolved correlation rules (after `finish`); their base references
    /// are positions in `rules`.
    pub correlations: CorrelationSet,
    /// Problems that refuse nothing, e.g. a filter naming a rule that is
    /// not loaded.
    pub warnings: Vec<RuleError>,
    /// Filters applied, as (filter, rule) pairs (after `finish`).
    pub filters_applied: usize,
    /// Correlation documents read and not yet resolved.
    pub pending_correlations: Vec<CorrelationDoc>,
    /// Filter documents read and not yet applied.
    pub pending_filters: Vec<FilterDoc>,
}

impl LoadReport {
    /// Applies the pending filters to the rules they name, then resolves
    /// the pending correlations against the rules (and each other). Call
    /// once every file is loaded; calling again handles only documents
    /// added since, and resolves them against the rules alone (so a load
    /// is best finished once).
    pub fn finish(&mut self, placeholders: &Placeholders) {
        let filters = std::mem::take(&mut self.pending_filters);
        let outcome = crate::filter::apply_filters(&mut self.rules, &filters, placeholders);
        self.refused.extend(outcome.refused);
        self.warnings.extend(outcome.warnings);
        self.filters_applied += outcome.applied;
        let docs = std::mem::take(&mut self.pending_correlations);
        if docs.is_empty() {
            return;
        }
        let metas: Vec<_> = self.rules.iter().map(|r| r.meta.clone()).collect();
        let (set, refused) = crate::correlation::resolve(&metas, docs);
        self.refused.extend(refused);
        self.correlations = set;
    }
}

/// Loads the rules of every path (a rule file, or a directory searched
/// recursively as by [`load_dir`]), in the order given. A path that does
/// not exist is refused (and sets [`LoadReport::io_error`]).
pub fn load_paths(paths: &[PathBuf], placeholders: &Placeholders) -> LoadReport {
    let mut report = LoadReport::default();
    for path in paths {
        if path.is_dir() {
            load_dir_into(path, placeholders, &mut report);
        } else if path.exists() {
            load_file_into(path, placeholders, &mut report);
        } else {
            report.io_error = true;
            report.refused.push(RuleError::new(
                path.display().to_string(),
                1,
                "rules path does not exist",
            ));
        }
    }
    report.finish(placeholders);
    report
}

/// Every rule file (`.yml`/`.yaml`, `X.tests.yml` sidecars excluded) under
/// `path`, which may be a file or a directory (searched recursively), in
/// path order.
pub fn rule_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if path.is_dir() {
        collect(path, &mut out)?;
    } else {
        std::fs::metadata(path)?;
        out.push(path.to_path_buf());
    }
    out.sort();
    Ok(out)
}

/// Loads every `.yml`/`.yaml` file under `path` (recursively, in path
/// order). A file may hold several YAML documents: detection rules,
/// correlations and filters (resolved across files); legacy `action:
/// global` collections are refused with a reason.
pub fn load_dir(path: &Path, placeholders: &Placeholders) -> LoadReport {
    let mut report = LoadReport::default();
    load_dir_into(path, placeholders, &mut report);
    report.finish(placeholders);
    report
}

fn load_dir_into(path: &Path, placeholders: &Placeholders, report: &mut LoadReport) {
    let mut files = Vec::new();
    if let Err(e) = collect(path, &mut files) {
        report.io_error = true;
        report.refused.push(RuleError::new(
            path.display().to_string(),
            1,
            format!("cannot read directory: {e}"),
        ));
    }
    files.sort();
    for f in files {
        load_file_into(&f, placeholders, report);
    }
}

/// Loads the rules of one file.
pub fn load_file(path: &Path, placeholders: &Placeholders) -> LoadReport {
    let mut report = LoadReport::default();
    load_file_into(path, placeholders, &mut report);
    report.finish(placeholders);
    report
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let p = entry.path();
        let ft = entry.file_type()?;
        if ft.is_dir() {
            collect(&p, out)?;
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yml") | Some("yaml")
        ) && !crate::testcases::is_sidecar(&p)
        {
            // `X.tests.yml` sidecars hold test cases for `vigil rules test`, not rules.
            out.push(p);
        }
    }
    Ok(())
}

/// 1-based start lines of the YAML documents of `source`.
fn document_starts(source: &str) -> Vec<usize> {
    let mut starts = vec![1];
    let mut seen_content = false;
    for (i, line) in source.lines().enumerate() {
        let is_sep = line == "---" || line.starts_with("--- ");
        if is_sep {
            if seen_content {
                starts.push(i + 2);
            } else {
                starts[0] = i + 2;
            }
            seen_content = false;
        } else if !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            seen_content = true;
        }
    }
    starts
}

/// Parses the YAML documents of a rule file: detection rules are compiled
/// into `report.rules`; correlations and filters are validated on their own
/// and kept pending until [`LoadReport::finish`].
pub fn load_source(source: &str, file: &str, placeholders: &Placeholders, report: &mut LoadReport) {
    let mut docs = Vec::new();
    for de in serde_yaml::Deserializer::from_str(source) {
        match Value::deserialize(de) {
            Ok(v) => docs.push(v),
            Err(e) => {
                let line = e.location().map_or(1, |l| l.line());
                report
                    .refused
                    .push(RuleError::new(file, line, format!("invalid YAML: {e}")));
                return;
            }
        }
    }
    let starts = document_starts(source);
    let docs: Vec<(usize, Value)> = docs
        .into_iter()
        .enumerate()
        .map(|(i, v)| (starts.get(i).copied().unwrap_or(1), v))
        .filter(|(_, v)| !v.is_null())
        .collect();
    if docs.is_empty() {
        report
            .refused
            .push(RuleError::new(file, 1, "no YAML document in file"));
        return;
    }
    if docs.len() > 1 {
        if let Some((line, _)) = docs
            .iter()
            .find(|(_, v)| v.get("action").and_then(Value::as_str).is_some())
        {
            report.refused.push(RuleError::new(
                file,
                *line,
                "legacy multi-document rule collection ('action: global') is not supported",
            ));
            return;
        }
    }
    for (start, v) in docs {
        match parse_document(&v, file, source, start) {
            Ok(Document::Rule(rule)) => match CompiledRule::compile(&rule, placeholders) {
                Ok(c) => report.rules.push(c),
                Err(e) => report.refused.push(e),
            },
            Ok(Document::Correlation(c)) => report.pending_correlations.push(*c),
            Ok(Document::Filter(f)) => report.pending_filters.push(*f),
            Err(e) => report.refused.push(e),
        }
    }
}

/// Largest rule, sidecar or mapping file read (SigmaHQ's largest rule is
/// under 100 KiB); a larger one is refused instead of read whole.
pub const MAX_RULE_FILE_BYTES: u64 = 4 << 20;

/// Reads a rule, sidecar or mapping file as UTF-8, refusing one larger
/// than [`MAX_RULE_FILE_BYTES`].
pub fn read_rule_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_RULE_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_RULE_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} MiB", MAX_RULE_FILE_BYTES >> 20),
        ));
    }
    Ok(text)
}

fn load_file_into(path: &Path, placeholders: &Placeholders, report: &mut LoadReport) {
    let file = path.display().to_string();
    match read_rule_file(path) {
        Ok(src) => load_source(&src, &file, placeholders, report),
        Err(e) => {
            report.io_error = true;
            report
                .refused
                .push(RuleError::new(file, 1, format!("cannot read file: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn oversized_rule_file_is_refused_with_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yml");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(super::MAX_RULE_FILE_BYTES + 1).unwrap();
        let r = super::load_file(&big, &super::Placeholders::default());
        assert!(r.rules.is_empty());
        assert!(
            r.refused[0].reason.contains("larger than 4 MiB"),
            "{}",
            r.refused[0].reason
        );
    }

    use super::*;

    #[test]
    fn document_start_lines() {
        assert_eq!(document_starts("a: 1\n---\nb: 2\n"), vec![1, 3]);
        assert_eq!(document_starts("---\na: 1\n---\nb: 2\n"), vec![2, 4]);
    }

    fn load(src: &str) -> LoadReport {
        let mut r = LoadReport::default();
        let ph = Placeholders::default();
        load_source(src, "c.yml", &ph, &mut r);
        r.finish(&ph);
        r
    }

    const BASE: &str = "title: Failed login\nid: 53ba33fd-3a50-4468-a5ef-c583635cfa92\nname: failed_login\nlogsource:\n    product: linux\ndetection:\n    sel:\n        event.outcome: failure\n    condition: sel\n";

    #[test]
    fn correlation_with_unknown_reference_is_refused_with_its_line() {
        let src = "title: c\ncorrelation:\n    type: event_count\n    rules: [nope]\n    timespan: 1m\n    condition:\n        gte: 2\n";
        let r = load(src);
        assert!(r.rules.is_empty());
        assert!(r.correlations.is_empty());
        assert_eq!(r.refused.len(), 1);
        assert_eq!(r.refused[0].line, 4);
        assert!(
            r.refused[0].reason.contains("\"nope\""),
            "{}",
            r.refused[0].reason
        );
    }

    #[test]
    fn multi_document_file_with_chain_and_bad_documents() {
        // The spec's example: a temporal_ordered correlation over an
        // event_count correlation and a rule, with the rules after it; plus a
        // bad correlation and a cycle, which must not stop the others.
        let src = format!(
            "title: Brute force then success\ncorrelation:\n    type: temporal_ordered\n    rules:\n        - many_failed\n        - success\n    group-by: [user.name]\n    timespan: 10m\nlevel: high\n---\ntitle: Many failed\nname: many_failed\ncorrelation:\n    type: event_count\n    rules: [failed_login]\n    group-by: [user.name]\n    timespan: 10m\n    condition:\n        gte: 3\n---\n{BASE}---\ntitle: Success\nname: success\nlogsource:\n    product: linux\ndetection:\n    sel:\n        event.outcome: success\n    condition: sel\n---\ntitle: Bad type\ncorrelation:\n    type: nonsense\n    rules: [success]\n    timespan: 1m\n---\ntitle: Loop a\nname: loop_a\ncorrelation:\n    type: temporal\n    rules: [loop_b]\n    timespan: 1m\n---\ntitle: Loop b\nname: loop_b\ncorrelation:\n    type: temporal\n    rules: [loop_a]\n    timespan: 1m\n"
        );
        let r = load(&src);
        assert_eq!(r.rules.len(), 2);
        assert_eq!(r.correlations.rules.len(), 2, "{:?}", r.refused);
        let reasons: Vec<&str> = r.refused.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(r.refused.len(), 3, "{reasons:?}");
        assert!(reasons[0].contains("unknown correlation type"));
        assert!(reasons.iter().filter(|r| r.contains("refers back")).count() == 2);
        // The referenced rules are silent (generate defaults to false), and
        // so is the inner correlation.
        assert!(!r.correlations.base_reports(0));
        assert!(!r.correlations.base_reports(1));
        assert!(!r.correlations.correlation_reports(0));
        assert!(r.correlations.correlation_reports(1));
    }

    #[test]
    fn filters_apply_and_warn_on_unknown_rules() {
        let src = format!(
            "{BASE}---\ntitle: Not root\nlogsource:\n    product: linux\nfilter:\n    rules:\n        - failed_login\n        - missing_rule\n    selection:\n        user.name: root\n    condition: selection\n---\ntitle: Wrong logsource\nlogsource:\n    product: windows\nfilter:\n    rules: [failed_login]\n    selection:\n        user.name: alice\n    condition: selection\n"
        );
        let r = load(&src);
        assert!(r.refused.is_empty(), "{:?}", r.refused);
        assert_eq!(r.filters_applied, 1);
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
        assert!(r.warnings[0].reason.contains("missing_rule"));
        assert_eq!(r.warnings[0].line, 15);
        assert!(r.warnings[1]
            .reason
            .contains("outside the filter's logsource"));
        let rule = &r.rules[0];
        let m = |v: serde_json::Value| rule.matches(&crate::views::JsonView(&v));
        assert!(m(
            serde_json::json!({"event": {"outcome": "failure"}, "user": {"name": "bob"}})
        ));
        assert!(!m(
            serde_json::json!({"event": {"outcome": "failure"}, "user": {"name": "root"}})
        ));
        // The non-applied filter (other logsource) does not suppress alice.
        assert!(m(
            serde_json::json!({"event": {"outcome": "failure"}, "user": {"name": "alice"}})
        ));
    }

    #[test]
    fn action_global_is_refused() {
        let src = "action: global\ntitle: x\n---\nlogsource:\n    product: windows\n";
        let mut r = LoadReport::default();
        load_source(src, "g.yml", &Placeholders::default(), &mut r);
        assert_eq!(r.refused.len(), 1);
        assert!(r.refused[0].reason.contains("action: global"));
    }

    #[test]
    fn invalid_yaml_is_refused_not_fatal() {
        let mut r = LoadReport::default();
        load_source("title: [\n", "bad.yml", &Placeholders::default(), &mut r);
        assert_eq!(r.refused.len(), 1);
        assert!(r.refused[0].reason.starts_with("invalid YAML"));
        assert!(!r.io_error);
    }

    #[test]
    fn load_paths_reads_files_and_dirs_and_flags_missing_paths() {
        // No tempfile dev-dependency here: a unique directory under the temp dir.
        let root =
            std::env::temp_dir().join(format!("vigil-sigma-load-paths-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let rule = "title: t\nlogsource:\n    product: linux\ndetection:\n    sel:\n        a: 1\n    condition: sel\n";
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("d/a.yml"), rule).unwrap();
        std::fs::write(root.join("d/a.tests.yml"), "match: []\n").unwrap();
        std::fs::write(root.join("b.yaml"), rule).unwrap();
        let ph = Placeholders::default();
        let r = load_paths(&[root.join("d"), root.join("b.yaml")], &ph);
        assert_eq!((r.rules.len(), r.refused.len(), r.io_error), (2, 0, false));
        let r = load_paths(&[root.join("d"), root.join("gone")], &ph);
        assert_eq!((r.rules.len(), r.refused.len(), r.io_error), (1, 1, true));
        assert_eq!(r.refused[0].reason, "rules path does not exist");
        assert_eq!(rule_files(&root).unwrap().len(), 2);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
