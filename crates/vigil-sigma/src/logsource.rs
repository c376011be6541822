//! Logsource routing: which events a rule applies to, and under which
//! field names it reads them.
//!
//! A Sigma rule names an abstract logsource (`product: linux`, `category:
//! process_creation`, `service: sshd`…). A [`LogsourceMapping`] turns it
//! into a [`Scope`]: alternatives, each a set of constraints on the event
//! (Windows channel + EventID, or ECS field values such as `event.module:
//! auditd`) with optional field renames (Sigma name → event field name).
//!
//! The tables are data, not code, so that users can edit and extend them
//! like pySigma processing pipelines (file format in `docs/RULES.md`,
//! "Field mappings"). The built-in ones are embedded from `mappings/`:
//!
//! * `windows.yml`: derived from the THOR mapping SigmaHQ's regression
//!   tests use (e.g. `process_creation` is Sysmon EventID 1 on
//!   `Microsoft-Windows-Sysmon/Operational`, or Security 4688 with `Image`
//!   read from `NewProcessName`);
//! * `linux.yml`: auditd, auth/sshd/sudo/cron… by program, and the
//!   process/file/network categories onto ECS;
//! * `web.yml`: rules without a product: `category: webserver` / `proxy`
//!   (W3C field names onto ECS `url.*` / `http.*`) and `service: apache` /
//!   `nginx`.
//!
//! For non-Windows events, [`Router`] classifies an event once (reading each
//! field the tables test once) and hands back only the rules whose scope
//! it belongs to, so a rule set of hundreds of rules costs one
//! classification per event rather than one scope check per rule.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_yaml::Value;

use crate::event::{EventView, FieldValue};
use crate::rule::LogSource;

const WINDOWS_YML: &str = include_str!("../mappings/windows.yml");
const LINUX_YML: &str = include_str!("../mappings/linux.yml");
const WEB_YML: &str = include_str!("../mappings/web.yml");

/// Largest number of alternatives one `conditions` entry may expand to
/// (each list-valued condition multiplies them), so that a mapping file
/// cannot make routing quadratic by accident.
const MAX_EXPANSION: usize = 256;

/// One way an event can belong to a logsource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Alternative {
    /// Accepted `Channel` values (case-insensitive); empty accepts any.
    pub channels: Vec<String>,
    /// Accepted `EventID` values; empty accepts any.
    pub event_ids: Vec<i64>,
    /// Extra `field == value` requirements (case-insensitive).
    pub conditions: Vec<(String, String)>,
    /// Field renames: Sigma name -> event field name. A `*` entry
    /// (`'*': auditd.data.*`) is a fallback for the names not listed: a
    /// field the event does not have is looked up under that prefix.
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

/// A mapping file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The text is not YAML.
    #[error("invalid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    /// The YAML does not describe a mapping table; the text says where.
    #[error("{0}")]
    Invalid(String),
    /// The file could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn invalid(msg: impl Into<String>) -> MappingError {
    MappingError::Invalid(msg.into())
}

/// The table of one product, or of the rules that name no product.
#[derive(Debug, Clone, Default)]
struct ProductTable {
    /// Lowercase product; `None` for rules without `product`.
    product: Option<String>,
    /// `match`: the events of the product, for rules that name only the
    /// product; `None` accepts every event.
    any: Option<Vec<Alternative>>,
    /// `services`: lowercase service name -> alternatives.
    services: HashMap<String, Vec<Alternative>>,
    /// `categories`: lowercase category -> (service tag, alternative).
    categories: HashMap<String, Vec<(Option<String>, Alternative)>>,
}

/// A logsource mapping: one table per product (plus one for rules that
/// name no product), read from YAML documents.
///
/// Build it with [`LogsourceMapping::builtin`] (all shipped tables),
/// [`LogsourceMapping::load`] / [`LogsourceMapping::from_yaml_str`] (a
/// user's file, alone) or both, combined with [`LogsourceMapping::extend`].
#[derive(Debug, Clone, Default)]
pub struct LogsourceMapping {
    tables: Vec<ProductTable>,
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(s)) => s.iter().filter_map(scalar).collect(),
        Some(v) => scalar(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// A `{name: value}` map whose values are scalars or lists of scalars.
fn multi_pairs(v: Option<&Value>, what: &str) -> Result<Vec<(String, Vec<String>)>, MappingError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Mapping(m)) => m
            .iter()
            .map(|(k, v)| {
                let k =
                    scalar(k).ok_or_else(|| invalid(format!("{what}: a key is not a string")))?;
                let vals = strings(Some(v));
                if vals.is_empty() {
                    return Err(invalid(format!("{what}: {k} has no value")));
                }
                Ok((k, vals))
            })
            .collect(),
        Some(_) => Err(invalid(format!("{what}: expected a map"))),
    }
}

