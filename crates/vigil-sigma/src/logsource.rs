//! Logsource routing: which events a rule applies to.
//!
//! A Sigma rule names an abstract logsource (`category: process_creation`,
//! `service: security`…). For Windows, [`LogsourceMapping::windows`] turns
//! it into a [`Scope`]: alternatives of channel + EventID (+ extra field)
//! constraints, each with optional field renames. The table is data, not
//! code: `mappings/windows.yml`, derived from the THOR mapping SigmaHQ's
//! regression tests use (e.g. `process_creation` is Sysmon EventID 1 on
//! `Microsoft-Windows-Sysmon/Operational`, or Security 4688 with `Image`
//! read from `NewProcessName`).

use std::borrow::Cow;
use std::collections::HashMap;

use serde_yaml::Value;

use crate::event::{EventView, FieldValue};
use crate::rule::LogSource;

const WINDOWS_YML: &str = include_str!("../mappings/windows.yml");

/// One way an event can belong to a logsource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alternative {
    /// Accepted `Channel` values (case-insensitive); empty accepts any.
    pub channels: Vec<String>,
    /// Accepted `EventID` values; empty accepts any.
    pub event_ids: Vec<i64>,
    /// Extra `field == value` requirements (case-insensitive).
    pub conditions: Vec<(String, String)>,
    /// Field renames: Sigma name -> event field name.
    pub fieldmappings: Vec<(String, String)>,
}

fn text_eq(v: &FieldValue<'_>, want: &str) -> bool {
    match v {
        FieldValue::Str(s) => s.trim().eq_ignore_ascii_case(want),
        FieldValue::Int(n) => n.to_string() == want,
        FieldValue::Float(f) => f.to_string() == want,
        FieldValue::Bool(b) => b.to_string() == want,
        FieldValue::Null => false,
    }
}

impl Alternative {
    /// Whether the event satisfies this alternative's constraints.
    pub fn applies_to(&self, ev: &dyn EventView) -> bool {
        if !self.channels.is_empty()
            && !ev.any_value("Channel", &mut |v| {
                self.channels.iter().any(|c| text_eq(v, c))
            })
        {
            return false;
        }
        if !self.event_ids.is_empty()
            && !ev.any_value("EventID", &mut |v| {
                let id = match v {
                    FieldValue::Int(n) => Some(*n),
                    FieldValue::Str(s) => s.trim().parse().ok(),
                    FieldValue::Float(f) => Some(*f as i64),
                    _ => None,
                };
                id.is_some_and(|id| self.event_ids.contains(&id))
            })
        {
            return false;
        }
        self.conditions
            .iter()
            .all(|(f, want)| ev.any_value(f, &mut |v| text_eq(v, want)))
    }
}

/// Which events a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every event (no mapping applied).
    Any,
    /// Events matching one of the alternatives.
    Constrained(Vec<Alternative>),
    /// No event: the mapping does not know the logsource (the reason says
    /// why), so the rule is not applied rather than applied everywhere.
    Unroutable(String),
}

impl Scope {
    /// Whether an event belongs to this scope (ignoring the detection).
    pub fn applies_to(&self, ev: &dyn EventView) -> bool {
        match self {
            Scope::Any => true,
            Scope::Constrained(alts) => alts.iter().any(|a| a.applies_to(ev)),
            Scope::Unroutable(_) => false,
        }
    }
}

/// A logsource mapping table.
#[derive(Debug, Clone, Default)]
pub struct LogsourceMapping {
    product: String,
    services: HashMap<String, Vec<String>>,
    categories: HashMap<String, Vec<(Option<String>, Alternative)>>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(s)) => s
            .iter()
            .filter_map(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::Mapping(m)) => m
            .iter()
            .filter_map(|(k, v)| {
                let k = k.as_str()?.to_string();
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return None,
                };
                Some((k, v))
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl LogsourceMapping {
    /// The built-in Windows mapping (`mappings/windows.yml`).
    pub fn windows() -> LogsourceMapping {
        LogsourceMapping::from_yaml(WINDOWS_YML).expect("built-in mappings/windows.yml is valid")
    }

    /// Reads a mapping table in the `mappings/windows.yml` format.
    pub fn from_yaml(text: &str) -> Result<LogsourceMapping, String> {
        let doc: Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let product = doc
            .get("product")
            .and_then(Value::as_str)
            .ok_or("missing 'product'")?
            .to_string();
        let mut services = HashMap::new();
        if let Some(Value::Mapping(m)) = doc.get("services") {
            for (k, v) in m {
                let k = k.as_str().ok_or("service name is not a string")?;
                services.insert(k.to_string(), strings(Some(v)));
            }
        }
        let mut categories = HashMap::new();
        if let Some(Value::Mapping(m)) = doc.get("categories") {
            for (k, v) in m {
                let k = k.as_str().ok_or("category name is not a string")?;
                let Value::Sequence(alts) = v else {
                    return Err(format!("category {k}: expected a list of alternatives"));
                };
                let mut list = Vec::new();
                for a in alts {
                    let service = a.get("service").and_then(Value::as_str).map(str::to_string);
                    let channels = match &service {
                        Some(s) => services
                            .get(s)
                            .cloned()
                            .ok_or_else(|| format!("category {k}: unknown service {s}"))?,
                        None => Vec::new(),
                    };
                    let event_ids = strings(a.get("event_ids"))
                        .iter()
                        .map(|s| s.parse::<i64>().map_err(|e| format!("category {k}: {e}")))
                        .collect::<Result<_, _>>()?;
                    list.push((
                        service,
                        Alternative {
                            channels,
                            event_ids,
                            conditions: pairs(a.get("conditions")),
                            fieldmappings: pairs(a.get("fieldmappings")),
                        },
                    ));
                }
                categories.insert(k.to_string(), list);
            }
        }
        Ok(LogsourceMapping {
            product,
            services,
            categories,
        })
    }

    /// The scope of a rule with this logsource.
    pub fn scope_for(&self, ls: &LogSource) -> Scope {
        let product = ls.product.as_deref().map(str::to_ascii_lowercase);
        if let Some(p) = &product {
            if *p != self.product {
                return Scope::Unroutable(format!("product {p} is not mapped"));
            }
        }
        let service = ls.service.as_deref().map(str::to_ascii_lowercase);
        if let Some(cat) = ls.category.as_deref().map(str::to_ascii_lowercase) {
            let Some(alts) = self.categories.get(&cat) else {
                return Scope::Unroutable(format!("category {cat} is not mapped"));
            };
            let picked: Vec<Alternative> = alts
                .iter()
                .filter(|(s, _)| service.is_none() || s.as_deref() == service.as_deref())
                .map(|(_, a)| a.clone())
                .collect();
            if picked.is_empty() {
                return Scope::Unroutable(format!(
                    "category {cat} has no mapping for service {}",
                    service.unwrap_or_default()
                ));
            }
            return Scope::Constrained(picked);
        }
        if let Some(s) = service {
            return match self.services.get(&s) {
                Some(ch) => Scope::Constrained(vec![Alternative {
                    channels: ch.clone(),
                    ..Alternative::default()
                }]),
                None => Scope::Unroutable(format!("service {s} is not mapped")),
            };
        }
        if product.is_some() {
            // `product: windows` alone: any event of the product.
            return Scope::Constrained(vec![Alternative::default()]);
        }
        Scope::Unroutable("logsource names no product, category or service".to_string())
    }
}

/// An [`EventView`] reading renamed fields: a Sigma field name found in the
/// mapping is looked up under the event's name for it.
pub struct MappedView<'a> {
    inner: &'a dyn EventView,
    map: &'a [(String, String)],
}

