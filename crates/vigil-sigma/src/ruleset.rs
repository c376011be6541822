//! A set of compiled rules, indexed so that an event is only tested
//! against the rules that can apply to it.
//!
//! Rules are scoped by a [`LogsourceMapping`] ([`LogsourceMapping::builtin`]
//! unless given). Windows rules only see Windows-shaped events (see
//! [`is_windows`]), read through [`FlatWindowsView`]; they are indexed by
//! channel and by (channel, EventID). Rules of other products (or none) see
//! the other events their logsource routes to them (see
//! [`crate::logsource::Router`]), read as nested JSON through [`JsonView`] /
//! [`JsonMapView`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::compile::CompiledRule;
use crate::event::{EventView, FieldValue};
use crate::flat::FlatEvent;
use crate::logsource::{LogsourceMapping, Router, Scope};
use crate::prefilter::{name_key_into, with_marks, Prefilter, PrefilterStats};
use crate::views::{FlatWindowsView, JsonMapView, JsonView};

/// Whether an event is Windows-shaped: `evtx_dump` layout (`Event.System`),
/// flat winlogbeat/OTRF fields (`EventID`) or winlogbeat's `winlog` object.
pub fn is_windows(ev: &Value) -> bool {
    ev.as_object().is_some_and(is_windows_map)
}

/// [`is_windows`] for an event given as its map.
pub fn is_windows_map(ev: &Map<String, Value>) -> bool {
    ev.get("Event").is_some_and(|e| e.get("System").is_some())
        || ev.contains_key("EventID")
        || ev.contains_key("winlog")
}

fn is_windows_rule(r: &CompiledRule) -> bool {
    r.logsource.product.as_deref() == Some("windows")
}

/// A fast hasher for the index's small keys (not exposed to untrusted
/// key choice beyond channel names and event IDs).
type Fast = foldhash::fast::RandomState;

/// Rules (set positions) that apply to the same events, with their
/// literal pre-selection.
#[derive(Debug, Default)]
struct Group {
    /// Distinct per group of a set, for [`RuleIndex::named`].
    id: u32,
    filter: Prefilter,
}

impl Group {
    fn new<R: AsRef<CompiledRule>>(rules: &[R], positions: Vec<usize>, id: &mut u32) -> Group {
        *id += 1;
        Group {
            id: *id,
            filter: Prefilter::build(rules, &positions),
        }
    }
}

/// Positions of the rules by what they apply to.
#[derive(Debug, Default)]
struct RuleIndex {
    /// Windows rules constrained to a channel but not to event IDs, by lowercase channel.
    by_channel: HashMap<String, Group, Fast>,
    /// Windows rules constrained to a channel and event IDs, by (lowercase channel, ID).
    by_channel_id: HashMap<String, HashMap<i64, Group, Fast>, Fast>,
    /// Windows rules without a channel constraint.
    windows_any: Group,
    /// Rules of other products (or none), by logsource: applied to non-Windows events.
    other: Router,
    /// Every group's scans of plain field names, by the name lowercased
    /// without spaces: (group id, scan). An event's fields are listed once
    /// for all the groups it belongs to.
    named: HashMap<String, Vec<(u32, usize)>, Fast>,
}

/// [`RuleIndex`] while it is being filled: positions only.
#[derive(Default)]
struct Positions {
    by_channel: HashMap<String, Vec<usize>>,
    by_channel_id: HashMap<(String, i64), Vec<usize>>,
    windows_any: Vec<usize>,
    other: Router,
}

impl RuleIndex {
    fn new<R: AsRef<CompiledRule>>(rules: &[R]) -> Self {
        let mut pos = Positions::default();
        for (i, r) in rules.iter().enumerate() {
            let r = r.as_ref();
            if !is_windows_rule(r) {
                pos.other.add(i, &r.scope);
                continue;
            }
            match &r.scope {
                Scope::Unroutable(_) => {}
                Scope::Constrained(alts) if alts.iter().all(|a| !a.channels.is_empty()) => {
                    pos.add_constrained(i, alts)
                }
                _ => pos.windows_any.push(i),
            }
        }
        let mut id = 0u32;
        let mut idx = RuleIndex {
            by_channel: pos
                .by_channel
                .into_iter()
                .map(|(k, v)| (k, Group::new(rules, v, &mut id)))
                .collect(),
            by_channel_id: HashMap::default(),
            windows_any: Group::new(rules, pos.windows_any, &mut id),
            other: pos.other,
            named: HashMap::default(),
        };
        for ((chan, event_id), v) in pos.by_channel_id {
            let g = Group::new(rules, v, &mut id);
            idx.by_channel_id
                .entry(chan)
                .or_default()
                .insert(event_id, g);
        }
        let mut named: HashMap<String, Vec<(u32, usize)>, _> = HashMap::default();
        for g in idx.groups() {
            for (key, scan) in g.filter.named() {
                named.entry(key.to_string()).or_default().push((g.id, scan));
            }
        }
        idx.named = named;
        idx
    }

