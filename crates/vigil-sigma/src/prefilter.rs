//! Choosing, per event, the few rules worth evaluating.
//!
//! Most rules can only match when some field holds one of a few literals:
//! `Image|endswith: '\whoami.exe'` cannot match an event whose `Image` does
//! not contain `whoami.exe`. For each rule we derive such a *necessary*
//! set of (field, literal) pairs from its condition (see [`rule_needles`]);
//! a [`Prefilter`] merges the literals of all rules of a group into one
//! Aho-Corasick automaton per field, scans each field's value once per
//! event, and marks the rules whose literals occur. Only marked rules, and
//! rules without a usable literal set, are then evaluated in full. The
//! pre-selection may let through rules that do not match (the full
//! evaluation decides), but never drops one that does.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::compile::{CompiledRule, Selection};
use crate::condition::Cond;
use crate::event::{EventView, FieldValue};
use crate::logsource::Scope;
use crate::value::{int_of, with_text, FieldMatcher, Needle};

/// Literals shorter than this are poor filters: they occur in most values.
const MIN_USEFUL_LITERAL: usize = 3;

fn weight(n: &Needle<'_>) -> usize {
    match n {
        Needle::Text(l) => l.len(),
        // An exact number (an event ID, a logon type) is about as
        // selective as a medium-length literal.
        Needle::Int(_) => 8,
    }
}

/// How selective a set of alternative needles is (greater is better): the
/// weakest needle first (capped, beyond which length no longer matters),
/// then fewer alternatives.
pub(crate) fn selectivity(n: &[Needle<'_>]) -> (usize, std::cmp::Reverse<usize>) {
    let weakest = n.iter().map(weight).min().unwrap_or(0);
    (weakest.min(16), std::cmp::Reverse(n.len()))
}

/// A necessary condition: the event matches only if one of these
/// (Sigma field, needle) pairs holds (field `""`: any value).
type Needles<'r> = Vec<(&'r str, Needle<'r>)>;

fn score(n: &Needles<'_>) -> (usize, std::cmp::Reverse<usize>) {
    let weakest = n.iter().map(|(_, x)| weight(x)).min().unwrap_or(0);
    (weakest.min(16), std::cmp::Reverse(n.len()))
}

fn matcher_needles(m: &FieldMatcher) -> Option<Needles<'_>> {
    let (field, needles) = m.required_needles()?;
    Some(needles.into_iter().map(|n| (field, n)).collect())
}

/// Of several necessary conditions that all hold (an AND), the most
/// selective one is enough.
fn best<'r>(cands: impl Iterator<Item = Option<Needles<'r>>>) -> Option<Needles<'r>> {
    cands.flatten().max_by_key(score)
}

fn selection_needles(s: &Selection) -> Option<Needles<'_>> {
    match s {
        Selection::Map(ms) => best(ms.iter().map(matcher_needles)),
        Selection::MapList(groups) => {
            // One group must match: the union of each group's best set.
            let mut out = Vec::new();
            for g in groups {
                out.extend(best(g.iter().map(matcher_needles))?);
            }
            Some(out)
        }
        Selection::Keywords(m) => matcher_needles(m),
    }
}

fn cond_needles<'r>(c: &Cond, sels: &'r [Selection]) -> Option<Needles<'r>> {
    match c {
        Cond::Sel(i) => selection_needles(&sels[*i]),
        // A negation requires nothing to be present.
        Cond::Not(_) => None,
        Cond::And(cs) => best(cs.iter().map(|c| cond_needles(c, sels))),
        Cond::Or(cs) => {
            let mut out = Vec::new();
            for c in cs {
                out.extend(cond_needles(c, sels)?);
            }
            Some(out)
        }
    }
}

/// The (Sigma field, needle) pairs of which every event the rule matches
/// holds at least one (field `""`: any value of the event), or `None`
/// when the rule has no such set (it must then be evaluated on every
/// event it applies to).
pub fn rule_needles(rule: &CompiledRule) -> Option<Vec<(&str, Needle<'_>)>> {
    let n = cond_needles(&rule.condition, &rule.selections)?;
    let useful = |x: &Needle<'_>| !matches!(x, Needle::Text(l) if l.len() < MIN_USEFUL_LITERAL);
    (!n.is_empty() && n.iter().all(|(_, x)| useful(x))).then_some(n)
}