impl<'a> MappedView<'a> {
    /// Wraps `inner`, renaming fields per `map` (Sigma name -> event name).
    pub fn new(inner: &'a dyn EventView, map: &'a [(String, String)]) -> Self {
        MappedView { inner, map }
    }

    fn name<'f>(&self, field: &'f str) -> Cow<'f, str> {
        match self.map.iter().find(|(s, _)| s == field) {
            Some((_, e)) => Cow::Owned(e.clone()),
            None => Cow::Borrowed(field),
        }
    }
}

impl EventView for MappedView<'_> {
    fn any_value(&self, field: &str, f: &mut dyn FnMut(&FieldValue<'_>) -> bool) -> bool {
        self.inner.any_value(&self.name(field), f)
    }
    fn has_field(&self, field: &str) -> bool {
        self.inner.has_field(&self.name(field))
    }
    fn any_text(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.inner.any_text(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ev(Vec<(&'static str, FieldValue<'static>)>);
    impl EventView for Ev {
        fn any_value(&self, field: &str, f: &mut dyn FnMut(&FieldValue<'_>) -> bool) -> bool {
            self.0.iter().any(|(k, v)| *k == field && f(v))
        }
        fn has_field(&self, field: &str) -> bool {
            self.0.iter().any(|(k, _)| *k == field)
        }
        fn any_text(&self, _f: &mut dyn FnMut(&str) -> bool) -> bool {
            false
        }
    }

    fn ls(p: Option<&str>, c: Option<&str>, s: Option<&str>) -> LogSource {
        LogSource {
            product: p.map(Into::into),
            category: c.map(Into::into),
            service: s.map(Into::into),
        }
    }

    fn sysmon(id: i64) -> Ev {
        Ev(vec![
            (
                "Channel",
                FieldValue::Str("Microsoft-Windows-Sysmon/Operational".into()),
            ),
            ("EventID", FieldValue::Int(id)),
        ])
    }

    fn applies(scope: &Scope, ev: &Ev) -> bool {
        scope.applies_to(ev)
    }

    #[test]
    fn process_creation_is_sysmon_1_or_security_4688() {
        let m = LogsourceMapping::windows();
        let s = m.scope_for(&ls(Some("windows"), Some("process_creation"), None));
        assert!(applies(&s, &sysmon(1)));
        assert!(!applies(&s, &sysmon(3)));
        let sec = Ev(vec![
            ("Channel", FieldValue::Str("Security".into())),
            ("EventID", FieldValue::Str("4688".into())),
        ]);
        assert!(applies(&s, &sec));
        let Scope::Constrained(alts) = &s else {
            panic!()
        };
        assert_eq!(
            alts[1].fieldmappings[0],
            ("Image".into(), "NewProcessName".into())
        );
    }

    #[test]
    fn service_and_unknowns() {
        let m = LogsourceMapping::windows();
        let s = m.scope_for(&ls(Some("windows"), None, Some("sysmon")));
        assert!(applies(&s, &sysmon(13)));
        assert!(matches!(
            m.scope_for(&ls(Some("linux"), Some("process_creation"), None)),
            Scope::Unroutable(_)
        ));
        assert!(matches!(
            m.scope_for(&ls(Some("windows"), Some("nope"), None)),
            Scope::Unroutable(_)
        ));
        let reg = m.scope_for(&ls(Some("windows"), Some("registry_delete"), None));
        let mut ev = sysmon(12);
        ev.0.push(("EventType", FieldValue::Str("DeleteValue".into())));
        assert!(applies(&reg, &ev));
        assert!(!applies(&reg, &sysmon(12)));
    }
}