/// A `{name: value}` map of single scalars.
fn pairs(v: Option<&Value>, what: &str) -> Result<Vec<(String, String)>, MappingError> {
    multi_pairs(v, what)?
        .into_iter()
        .map(|(k, mut vals)| {
            if vals.len() != 1 {
                return Err(invalid(format!("{what}: {k} must have one value")));
            }
            Ok((k, vals.remove(0)))
        })
        .collect()
}

/// Every combination of the list-valued conditions (`{a: [x, y], b: z}`
/// -> `[(a,x),(b,z)]`, `[(a,y),(b,z)]`).
fn expand(
    conds: &[(String, Vec<String>)],
    what: &str,
) -> Result<Vec<Vec<(String, String)>>, MappingError> {
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (field, values) in conds {
        if out.len() * values.len() > MAX_EXPANSION {
            return Err(invalid(format!(
                "{what}: conditions expand to more than {MAX_EXPANSION} alternatives"
            )));
        }
        out = out
            .iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push((field.clone(), v.trim().to_string()));
                    p
                })
            })
            .collect();
    }
    Ok(out)
}

/// Alternatives of one entry (`{channels, event_ids, conditions,
/// fieldmappings}`), list-valued conditions expanded.
fn alternatives(a: &Value, what: &str) -> Result<Vec<Alternative>, MappingError> {
    if let Some(m) = a.as_mapping() {
        for k in m.keys() {
            let known = matches!(
                k.as_str(),
                Some("service" | "channels" | "event_ids" | "conditions" | "fieldmappings")
            );
            if !known {
                return Err(invalid(format!("{what}: unknown key {k:?}")));
            }
        }
    } else {
        return Err(invalid(format!("{what}: expected a map")));
    }
    let event_ids = strings(a.get("event_ids"))
        .iter()
        .map(|s| {
            s.parse::<i64>()
                .map_err(|e| invalid(format!("{what}: event_ids: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let channels = strings(a.get("channels"));
    let fieldmappings = pairs(a.get("fieldmappings"), what)?;
    let conds = multi_pairs(a.get("conditions"), what)?;
    Ok(expand(&conds, what)?
        .into_iter()
        .map(|conditions| Alternative {
            channels: channels.clone(),
            event_ids: event_ids.clone(),
            conditions,
            fieldmappings: fieldmappings.clone(),
        })
        .collect())
}

/// A list of entries, or a single one.
fn alternative_list(v: &Value, what: &str) -> Result<Vec<Alternative>, MappingError> {
    match v {
        Value::Sequence(items) => {
            let mut out = Vec::new();
            for a in items {
                out.extend(alternatives(a, what)?);
            }
            Ok(out)
        }
        Value::Mapping(_) => alternatives(v, what),
        _ => Err(invalid(format!("{what}: expected a list of alternatives"))),
    }
}

/// A category alternative within its service: both sets of constraints;
/// the category's renames come first, so they win over the service's.
fn combine(service: &Alternative, cat: &Alternative) -> Alternative {
    let mut out = cat.clone();
    if out.channels.is_empty() {
        out.channels = service.channels.clone();
    }
    if out.event_ids.is_empty() {
        out.event_ids = service.event_ids.clone();
    }
    let mut conditions = service.conditions.clone();
    conditions.extend(cat.conditions.iter().cloned());
    out.conditions = conditions;
    out.fieldmappings
        .extend(service.fieldmappings.iter().cloned());
    out
}

impl ProductTable {
    fn parse(doc: &Value) -> Result<ProductTable, MappingError> {
        let Some(m) = doc.as_mapping() else {
            return Err(invalid("a mapping document must be a map"));
        };
        for k in m.keys() {
            if !matches!(
                k.as_str(),
                Some("product" | "match" | "services" | "categories")
            ) {
                return Err(invalid(format!("unknown top-level key {k:?}")));
            }
        }
        let product = match doc.get("product") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                scalar(v)
                    .ok_or_else(|| invalid("'product' must be a string"))?
                    .to_ascii_lowercase(),
            ),
        };
        let any = match doc.get("match") {
            None | Some(Value::Null) => None,
            Some(v) => Some(alternative_list(v, "match")?),
        };
        let mut services = HashMap::new();
        match doc.get("services") {
            None | Some(Value::Null) => {}
            Some(Value::Mapping(m)) => {
                for (k, v) in m {
                    let k = scalar(k).ok_or_else(|| invalid("a service name is not a string"))?;
                    let what = format!("service {k}");
                    // A list of names is the Windows shorthand: event log channels.
                    let alts = match v {
                        Value::String(_) => vec![Alternative {
                            channels: strings(Some(v)),
                            ..Alternative::default()
                        }],
                        Value::Sequence(items) if items.iter().all(|x| !x.is_mapping()) => {
                            vec![Alternative {
                                channels: strings(Some(v)),
                                ..Alternative::default()
                            }]
                        }
                        _ => alternative_list(v, &what)?,
                    };
                    services.insert(k.to_ascii_lowercase(), alts);
                }
            }
            Some(_) => return Err(invalid("'services' must be a map")),
        }
        let mut categories = HashMap::new();
        match doc.get("categories") {
            None | Some(Value::Null) => {}
            Some(Value::Mapping(m)) => {
                for (k, v) in m {
                    let k = scalar(k).ok_or_else(|| invalid("a category name is not a string"))?;
                    let what = format!("category {k}");
                    let Value::Sequence(items) = v else {
                        return Err(invalid(format!("{what}: expected a list of alternatives")));
                    };
                    let mut list = Vec::new();
                    for a in items {
                        let service = a
                            .get("service")
                            .and_then(scalar)
                            .map(|s| s.to_ascii_lowercase());
                        let alts = alternatives(a, &what)?;
                        match &service {
                            Some(s) => {
                                let svc = services.get(s).ok_or_else(|| {
                                    invalid(format!("{what}: unknown service {s}"))
                                })?;
                                for sa in svc {
                                    for ca in &alts {
                                        list.push((service.clone(), combine(sa, ca)));
                                    }
                                }
                            }
                            None => list.extend(alts.into_iter().map(|a| (None, a))),
                        }
                    }
                    categories.insert(k.to_ascii_lowercase(), list);
                }
            }
            Some(_) => return Err(invalid("'categories' must be a map")),
        }
        Ok(ProductTable {
            product,
            any,
            services,
            categories,
        })
    }

    /// Later tables override earlier ones entry by entry.
    fn extend(&mut self, other: ProductTable) {
        if other.any.is_some() {
            self.any = other.any;
        }
        self.services.extend(other.services);
        self.categories.extend(other.categories);
    }

    fn scope_for(&self, category: Option<&str>, service: Option<&str>) -> Scope {
        if let Some(cat) = category {
            let Some(alts) = self.categories.get(cat) else {
                return Scope::Unroutable(format!("category {cat} is not mapped"));
            };
            let picked: Vec<Alternative> = alts
                .iter()
                .filter(|(s, _)| service.is_none() || s.as_deref() == service)
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
            return match self.services.get(s) {
                Some(alts) => Scope::Constrained(alts.clone()),
                None => Scope::Unroutable(format!("service {s} is not mapped")),
            };
        }
        if self.product.is_none() {
            return Scope::Any;
        }
        // `product: X` alone: any event of the product.
        Scope::Constrained(
            self.any
                .clone()
                .unwrap_or_else(|| vec![Alternative::default()]),
        )
    }
}

fn lower(s: Option<&str>) -> Option<String> {
    s.map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
}

impl LogsourceMapping {
    /// The built-in Windows table alone (`mappings/windows.yml`).
    pub fn windows() -> LogsourceMapping {
        LogsourceMapping::from_yaml_str(WINDOWS_YML)
            .expect("built-in mappings/windows.yml is valid")
    }

    /// All built-in tables: `mappings/windows.yml`, `linux.yml` and
    /// `web.yml` (parsed once per process).
    pub fn builtin() -> LogsourceMapping {
        static BUILTIN: OnceLock<LogsourceMapping> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                let mut m = LogsourceMapping::default();
                for (name, text) in [
                    ("windows.yml", WINDOWS_YML),
                    ("linux.yml", LINUX_YML),
                    ("web.yml", WEB_YML),
                ] {
                    let t = LogsourceMapping::from_yaml_str(text)
                        .unwrap_or_else(|e| panic!("built-in mappings/{name} is invalid: {e}"));
                    m.extend(t);
                }
                m
            })
            .clone()
    }

    /// Reads mapping tables from YAML: one table per document (documents
    /// are separated by `---`), format in `docs/RULES.md`.
    pub fn from_yaml_str(text: &str) -> Result<LogsourceMapping, MappingError> {
        let mut m = LogsourceMapping::default();
        for doc in serde_yaml::Deserializer::from_str(text) {
            let v = Value::deserialize(doc)?;
            if v.is_null() {
                continue;
            }
            let t = ProductTable::parse(&v)?;
            m.extend(LogsourceMapping { tables: vec![t] });
        }
        Ok(m)
    }

    /// Reads a mapping file (see [`LogsourceMapping::from_yaml_str`]).
    pub fn load(path: &Path) -> Result<LogsourceMapping, MappingError> {
        let text = crate::loader::read_rule_file(path).map_err(|source| MappingError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        LogsourceMapping::from_yaml_str(&text).map_err(|e| match e {
            MappingError::Io { .. } => e,
            other => invalid(format!("{}: {other}", path.display())),
        })
    }

    /// Adds `other`'s tables on top of these: for the same product, its
    /// `match` and each of its services and categories replace the ones
    /// here; the rest is kept. `builtin()` extended by a user's file is
    /// the defaults with the user's overrides.
    pub fn extend(&mut self, other: LogsourceMapping) {
        for t in other.tables {
            match self.tables.iter_mut().find(|x| x.product == t.product) {
                Some(existing) => existing.extend(t),
                None => self.tables.push(t),
            }
        }
    }

    /// The products (lowercase) the mapping has a table for; `None` is the
    /// table of rules without a product.
    pub fn products(&self) -> Vec<Option<&str>> {
        self.tables.iter().map(|t| t.product.as_deref()).collect()
    }

    /// The scope of a rule with this logsource. A rule naming nothing
    /// (no product, category or service) applies to every event; one whose
    /// product, category or service the mapping does not know is
    /// [`Scope::Unroutable`].
    pub fn scope_for(&self, ls: &LogSource) -> Scope {
        let product = lower(ls.product.as_deref());
        let category = lower(ls.category.as_deref());
        let service = lower(ls.service.as_deref());
        if product.is_none() && category.is_none() && service.is_none() {
            return Scope::Any;
        }
        match self.tables.iter().find(|t| t.product == product) {
            Some(t) => t.scope_for(category.as_deref(), service.as_deref()),
            None => match product {
                Some(p) => Scope::Unroutable(format!("product {p} is not mapped")),
                None => Scope::Unroutable(format!(
                    "{} is not mapped for rules without a product",
                    match (&category, &service) {
                        (Some(c), _) => format!("category {c}"),
                        (None, Some(s)) => format!("service {s}"),
                        (None, None) => unreachable!("handled above"),
                    }
                )),
            },
        }
    }
}

/// Rules (by position) indexed by the alternatives of their scopes, for
/// events without a channel index (everything not Windows-shaped).
///
/// [`Router::route`] reads each field the alternatives test once per
/// event, decides which alternatives the event belongs to, and evaluates
/// only their rules, each through its alternative's field renames.
#[derive(Debug, Default)]
pub struct Router {
    /// Rules that apply to every event ([`Scope::Any`]).
    any: Vec<usize>,
    /// The distinct fields the alternatives' conditions test.
    fields: Vec<String>,
    /// Distinct alternatives with the rules scoped by them.
    routes: Vec<Route>,
    /// Alternative -> position in `routes`.
    by_alt: HashMap<Alternative, usize>,
}

#[derive(Debug)]
struct Route {
    alt: Alternative,
    /// (index in `fields`, lowercase value) that must all be present.
    conds: Vec<(usize, String)>,
    /// Channel/EventID constraints need the full [`Alternative::applies_to`].
    needs_full_check: bool,
    rules: Vec<usize>,
}

/// The text of a value as the conditions compare it: trimmed, lowercase.
fn cond_text(v: &FieldValue<'_>) -> Option<String> {
    match v {
        FieldValue::Str(s) => Some(s.trim().to_ascii_lowercase()),
        FieldValue::Int(n) => Some(n.to_string()),
        FieldValue::Float(f) => Some(f.to_string()),
        FieldValue::Bool(b) => Some(b.to_string()),
        FieldValue::Null => None,
    }
}

/// Values kept per field when classifying (arrays such as `event.type`
/// are short; a hostile event with a huge array is not scanned whole).
const MAX_VALUES_PER_FIELD: usize = 16;

impl Router {
    /// Files rule `rule` under its scope. Unroutable rules are not filed.
    pub fn add(&mut self, rule: usize, scope: &Scope) {
        match scope {
            Scope::Any => self.any.push(rule),
            Scope::Unroutable(_) => {}
            Scope::Constrained(alts) => {
                for a in alts {
                    let r = self.route_index(a);
                    let rules = &mut self.routes[r].rules;
                    if rules.last() != Some(&rule) {
                        rules.push(rule);
                    }
                }
            }
        }
    }

    fn route_index(&mut self, a: &Alternative) -> usize {
        if let Some(&i) = self.by_alt.get(a) {
            return i;
        }
        let conds = a
            .conditions
            .iter()
            .map(|(f, v)| {
                let fi = match self.fields.iter().position(|x| x == f) {
                    Some(i) => i,
                    None => {
                        self.fields.push(f.clone());
                        self.fields.len() - 1
                    }
                };
                (fi, v.trim().to_ascii_lowercase())
            })
            .collect();
        self.routes.push(Route {
            alt: a.clone(),
            conds,
            needs_full_check: !a.channels.is_empty() || !a.event_ids.is_empty(),
            rules: Vec::new(),
        });
        self.by_alt.insert(a.clone(), self.routes.len() - 1);
        self.routes.len() - 1
    }

    /// Whether no rule is filed.
    pub fn is_empty(&self) -> bool {
        self.any.is_empty() && self.routes.is_empty()
    }

    /// The rules (positions, ascending, each once) for which `eval`
    /// returned true. `eval(rule, view)` is asked only for the rules whose
    /// scope the event belongs to, with the event seen through the
    /// matching alternative's field renames; a rule whose first matching
    /// alternative does not match is asked again for the next one.
    pub fn route(
        &self,
        ev: &dyn EventView,
        eval: &mut dyn FnMut(usize, &dyn EventView) -> bool,
    ) -> Vec<usize> {
        let mut matched: Vec<usize> = Vec::new();
        for &i in &self.any {
            if eval(i, ev) {
                matched.push(i);
            }
        }
        if !self.routes.is_empty() {
            // Classify: each tested field read once.
            let values: Vec<Vec<String>> = self
                .fields
                .iter()
                .map(|f| {
                    let mut vals = Vec::new();
                    ev.any_value(f, &mut |v| {
                        vals.extend(cond_text(v));
                        vals.len() >= MAX_VALUES_PER_FIELD
                    });
                    vals
                })
                .collect();
            for r in &self.routes {
                let belongs = r
                    .conds
                    .iter()
                    .all(|(fi, want)| values[*fi].iter().any(|v| v == want))
                    && (!r.needs_full_check || r.alt.applies_to(ev));
                if !belongs {
                    continue;
                }
                let mapped = MappedView::new(ev, &r.alt.fieldmappings);
                let view: &dyn EventView = if r.alt.fieldmappings.is_empty() {
                    ev
                } else {
                    &mapped
                };
                for &i in &r.rules {
                    if !matched.contains(&i) && eval(i, view) {
                        matched.push(i);
                    }
                }
            }
        }
        matched.sort_unstable();
        matched
    }
}

/// An [`EventView`] reading renamed fields: a Sigma field name found in the
/// mapping is looked up under the event's name for it; with a `*` entry
/// (`'*': prefix.*`), a name the event lacks is looked up under the prefix.
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
        if let Some((_, e)) = self.map.iter().find(|(s, _)| s == field) {
            return Cow::Owned(e.clone());
        }
        if let Some((_, e)) = self.map.iter().find(|(s, _)| s == "*") {
            if !self.inner.has_field(field) {
                let prefix = e.strip_suffix('*').unwrap_or(e);
                return Cow::Owned(format!("{prefix}{field}"));
            }
        }
        Cow::Borrowed(field)
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

    fn json(v: serde_json::Value) -> serde_json::Value {
        v
    }

    fn scope(m: &LogsourceMapping, p: Option<&str>, c: Option<&str>, s: Option<&str>) -> Scope {
        m.scope_for(&ls(p, c, s))
    }

    #[test]
    fn builtin_routes_linux_services_by_program() {
        let m = LogsourceMapping::builtin();
        let sshd =
            json(serde_json::json!({"process": {"name": "sshd"}, "log": {"format": "rfc3164"}}));
        let nginx =
            json(serde_json::json!({"process": {"name": "nginx"}, "log": {"format": "rfc3164"}}));
        let view = crate::views::JsonView(&sshd);
        let s = scope(&m, Some("linux"), None, Some("sshd"));
        assert!(s.applies_to(&view));
        assert!(!s.applies_to(&crate::views::JsonView(&nginx)));
        // service: syslog is any syslog message; product alone any Linux event.
        assert!(scope(&m, Some("Linux"), None, Some("syslog")).applies_to(&view));
        assert!(scope(&m, Some("linux"), None, None).applies_to(&view));
        let other = serde_json::json!({"log": {"format": "cef"}});
        assert!(!scope(&m, Some("linux"), None, None).applies_to(&crate::views::JsonView(&other)));
        // Windows is unchanged.
        assert_eq!(
            scope(&m, Some("windows"), Some("process_creation"), None),
            scope(
                &LogsourceMapping::windows(),
                Some("windows"),
                Some("process_creation"),
                None
            )
        );
    }

    #[test]
    fn webserver_maps_w3c_names_onto_ecs() {
        let m = LogsourceMapping::builtin();
        let s = scope(&m, None, Some("webserver"), None);
        let ev = serde_json::json!({"event": {"dataset": "http.access"}, "http": {"request": {"method": "GET"}}});
        let Scope::Constrained(alts) = &s else {
            panic!("{s:?}")
        };
        let v = crate::views::JsonView(&ev);
        assert!(alts[0].applies_to(&v));
        let mapped = MappedView::new(&v, &alts[0].fieldmappings);
        assert!(mapped.any_value("cs-method", &mut |x| text_eq(x, "get")));
        let sshd = serde_json::json!({"process": {"name": "sshd"}});
        assert!(!s.applies_to(&crate::views::JsonView(&sshd)));
    }

    #[test]
    fn unknown_and_generic_logsources() {
        let m = LogsourceMapping::builtin();
        assert_eq!(scope(&m, None, None, None), Scope::Any);
        for (p, c, sv) in [
            (Some("macos"), Some("process_creation"), None),
            (Some("linux"), Some("no_such_category"), None),
            (Some("linux"), None, Some("no_such_service")),
            (None, Some("no_such_category"), None),
            (None, None, Some("no_such_service")),
        ] {
            assert!(
                matches!(scope(&m, p, c, sv), Scope::Unroutable(_)),
                "{p:?} {c:?} {sv:?}"
            );
        }
        assert_eq!(m.products(), [Some("windows"), Some("linux"), None]);
    }

    #[test]
    fn user_files_extend_and_override() {
        let mut m = LogsourceMapping::builtin();
        let user = "product: linux\nservices:\n  sshd:\n    - conditions: {process.name: dropbear}\n---\nproduct: macos\ncategories:\n  process_creation:\n    - conditions: {event.category: process, event.type: [start, exec]}\n      fieldmappings: {Image: process.executable}\n";
        m.extend(LogsourceMapping::from_yaml_str(user).unwrap());
        let Scope::Constrained(a) = scope(&m, Some("linux"), None, Some("sshd")) else {
            panic!()
        };
        assert_eq!(a.len(), 1);
        assert_eq!(
            a[0].conditions,
            [("process.name".into(), "dropbear".into())]
        );
        // Other linux entries are kept.
        assert!(matches!(
            scope(&m, Some("linux"), None, Some("auditd")),
            Scope::Constrained(_)
        ));
        let Scope::Constrained(a) = scope(&m, Some("macos"), Some("process_creation"), None) else {
            panic!()
        };
        assert_eq!(a.len(), 2, "list values expand to alternatives");
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        for (text, want) in [
            ("product: [", "invalid YAML"),
            ("- a", "must be a map"),
            ("product: x\nservice: {}", "unknown top-level key"),
            (
                "product: x\nservices: {a: [{conditions: {f: v}, oops: 1}]}",
                "unknown key",
            ),
            (
                "product: x\ncategories: {c: [{service: nope}]}",
                "unknown service nope",
            ),
            (
                "product: x\ncategories: {c: {conditions: {}}}",
                "expected a list",
            ),
            ("product: x\nservices: {a: [{event_ids: [x]}]}", "event_ids"),
            (
                "product: x\nservices: {a: [{fieldmappings: {A: [b, c]}}]}",
                "one value",
            ),
        ] {
            let e = LogsourceMapping::from_yaml_str(text)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let many: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        let text = format!(
            "product: x\nservices:\n  a:\n    - conditions: {{f: [{0}], g: [{0}]}}\n",
            many.join(", ")
        );
        let e = LogsourceMapping::from_yaml_str(&text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than 256"), "{e}");
        let e = LogsourceMapping::load(Path::new("/no/such/mapping.yml")).unwrap_err();
        assert!(matches!(e, MappingError::Io { .. }), "{e}");
    }

    #[test]
    fn wildcard_mapping_falls_back_to_a_prefix() {
        let ev = serde_json::json!({"auditd": {"message_type": "EXECVE", "data": {"a0": "dd", "exe": "/bin/dd"}}, "exe": "top"});
        let v = crate::views::JsonView(&ev);
        let map = vec![
            ("type".to_string(), "auditd.message_type".to_string()),
            ("*".to_string(), "auditd.data.*".to_string()),
        ];
        let m = MappedView::new(&v, &map);
        assert!(m.any_value("type", &mut |x| text_eq(x, "execve")));
        assert!(m.any_value("a0", &mut |x| text_eq(x, "dd")));
        // A field the event has is read as written.
        assert!(m.any_value("exe", &mut |x| text_eq(x, "top")));
        assert!(!m.has_field("a1"));
    }

    #[test]
    fn router_classifies_once_and_reports_each_rule_once() {
        let m = LogsourceMapping::builtin();
        let mut r = Router::default();
        r.add(0, &scope(&m, Some("linux"), None, Some("sshd")));
        r.add(1, &scope(&m, None, Some("webserver"), None));
        r.add(2, &Scope::Any);
        r.add(3, &scope(&m, Some("linux"), None, Some("auth")));
        r.add(4, &Scope::Unroutable("x".into()));
        r.add(5, &scope(&m, Some("linux"), None, None));
        let ev = serde_json::json!({"process": {"name": "sshd"}, "event": {"dataset": "system.auth"},
            "log": {"format": "rfc3164", "syslog": {"facility": {"name": "auth"}}}});
        let mut asked = Vec::new();
        let hits = r.route(&crate::views::JsonView(&ev), &mut |i, _| {
            asked.push(i);
            true
        });
        assert_eq!(hits, [0, 2, 3, 5]);
        asked.sort_unstable();
        assert_eq!(
            asked,
            [0, 2, 3, 5],
            "auth matched once though two alternatives apply"
        );
        let web =
            serde_json::json!({"event": {"dataset": "http.access"}, "url": {"query": "id=1"}});
        let hits = r.route(&crate::views::JsonView(&web), &mut |_, v| {
            v.any_value("cs-uri-query", &mut |x| text_eq(x, "id=1"))
        });
        assert_eq!(hits, [1]);
        assert!(!r.is_empty());
    }
}