/// The event field names a rule's field can be read from: the name itself
/// and its renames in the rule's logsource mapping.
fn event_names<'r>(rule: &'r CompiledRule, field: &'r str) -> Vec<&'r str> {
    let mut names = vec![field];
    if let Scope::Constrained(alts) = &rule.scope {
        for a in alts {
            for (sigma, event) in &a.fieldmappings {
                if sigma == field && !names.contains(&event.as_str()) {
                    names.push(event);
                }
            }
        }
    }
    names
}

/// One field scanned for the needles of many rules.
#[derive(Debug)]
struct FieldScan {
    /// Event field name; `""` scans every value (keyword searches).
    field: String,
    /// For a plain name (not keywords, no dots): the name as views compare
    /// it ([`name_key`]), so that callers listing an event's fields
    /// ([`EventView::each_named`]) can find the scan.
    plain: Option<String>,
    /// The literals, in automata of consecutive patterns: (automaton,
    /// index of its first pattern). Empty when there are none.
    ac: Vec<(AhoCorasick, usize, Option<aho_corasick::packed::Searcher>)>,
    /// Per automaton pattern, the rules (set positions) it selects.
    text_rules: Vec<Vec<u32>>,
    /// Integers and the rules they select.
    ints: HashMap<i64, Vec<u32>>,
    /// Keyword scans: the literals JSON-escaped, to rule an event out from
    /// its lowercased raw text ([`EventView::raw_text`]).
    raw: Vec<(AhoCorasick, usize, Option<aho_corasick::packed::Searcher>)>,
}

/// `lit` as JSON writes it inside a string, with the escapes
/// [`EventView::raw_text`] allows.
fn json_escaped(lit: &str) -> String {
    let mut out = String::with_capacity(lit.len() + 8);
    for c in lit.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            // Other controls are \u-escaped, which a raw text never has:
            // such a literal occurs neither in it nor in its values.
            c => out.push(c),
        }
    }
    out
}

/// Needle pre-selection for one group of rules.
#[derive(Debug, Default)]
pub(crate) struct Prefilter {
    /// Rules without a usable needle set: always evaluated.
    always: Vec<u32>,
    fields: Vec<FieldScan>,
}

/// `name` lowercased (ASCII) without spaces, as views compare names.
fn name_key(name: &str) -> String {
    let mut k = String::new();
    name_key_into(&mut k, name);
    k
}

/// [`name_key`] into a reused buffer.
pub(crate) fn name_key_into(key: &mut String, name: &str) {
    key.clear();
    key.push_str(name);
    key.make_ascii_lowercase();
    if key.contains(' ') {
        key.retain(|c| c != ' ');
    }
}

fn push_once(v: &mut Vec<u32>, i: u32) {
    if v.last() != Some(&i) {
        v.push(i);
    }
}