    fn groups(&self) -> impl Iterator<Item = &Group> {
        self.by_channel
            .values()
            .chain(self.by_channel_id.values().flat_map(|m| m.values()))
            .chain([&self.windows_any])
    }
}

impl Positions {
    /// Files rule `i` under each of its channels, once per channel (or
    /// once per (channel, ID)), so that it is evaluated once per event.
    fn add_constrained(&mut self, i: usize, alts: &[crate::logsource::Alternative]) {
        // Per channel: None = any event ID, else the accepted IDs.
        let mut per_channel: BTreeMap<String, Option<BTreeSet<i64>>> = BTreeMap::new();
        for a in alts {
            for c in &a.channels {
                let slot = per_channel
                    .entry(c.trim().to_ascii_lowercase())
                    .or_insert_with(|| Some(BTreeSet::new()));
                match slot {
                    Some(_) if a.event_ids.is_empty() => *slot = None,
                    Some(ids) => ids.extend(a.event_ids.iter().copied()),
                    None => {}
                }
            }
        }
        for (c, ids) in per_channel {
            let Some(ids) = ids else {
                self.by_channel.entry(c).or_default().push(i);
                continue;
            };
            for id in ids {
                self.by_channel_id
                    .entry((c.clone(), id))
                    .or_default()
                    .push(i);
            }
        }
    }
}

/// A rule set: rules (a [`CompiledRule`] or a wrapper around one, e.g.
/// with a match counter) and their index. Build with [`RuleSet::new`].
#[derive(Debug)]
pub struct RuleSet<R = CompiledRule> {
    rules: Vec<R>,
    index: RuleIndex,
}

impl<R> Default for RuleSet<R> {
    fn default() -> Self {
        RuleSet {
            rules: Vec::new(),
            index: RuleIndex::default(),
        }
    }
}

impl<R: AsRef<CompiledRule> + AsMut<CompiledRule>> RuleSet<R> {
    /// Scopes the rules with [`LogsourceMapping::builtin`] (a rule whose
    /// logsource the mapping does not know becomes [`Scope::Unroutable`]
    /// and is not applied) and indexes them.
    pub fn new(rules: Vec<R>) -> Self {
        Self::with_mapping(rules, &LogsourceMapping::builtin())
    }

    /// [`RuleSet::new`] with another mapping, e.g. the built-in one
    /// extended by a user's file ([`LogsourceMapping::extend`]).
    pub fn with_mapping(mut rules: Vec<R>, mapping: &LogsourceMapping) -> Self {
        for r in &mut rules {
            let r = r.as_mut();
            r.scope = mapping.scope_for(&r.logsource);
        }
        let index = RuleIndex::new(&rules);
        RuleSet { rules, index }
    }
}

impl<R: AsRef<CompiledRule>> RuleSet<R> {
    /// The rules, in the order given to [`RuleSet::new`].
    pub fn rules(&self) -> &[R] {
        &self.rules
    }

    /// Whether the set has no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Rules whose logsource is unknown to the mapping (not applied).
    pub fn unroutable(&self) -> usize {
        self.rules
            .iter()
            .filter(|r| matches!(r.as_ref().scope, Scope::Unroutable(_)))
            .count()
    }

    /// Size of the literal pre-selection (see [`crate::prefilter`]).
    pub fn prefilter_stats(&self) -> PrefilterStats {
        let mut s = PrefilterStats::default();
        for g in self.index.groups() {
            let (lits, always) = g.filter.stats();
            s.literals += lits;
            s.always += always;
        }
        s
    }

    /// Calls `f` with every rule that matches `ev`, in rule order (each
    /// rule at most once).
    pub fn matching<'s>(&'s self, ev: &Value, f: impl FnMut(&'s R)) {
        match ev {
            Value::Object(m) => self.matching_map(m, f),
            _ => self.run_other(&JsonView(ev), f),
        }
    }

    /// [`RuleSet::matching`] for an event given as its map.
    pub fn matching_map<'s>(&'s self, ev: &Map<String, Value>, f: impl FnMut(&'s R)) {
        if !is_windows_map(ev) {
            return self.run_other(&JsonMapView(ev), f);
        }
        self.run_windows(&FlatWindowsView::from_map(ev), f)
    }

