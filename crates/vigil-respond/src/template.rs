//! `{{source.ip}}`-style placeholders in command arguments, webhook fields
//! and search queries.
//!
//! A template is checked when the playbook loads (known placeholder names,
//! no shell metacharacters in its literal text when it is a command
//! argument) and filled when an action runs. Every value is validated
//! before it is used: an IP must parse as an IP, a name must match a safe
//! pattern (letters, digits, `._@-`, not starting with `-`, so it can never
//! be read as an option). A filled template is one argv element, whatever
//! the value holds: no shell ever splits it.

use std::net::IpAddr;

use vigil_alert::model::Alert;

/// The placeholders a template may use, and how each value is checked.
pub const PLACEHOLDERS: &[&str] = &["source.ip", "user.name", "host.name", "rule.id", "alert.id"];

/// Characters a shell gives meaning to; refused in command programs and in
/// the literal text of arguments.
pub const SHELL_META: &[char] = &[
    ';', '&', '|', '$', '`', '<', '>', '(', ')', '{', '}', '[', ']', '*', '?', '!', '~', '#', '\'',
    '"', '\\',
];

/// Longest value a placeholder may be filled with.
pub const MAX_VALUE: usize = 253;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text kept as written.
    Lit(String),
    /// A placeholder, by field name.
    Var(&'static str),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`; unknown placeholders and unclosed braces are errors.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Lit(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("unclosed placeholder in {text:?}"))?;
            let name = after[..end].trim();
            let known = PLACEHOLDERS.iter().find(|p| **p == name).ok_or_else(|| {
                format!(
                    "unknown placeholder {{{{{name}}}}} (known: {})",
                    PLACEHOLDERS.join(", ")
                )
            })?;
            parts.push(Part::Var(known));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The literal text, placeholders left out.
    pub fn literal_text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Lit(s) => Some(s.as_str()),
                Part::Var(_) => None,
            })
            .collect()
    }

    /// Whether the template holds any placeholder.
    pub fn has_placeholders(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var(_)))
    }

    /// Fills the placeholders from `alert`, validating each value first.
    pub fn fill(&self, alert: &Alert) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var(name) => out.push_str(&value(alert, name)?),
            }
        }
        Ok(out)
    }
}

/// The value of placeholder `name` for `alert`, validated.
pub fn value(alert: &Alert, name: &str) -> Result<String, String> {
    let raw = match name {
        "rule.id" => Some(alert.rule_id.as_str()),
        "alert.id" => Some(alert.id.as_str()),
        f => alert.entity.get(f).map(String::as_str),
    };
    let raw = raw.ok_or_else(|| format!("the alert has no {name}"))?;
    validate(name, raw)
}

/// Checks `raw` as a value of placeholder `name`; returns the value to use.
pub fn validate(name: &str, raw: &str) -> Result<String, String> {
    let shown = vigil_event::sanitize::display(raw);
    if name.ends_with(".ip") {
        return raw
            .parse::<IpAddr>()
            .map(|ip| crate::guard::canonical_ip(ip).to_string())
            .map_err(|_| format!("{name} {shown:?} is not an IP address"));
    }
    let extra: &[char] = match name {
        "user.name" => &['.', '_', '@', '-'],
        "host.name" => &['.', '-', '_'],
        _ => &['.', '_', '-', ':'],
    };
    let safe = !raw.is_empty()
        && raw.len() <= MAX_VALUE
        && !raw.starts_with('-')
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c));
    if safe {
        Ok(raw.to_owned())
    } else {
        Err(format!(
            "{name} {shown:?} is not a safe value (letters, digits and {} only, at most {MAX_VALUE}, not starting with '-')",
            extra.iter().collect::<String>()
        ))
    }
}

/// The first shell metacharacter or control character in `s`, if any.
pub fn first_meta(s: &str) -> Option<char> {
    s.chars().find(|c| SHELL_META.contains(c) || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn alert(ip: &str, user: &str) -> Alert {
        Alert {
            id: "0123456789abcdef0123456789abcdef".into(),
            rule_id: "vigil.brute_force".into(),
            rule_name: "SSH brute force".into(),
            level: vigil_alert::model::Level::High,
            tags: vec![],
            entity: BTreeMap::from([
                ("source.ip".to_owned(), ip.to_owned()),
                ("user.name".to_owned(), user.to_owned()),
            ]),
            message: String::new(),
            group_key: String::new(),
            first_seen: String::new(),
            last_seen: String::new(),
            count: 1,
            evidence_seqs: vec![],
            evidence_truncated: false,
            status: vigil_alert::model::Status::Open,
            suppressed: false,
            suppression_id: None,
        }
    }

    #[test]
    fn fills_validated_values() {
        let t = Template::parse("--ip={{source.ip}}").unwrap();
        assert_eq!(
            t.fill(&alert("203.0.113.9", "root")).unwrap(),
            "--ip=203.0.113.9"
        );
        let t = Template::parse("{{ user.name }}").unwrap();
        assert_eq!(
            t.fill(&alert("203.0.113.9", "j.doe@corp")).unwrap(),
            "j.doe@corp"
        );
        assert_eq!(
            Template::parse("{{source.ip}}")
                .unwrap()
                .fill(&alert("::ffff:203.0.113.9", "x"))
                .unwrap(),
            "203.0.113.9"
        );
    }

    #[test]
    fn refuses_injection_in_values() {
        let ip = Template::parse("{{source.ip}}").unwrap();
        let user = Template::parse("{{user.name}}").unwrap();
        for bad in [
            "; rm -rf /",
            "203.0.113.9; rm -rf /",
            "$(reboot)",
            "`reboot`",
            "203.0.113.9\nreboot",
            "203.0.113.9 ",
            " 203.0.113.9",
            "203.0.113. 9",
        ] {
            let e = ip.fill(&alert(bad, "root")).unwrap_err();
            assert!(e.contains("is not an IP address"), "{bad:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
            let e = user.fill(&alert("203.0.113.9", bad)).unwrap_err();
            assert!(e.contains("is not a safe value"), "{bad:?}: {e}");
        }
        for bad in ["-rf", "--help", "", "a b", "a/b", "root\r\n"] {
            assert!(user.fill(&alert("203.0.113.9", bad)).is_err(), "{bad:?}");
        }
        let e = Template::parse("{{host.name}}")
            .unwrap()
            .fill(&alert("203.0.113.9", "root"))
            .unwrap_err();
        assert_eq!(e, "the alert has no host.name");
    }

    #[test]
    fn parse_refuses_unknown_and_unclosed_placeholders() {
        assert!(Template::parse("{{event.original}}")
            .unwrap_err()
            .contains("unknown placeholder {{event.original}}"));
        assert!(Template::parse("{{source.ip")
            .unwrap_err()
            .contains("unclosed"));
        let t = Template::parse("a{{source.ip}}b").unwrap();
        assert_eq!(t.literal_text(), "ab");
        assert!(t.has_placeholders());
        assert_eq!(first_meta("a;b"), Some(';'));
        assert_eq!(first_meta("a\nb"), Some('\n'));
        assert_eq!(first_meta("--ip=1.2.3.4 now"), None);
    }
}