impl Prefilter {
    /// Builds the pre-selection for the rules at `positions` of `rules`.
    pub(crate) fn build<R: AsRef<CompiledRule>>(rules: &[R], positions: &[usize]) -> Prefilter {
        #[derive(Default)]
        struct Acc<'r> {
            lits: BTreeMap<&'r str, Vec<u32>>,
            ints: HashMap<i64, Vec<u32>>,
        }
        let mut always = Vec::new();
        let mut by_field: BTreeMap<&str, Acc<'_>> = BTreeMap::new();
        for &i in positions {
            let rule = rules[i].as_ref();
            let Some(needles) = rule_needles(rule) else {
                always.push(i as u32);
                continue;
            };
            for (field, needle) in needles {
                for name in event_names(rule, field) {
                    let acc = by_field.entry(name).or_default();
                    match needle {
                        Needle::Text(l) => push_once(acc.lits.entry(l).or_default(), i as u32),
                        Needle::Int(n) => push_once(acc.ints.entry(n).or_default(), i as u32),
                    }
                }
            }
        }
        let mut fields = Vec::with_capacity(by_field.len());
        for (field, acc) in by_field {
            let (pats, text_rules): (Vec<&str>, Vec<Vec<u32>>) = acc.lits.into_iter().unzip();
            let ac = match build_automata(&pats) {
                Some(ac) => ac,
                // Too large an automaton: evaluate these rules always.
                None => {
                    always.extend(text_rules.iter().flatten());
                    Vec::new()
                }
            };
            let raw = if field.is_empty() && !ac.is_empty() {
                let escaped: Vec<String> = pats.iter().map(|p| json_escaped(p)).collect();
                let escaped: Vec<&str> = escaped.iter().map(String::as_str).collect();
                build_automata(&escaped).unwrap_or_default()
            } else {
                Vec::new()
            };
            fields.push(FieldScan {
                field: field.to_string(),
                plain: (!field.is_empty() && !field.contains('.')).then(|| name_key(field)),
                text_rules: if ac.is_empty() {
                    Vec::new()
                } else {
                    text_rules
                },
                ac,
                ints: acc.ints,
                raw,
            });
        }
        always.sort_unstable();
        always.dedup();
        Prefilter { always, fields }
    }

    /// Marks the rules of this group that `view` may match.
    #[cfg(test)]
    pub(crate) fn select(&self, view: &dyn EventView, marks: &mut Marks) {
        let mut key = String::new();
        let mut cache = ValueCache::default();
        let listed = view.each_named(&mut |name, v| {
            name_key_into(&mut key, name);
            cache.reset();
            for (k, i) in self.named() {
                if k == key {
                    self.scan_field_cached(i, v, &mut cache, marks);
                }
            }
        });
        self.select_rest(view, marks, listed);
    }

    /// The scans of plain field names, with the name as views compare it
    /// (see [`name_key_into`]), for callers that list an event's fields
    /// once for several groups.
    pub(crate) fn named(&self) -> impl Iterator<Item = (&str, usize)> {
        self.fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| Some((f.plain.as_deref()?, i)))
    }

    /// Scans value `v` with scan `scan` (from [`Prefilter::named`]); the
    /// value's lowercase text and integer are computed once in `cache` for
    /// all the scans of one value.
    pub(crate) fn scan_field_cached(
        &self,
        scan: usize,
        v: &FieldValue<'_>,
        cache: &mut ValueCache,
        marks: &mut Marks,
    ) {
        self.fields[scan].scan_value(v, cache, marks);
    }

    /// Marks the always-evaluated rules and runs the scans not done by
    /// name: when `listed` (the caller ran the [`Prefilter::named`] scans
    /// over the event's fields), the keyword and dotted-name scans; else
    /// every scan, by lookup.
    pub(crate) fn select_rest(&self, view: &dyn EventView, marks: &mut Marks, listed: bool) {
        for &i in &self.always {
            marks.mark(i);
        }
        // Plain names were scanned by the caller when the view listed them.
        for fs in self.fields.iter().filter(|f| !listed || f.plain.is_none()) {
            if fs.field.is_empty() {
                if let (false, Some(raw)) = (fs.raw.is_empty(), view.raw_text()) {
                    let mut lower = std::mem::take(&mut marks.lower);
                    lower.clear();
                    lower.push_str(raw);
                    lower.make_ascii_lowercase();
                    let any = fs.raw.iter().any(|(ac, _, packed)| match packed {
                        Some(p) => p.find(lower.as_str()).is_some(),
                        None => ac.is_match(lower.as_str()),
                    });
                    marks.lower = lower;
                    // No literal in the raw text: none in any value.
                    if !any {
                        continue;
                    }
                }
                // All values in one search: the per-search setup costs more
                // than the scan of a short value. A literal spanning two
                // values may select a rule in vain, never miss one.
                // Built once per event, shared by the groups' scans.
                let mut all = std::mem::take(&mut marks.all_text);
                if !marks.all_text_ready {
                    all.clear();
                    view.any_text(&mut |t| {
                        push_lower(&mut all, t);
                        all.push('\n');
                        false
                    });
                    marks.all_text_ready = true;
                }
                fs.scan_lower(&all, marks);
                marks.all_text = all;
                continue;
            }
            let mut cache = std::mem::take(&mut marks.value);
            view.any_value(&fs.field, &mut |v| {
                cache.reset();
                fs.scan_value(v, &mut cache, marks);
                false
            });
            marks.value = cache;
        }
    }

    /// Number of distinct needles and of always-evaluated rules.
    pub(crate) fn stats(&self) -> (usize, usize) {
        (
            self.fields
                .iter()
                .map(|f| f.text_rules.len() + f.ints.len())
                .sum(),
            self.always.len(),
        )
    }
}