    /// [`RuleSet::matching`] for a flat Windows event read by
    /// [`FlatEvent::parse`]: the same rules match as for the
    /// `serde_json::Value` of the same line.
    pub fn matching_flat<'s>(&'s self, ev: &FlatEvent<'_>, f: impl FnMut(&'s R)) {
        self.run_windows(ev, f)
    }

    /// Windows events: the rules of their channel and event ID.
    fn run_windows<'s>(&'s self, win: &dyn EventView, f: impl FnMut(&'s R)) {
        let (chan, event_id) = channel_and_id(win);
        let id_rules = event_id.and_then(|id| self.index.by_channel_id.get(&chan)?.get(&id));
        let channel_rules = self.index.by_channel.get(&chan);
        self.run(
            win,
            [channel_rules, id_rules, Some(&self.index.windows_any)],
            f,
        )
    }

    /// Non-Windows events: the rules their logsource routes them to.
    fn run_other<'s>(&'s self, view: &dyn EventView, mut f: impl FnMut(&'s R)) {
        let hits = self
            .index
            .other
            .route(view, &mut |i, v| self.rules[i].as_ref().matches(v));
        for i in hits {
            f(&self.rules[i]);
        }
    }

    /// Evaluates the rules of `groups` that the pre-selection lets through.
    fn run<'s>(
        &'s self,
        view: &dyn EventView,
        groups: [Option<&'s Group>; 3],
        mut f: impl FnMut(&'s R),
    ) {
        with_marks(|marks| {
            // The event's fields once, for all its groups.
            let mut key = std::mem::take(&mut marks.key);
            let mut cache = std::mem::take(&mut marks.value);
            let listed = view.each_named(&mut |name, v| {
                name_key_into(&mut key, name);
                let Some(scans) = self.index.named.get(key.as_str()) else {
                    return;
                };
                cache.reset();
                for &(gid, scan) in scans {
                    if let Some(g) = groups.iter().flatten().find(|g| g.id == gid) {
                        g.filter.scan_field_cached(scan, v, &mut cache, marks);
                    }
                }
            });
            marks.key = key;
            marks.value = cache;
            for g in groups.iter().flatten() {
                g.filter.select_rest(view, marks, listed);
            }
            for &i in marks.sorted() {
                let r = &self.rules[i as usize];
                if r.as_ref().matches_in_scope(view) {
                    f(r);
                }
            }
        });
    }
}

/// The lowercase `Channel` and the `EventID` of a Windows event.
fn channel_and_id(win: &dyn EventView) -> (String, Option<i64>) {
    let mut chan = String::new();
    win.any_value("Channel", &mut |v| {
        if let FieldValue::Str(s) = v {
            chan = s.trim().to_ascii_lowercase();
        }
        true
    });
    let mut event_id = None;
    win.any_value("EventID", &mut |v| {
        event_id = match v {
            FieldValue::Int(n) => Some(*n),
            FieldValue::Str(s) => s.trim().parse().ok(),
            FieldValue::Float(f) => Some(*f as i64),
            _ => None,
        };
        true
    });
    (chan, event_id)
}

impl AsRef<CompiledRule> for CompiledRule {
    fn as_ref(&self) -> &CompiledRule {
        self
    }
}

impl AsMut<CompiledRule> for CompiledRule {
    fn as_mut(&mut self) -> &mut CompiledRule {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::{load_source, LoadReport};
    use crate::value::Placeholders;

    fn set(src: &str) -> RuleSet {
        let mut r = LoadReport::default();
        load_source(src, "r.yml", &Placeholders::default(), &mut r);
        assert!(r.refused.is_empty(), "{:?}", r.refused);
        RuleSet::new(r.rules)
    }

    fn titles(s: &RuleSet, ev: &Value) -> Vec<String> {
        let mut out = Vec::new();
        s.matching(ev, |r| out.push(r.meta.title.clone()));
        out
    }

    const WIN: &str = "title: Logon\nlogsource:\n    product: windows\n    service: security\ndetection:\n    sel:\n        EventID: 4624\n    condition: sel\n---\ntitle: Any security\nlogsource:\n    product: windows\n    service: security\ndetection:\n    sel:\n        TargetUserName: bob\n    condition: sel\n---\ntitle: Nowhere\nlogsource:\n    product: windows\n    service: no-such-service\ndetection:\n    sel:\n        EventID: 1\n    condition: sel\n---\ntitle: Linux\nlogsource:\n    product: linux\ndetection:\n    sel:\n        user.name: bob\n    condition: sel\n";

    #[test]
    fn routes_windows_and_other_events() {
        let s = set(WIN);
        assert_eq!(s.rules().len(), 4);
        assert_eq!(s.unroutable(), 1);
        let ev =
            serde_json::json!({"EventID": 4624, "Channel": " security ", "TargetUserName": "bob"});
        assert_eq!(titles(&s, &ev), ["Logon", "Any security"]);
        let other =
            serde_json::json!({"EventID": 4624, "Channel": "System", "TargetUserName": "bob"});
        assert!(titles(&s, &other).is_empty());
        // ECS events only see the other products' rules, and through the map too.
        let ecs = serde_json::json!({"user": {"name": "bob"}, "log": {"format": "rfc3164"}});
        assert_eq!(titles(&s, &ecs), ["Linux"]);
        let mut n = 0;
        s.matching_map(ecs.as_object().unwrap(), |_| n += 1);
        assert_eq!(n, 1);
        assert!(titles(&s, &serde_json::json!("bob")).is_empty());
        assert!(is_windows(&serde_json::json!({"winlog": {}})));
        assert!(!is_windows(&serde_json::json!({"Event": {"x": 1}})));
    }
}
