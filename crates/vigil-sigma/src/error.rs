//! Errors reported for rules that cannot be loaded.

/// A rule (or rule file) that was refused, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct RuleError {
    /// The file the rule was read from (as given to the parser).
    pub file: String,
    /// 1-based line of the offending key in the file (1 when unknown).
    pub line: usize,
    /// Why the rule was refused.
    pub reason: String,
}

impl RuleError {
    /// Builds an error.
    pub fn new(file: impl Into<String>, line: usize, reason: impl Into<String>) -> Self {
        RuleError {
            file: file.into(),
            line: line.max(1),
            reason: reason.into(),
        }
    }
}

/// Finds the 1-based line of a nested YAML key in `source`.
///
/// `path` lists the keys from the document root, e.g. `["detection",
/// "selection"]`; each key is searched for (as `key:`, `'key':` or
/// `"key":` at the start of a line, after indentation or a `- `) at or after
/// the line where its parent was found. The search starts at the 1-based
/// `start_line` (the first line of the YAML document). When a key is not
/// found the line of the deepest key found is returned, or `start_line`.
pub fn find_key_line(source: &str, start_line: usize, path: &[&str]) -> usize {
    let lines: Vec<&str> = source.lines().collect();
    let mut found = start_line.max(1);
    let mut from = found - 1;
    for key in path {
        let hit = (from..lines.len()).find(|&i| line_has_key(lines[i], key));
        match hit {
            Some(i) => {
                found = i + 1;
                from = i + 1;
            }
            None => break,
        }
    }
    found
}

fn line_has_key(line: &str, key: &str) -> bool {
    let mut t = line.trim_start();
    if let Some(rest) = t.strip_prefix("- ") {
        t = rest.trim_start();
    }
    for (open, close) in [("", ""), ("'", "'"), ("\"", "\"")] {
        if let Some(rest) = t.strip_prefix(open) {
            if let Some(rest) = rest.strip_prefix(key) {
                if let Some(rest) = rest.strip_prefix(close) {
                    if rest.trim_start().starts_with(':') {
                        return true;
                    }
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys() {
        let src = "title: t\nlogsource:\n    product: x\ndetection:\n    selection:\n        A: 1\n    condition: selection\n";
        assert_eq!(find_key_line(src, 1, &["title"]), 1);
        assert_eq!(find_key_line(src, 1, &["detection", "condition"]), 7);
        assert_eq!(find_key_line(src, 1, &["detection", "selection", "A"]), 6);
        assert_eq!(find_key_line(src, 1, &["detection", "missing"]), 4);
        assert_eq!(find_key_line(src, 1, &["nope"]), 1);
    }
}