impl FieldScan {
    /// Scans one value; its lowercase text and integer are computed once
    /// in `cache` (reset per value) for all the scans that read it.
    fn scan_value(&self, v: &FieldValue<'_>, cache: &mut ValueCache, marks: &mut Marks) {
        if !self.ac.is_empty() {
            if !cache.text_ready {
                cache.text.clear();
                cache.has_text = with_text(v, |t| push_lower(&mut cache.text, t)).is_some();
                cache.text_ready = true;
            }
            if cache.has_text {
                self.scan_lower(&cache.text, marks);
            }
        }
        if !self.ints.is_empty() {
            let n = *cache.int.get_or_insert_with(|| int_of(v));
            if let Some(rules) = n.and_then(|n| self.ints.get(&n)) {
                rules.iter().for_each(|&r| marks.mark(r));
            }
        }
    }

    /// Marks the rules of the literals found in `lower` (lowercase text).
    fn scan_lower(&self, lower: &str, marks: &mut Marks) {
        for (ac, base, packed) in &self.ac {
            // Most values hold no literal at all: a plain search says so
            // faster than walking every overlapping match.
            let any = match packed {
                Some(p) => p.find(lower).is_some(),
                None => ac.is_match(lower),
            };
            if !any {
                continue;
            }
            for m in ac.find_overlapping_iter(lower) {
                for &r in &self.text_rules[base + m.pattern().as_usize()] {
                    marks.mark(r);
                }
            }
        }
    }
}

/// Literals per automaton when a field has few: small sets get a SIMD
/// literal prefilter (Teddy) that makes most scans nearly free, which a
/// larger set does not get.
const PACKED_PATTERNS: usize = 64;

/// Up to this many literals, a field's literals are split into automata of
/// [`PACKED_PATTERNS`]; beyond it one automaton scans faster than many.
const MAX_SPLIT_PATTERNS: usize = 4 * PACKED_PATTERNS;

/// The automata for a field's literals (lowercase; the text searched is
/// lowercased), or `None` when they cannot be built.
fn build_automata(
    pats: &[&str],
) -> Option<Vec<(AhoCorasick, usize, Option<aho_corasick::packed::Searcher>)>> {
    let chunk = if pats.len() <= MAX_SPLIT_PATTERNS {
        PACKED_PATTERNS
    } else {
        pats.len()
    };
    let mut out = Vec::new();
    for (i, part) in pats.chunks(chunk.max(1)).enumerate() {
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(part)
            .ok()?;
        let packed = (part.len() <= PACKED_PATTERNS)
            .then(|| {
                aho_corasick::packed::Config::new()
                    .builder()
                    .extend(part)
                    .build()
            })
            .flatten();
        out.push((ac, i * chunk, packed));
    }
    Some(out)
}

/// Appends `text` lowercased. The automata are case-sensitive over
/// lowercase literals: searching lowercased text lets them use their fast
/// literal prefilters, which ASCII case-insensitive automata mostly cannot.
fn push_lower(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // An ASCII run, lowercased in place; then one other character.
        let j = bytes[i..]
            .iter()
            .position(|b| !b.is_ascii())
            .map_or(bytes.len(), |k| i + k);
        let start = out.len();
        out.push_str(&text[i..j]);
        out[start..].make_ascii_lowercase();
        i = j;
        if let Some(c) = text[i..].chars().next() {
            out.extend(c.to_lowercase());
            i += c.len_utf8();
        }
    }
}

/// One field value's lowercase text and integer, computed on first use.
#[derive(Debug, Default)]
pub(crate) struct ValueCache {
    text: String,
    text_ready: bool,
    has_text: bool,
    int: Option<Option<i64>>,
}

impl ValueCache {
    /// Forgets the value, keeping the allocation.
    pub(crate) fn reset(&mut self) {
        self.text_ready = false;
        self.int = None;
    }
}

/// The rules selected for one event: a bit set over set positions and
/// the list of set bits, reused from event to event.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    bits: Vec<u64>,
    list: Vec<u32>,
    /// Scratch for lowercased values.
    lower: String,
    /// Scratch for field name keys.
    pub(crate) key: String,
    /// Scratch for one value's lowercase text.
    pub(crate) value: ValueCache,
    /// Every value of the event, lowercased, for keyword scans.
    all_text: String,
    /// Whether `all_text` holds the current event's text.
    all_text_ready: bool,
}

impl Marks {
    fn mark(&mut self, i: u32) {
        let (w, b) = ((i / 64) as usize, 1u64 << (i % 64));
        if w >= self.bits.len() {
            self.bits.resize(w + 1, 0);
        }
        if self.bits[w] & b == 0 {
            self.bits[w] |= b;
            self.list.push(i);
        }
    }

    /// The marked positions in ascending order.
    pub(crate) fn sorted(&mut self) -> &[u32] {
        self.list.sort_unstable();
        &self.list
    }

    /// Unmarks everything, keeping the allocations.
    pub(crate) fn clear(&mut self) {
        for &i in &self.list {
            self.bits[(i / 64) as usize] = 0;
        }
        self.list.clear();
        self.all_text_ready = false;
    }
}

thread_local! {
    static MARKS: Cell<Marks> = Cell::new(Marks::default());
}

/// Runs `f` with this thread's reusable [`Marks`] (cleared).
pub(crate) fn with_marks<T>(f: impl FnOnce(&mut Marks) -> T) -> T {
    let mut marks = MARKS.with(Cell::take);
    let out = f(&mut marks);
    marks.clear();
    MARKS.with(|c| c.set(marks));
    out
}

/// Summary of a rule set's pre-selection, for diagnostics and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrefilterStats {
    /// Distinct literals in all automata.
    pub literals: usize,
    /// Rules evaluated on every event of their group (no literal set).
    pub always: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::parse_rule_str;
    use crate::value::Placeholders;
    use crate::views::JsonView;
    use serde_json::json;

    fn compile(detection: &str) -> CompiledRule {
        let src = format!("title: t\nlogsource:\n    product: x\ndetection:\n{detection}");
        let rule = parse_rule_str(&src, "t.yml").unwrap();
        CompiledRule::compile(&rule, &Placeholders::default()).unwrap()
    }

    fn needles(detection: &str) -> Option<Vec<(String, String)>> {
        let r = compile(detection);
        rule_needles(&r).map(|n| {
            n.into_iter()
                .map(|(f, x)| {
                    let x = match x {
                        Needle::Text(l) => l.to_string(),
                        Needle::Int(i) => format!("#{i}"),
                    };
                    (f.to_string(), x)
                })
                .collect()
        })
    }

    fn pairs(p: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            p.iter()
                .map(|(f, l)| (f.to_string(), l.to_string()))
                .collect(),
        )
    }

    #[test]
    fn and_takes_the_most_selective_item_or_takes_all() {
        let d = "    sel:\n        Image|endswith: '\\WHOAMI.exe'\n        User|contains: ad\n    condition: sel\n";
        assert_eq!(needles(d), pairs(&[("Image", "\\whoami.exe")]));
        let d = "    a:\n        Image|endswith:\n            - '\\net.exe'\n            - '\\net1.exe'\n    b:\n        CommandLine|contains: 'user /add'\n    condition: a or b\n";
        assert_eq!(
            needles(d),
            pairs(&[
                ("Image", "\\net.exe"),
                ("Image", "\\net1.exe"),
                ("CommandLine", "user /add")
            ])
        );
        // `all`: any one value is required; wildcards keep their longest literal.
        let d = "    sel:\n        CommandLine|contains|all:\n            - 'abc'\n            - 'longer one'\n        Image: 'C:\\*\\pwsh?.exe'\n    condition: sel\n";
        assert_eq!(needles(d), pairs(&[("CommandLine", "longer one")]));
    }

    #[test]
    fn no_needles_for_negations_regexes_and_wildcards() {
        for d in [
            "    sel:\n        Image|endswith: '.exe'\n    condition: not sel\n",
            "    sel:\n        EventID: 1.5\n    condition: sel\n",
            "    sel:\n        Enabled: true\n    condition: sel\n",
            "    sel:\n        CommandLine|re: 'a.*b'\n    condition: sel\n",
            "    sel:\n        Image|endswith: '.exe'\n    sel2:\n        - x: '*'\n    condition: sel or sel2\n",
            "    sel:\n        Image: null\n    condition: sel\n",
            "    sel:\n        Image|neq: 'abc'\n    condition: sel\n",
            "    sel:\n        Image|endswith: 'ab'\n    condition: sel\n",
        ] {
            assert_eq!(needles(d), None, "{d}");
        }
        // A negated part does not spoil the positive one beside it.
        let d = "    sel:\n        Image|endswith: '\\cmd.exe'\n    f:\n        User: SYSTEM\n    condition: sel and not f\n";
        assert_eq!(needles(d), pairs(&[("Image", "\\cmd.exe")]));
        // Integers and keywords are needles too.
        let d = "    sel:\n        EventID:\n            - 4624\n            - 4625\n    condition: sel\n";
        assert_eq!(
            needles(d),
            pairs(&[("EventID", "#4624"), ("EventID", "#4625")])
        );
        let d = "    kw:\n        - 'sekurlsa::'\n        - 1234\n    condition: kw\n";
        assert_eq!(needles(d), pairs(&[("", "sekurlsa::"), ("", "1234")]));
    }

    #[test]
    fn selection_finds_rules_by_needle() {
        let rules = vec![
            compile("    sel:\n        Image|endswith: '\\whoami.exe'\n    condition: sel\n"),
            compile("    sel:\n        CommandLine|contains: 'Ärger'\n    condition: sel\n"),
            compile("    sel:\n        Image: '*'\n    condition: sel\n"),
            compile("    sel:\n        EventID: 4688\n    condition: sel\n"),
            compile("    kw:\n        - 'mimikatz'\n    condition: kw\n"),
        ];
        let p = Prefilter::build(&rules, &[0, 1, 2, 3, 4]);
        assert_eq!(p.stats(), (4, 1));
        let sel = |ev: serde_json::Value| {
            with_marks(|m| {
                p.select(&JsonView(&ev), m);
                m.sorted().to_vec()
            })
        };
        assert_eq!(
            sel(json!({"Image": "C:\\X\\WHOAMI.EXE", "CommandLine": "ÄRGER"})),
            [0, 1, 2]
        );
        assert_eq!(sel(json!({"Image": "C:\\X\\cmd.exe"})), [2]);
        assert_eq!(sel(json!({"Image": ["a", "b\\whoami.exe"]})), [0, 2]);
        // Integers as numbers, numeric text, or integral floats.
        for id in [
            json!(4688),
            json!("4688"),
            json!(" 4688 "),
            json!(4688.0),
            json!("0x1250"),
        ] {
            assert_eq!(sel(json!({"EventID": id})), [2, 3], "{id}");
        }
        assert_eq!(sel(json!({"EventID": "14688"})), [2]);
        // Keywords through a flat event's raw text: escapes and case.
        let kw = vec![compile(
            "    kw:\n        - '\\MimiLib.dll'\n        - 'say \"hi\"'\n    condition: kw\n",
        )];
        let p = Prefilter::build(&kw, &[0]);
        let flat = |line: &str| {
            let fe = crate::flat::FlatEvent::parse(line.as_bytes()).unwrap();
            with_marks(|m| {
                p.select(&fe, m);
                m.sorted().to_vec()
            })
        };
        assert_eq!(flat(r#"{"EventID":1,"x":"C:\\X\\MIMILIB.DLL"}"#), [0]);
        assert_eq!(flat(r#"{"EventID":1,"x":"he said: SAY \"Hi\"!"}"#), [0]);
        assert!(flat(r#"{"EventID":1,"x":"C:\\X\\mimilib.exe"}"#).is_empty());
        // Irregular lines (\u, floats, uppercase non-ASCII) use the values.
        assert_eq!(flat(r#"{"EventID":1,"x":"\u005cmimilib.dll"}"#), [0]);
        assert_eq!(flat(r#"{"EventID":1.5,"x":"\\mimilib.dll"}"#), [0]);
        assert_eq!(flat(r#"{"EventID":1,"É":"\\MIMILIB.DLL"}"#), [0]);
        assert_eq!(sel(json!({"x": {"y": "ran MimiKatz.exe"}})), [2, 4]);
    }
}
