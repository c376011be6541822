//! [`EventView`] implementations for the event shapes Vigil evaluates
//! Sigma rules against:
//!
//! * [`JsonView`]: nested JSON (Vigil's ECS events), looked up by exact
//!   key or dotted path (`source.ip`).
//! * [`FlatWindowsView`]: Windows events, either `evtx_dump` JSON
//!   (`{"Event":{"System":{..},"EventData":{..}}}` with `#attributes` /
//!   `#text` nodes) or flat winlogbeat/OTRF JSON (fields at top level),
//!   looked up by the bare Sigma field names (`EventID`, `Channel`,
//!   `Image`, `Provider_Name`), ignoring spaces in the event's field names.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::event::{EventView, FieldValue};

/// Calls `f` with the scalar(s) of `v`: each array element separately,
/// the `#text` of an XML-style node; other objects are not values.
fn emit(v: &Value, f: &mut dyn FnMut(&FieldValue<'_>) -> bool) -> bool {
    match v {
        Value::String(s) => f(&FieldValue::Str(Cow::Borrowed(s))),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                f(&FieldValue::Int(i))
            } else {
                f(&FieldValue::Float(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Value::Bool(b) => f(&FieldValue::Bool(*b)),
        Value::Null => f(&FieldValue::Null),
        Value::Array(items) => items.iter().any(|x| emit(x, f)),
        Value::Object(o) => o.get("#text").is_some_and(|t| emit(t, f)),
    }
}

/// Calls `f` with every string and number (as text) anywhere in `v`.
fn walk_text(v: &Value, f: &mut dyn FnMut(&str) -> bool) -> bool {
    match v {
        Value::String(s) => f(s),
        Value::Number(n) => {
            let t = n.to_string();
            f(&t)
        }
        Value::Array(items) => items.iter().any(|x| walk_text(x, f)),
        Value::Object(o) => o.values().any(|x| walk_text(x, f)),
        _ => false,
    }
}

/// Visits every value found at `path` below `v`: an exact key first, then
/// every split of the path at a dot (`a.b.c` → `a` / `b.c`, `a.b` / `c`),
/// descending through arrays.
fn lookup<'v>(v: &'v Value, path: &str, f: &mut dyn FnMut(&'v Value) -> bool) -> bool {
    match v {
        Value::Object(o) => lookup_map(o, path, f),
        Value::Array(items) => items.iter().any(|x| lookup(x, path, f)),
        _ => false,
    }
}

/// [`lookup`] below an object.
fn lookup_map<'v>(
    o: &'v Map<String, Value>,
    path: &str,
    f: &mut dyn FnMut(&'v Value) -> bool,
) -> bool {
    if let Some(x) = o.get(path) {
        if f(x) {
            return true;
        }
    }
    path.match_indices('.').any(|(i, _)| {
        o.get(&path[..i])
            .is_some_and(|x| lookup(x, &path[i + 1..], f))
    })
}

/// A nested JSON event (Vigil's ECS events). A field is looked up by its
/// exact key first, then as a dotted path (`source.ip` → `{"source":
/// {"ip": ..}}`); arrays yield each element.
#[derive(Debug, Clone, Copy)]
pub struct JsonView<'a>(pub &'a Value);

impl EventView for JsonView<'_> {
    fn any_value(&self, field: &str, f: &mut dyn FnMut(&FieldValue<'_>) -> bool) -> bool {
        lookup(self.0, field, &mut |v| emit(v, f))
    }

    fn has_field(&self, field: &str) -> bool {
        lookup(self.0, field, &mut |_| true)
    }

    fn any_text(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        walk_text(self.0, f)
    }
}

/// [`JsonView`] over an object's map, e.g. a Vigil `Event`'s fields
/// (`Event::as_map`), so that evaluating needs no `Value` built from it.
#[derive(Debug, Clone, Copy)]
pub struct JsonMapView<'a>(pub &'a Map<String, Value>);

impl EventView for JsonMapView<'_> {
    fn any_value(&self, field: &str, f: &mut dyn FnMut(&FieldValue<'_>) -> bool) -> bool {
        lookup_map(self.0, field, &mut |v| emit(v, f))
    }

    fn has_field(&self, field: &str) -> bool {
        lookup_map(self.0, field, &mut |_| true)
    }

    fn any_text(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.0.values().any(|x| walk_text(x, f))
    }
}

/// A Windows event in `evtx_dump` layout or flat winlogbeat/OTRF layout,
/// with a name → value index built once by [`FlatWindowsView::new`].
///
/// Lookup order for a bare name: `EventData` / `UserData` fields, then
/// `System` fields (`EventID`, `Channel`, `Computer`, and attributes as
/// `Tag_Attribute`: `Provider_Name`, `Execution_ProcessID`,
/// `TimeCreated_SystemTime`), then top-level fields, then a dotted-path
/// lookup on the whole event. Names are compared with spaces removed
/// (`Threat Name` is found as `ThreatName`), exactly first, then ASCII
/// case-insensitively.
#[derive(Debug, Clone)]
pub struct FlatWindowsView<'a> {
    /// The whole event (`None` when it is not an object), for the dotted-path fallback.
    root: Option<&'a Map<String, Value>>,
    /// (name without spaces, value), in lookup priority order.
    index: Vec<(Cow<'a, str>, &'a Value)>,
}

/// `s` without spaces (Windows field names are compared so).
pub(crate) fn strip_spaces(s: &str) -> Cow<'_, str> {
    if s.contains(' ') {
        Cow::Owned(s.chars().filter(|c| *c != ' ').collect())
    } else {
        Cow::Borrowed(s)
    }
}

impl<'a> FlatWindowsView<'a> {
    /// Indexes the event's fields.
    pub fn new(root: &'a Value) -> FlatWindowsView<'a> {
        match root {
            Value::Object(o) => FlatWindowsView::from_map(o),
            _ => FlatWindowsView {
                root: None,
                index: Vec::new(),
            },
        }
    }

    /// Indexes the fields of an event given as its map.
    pub fn from_map(root: &'a Map<String, Value>) -> FlatWindowsView<'a> {
        let mut index = Vec::new();
        let event = root.get("Event").filter(|e| e.is_object());
        let winlog = root.get("winlog").filter(|e| e.is_object());
        if let Some(ev) = event {
            for part in ["EventData", "UserData"] {
                if let Some(Value::Object(o)) = ev.get(part) {
                    add_data(&mut index, o, 0);
                }
            }
            if let Some(Value::Object(sys)) = ev.get("System") {
                add_system(&mut index, sys);
            }
        }
        if let Some(wl) = winlog {
            for part in ["event_data", "user_data"] {
                if let Some(Value::Object(o)) = wl.get(part) {
                    add_data(&mut index, o, 0);
                }
            }
            for (k, name) in [
                ("event_id", "EventID"),
                ("channel", "Channel"),
                ("provider_name", "Provider_Name"),
                ("computer_name", "Computer"),
                ("record_id", "EventRecordID"),
            ] {
                if let Some(v) = wl.get(k) {
                    index.push((Cow::Borrowed(name), v));
                }
            }
        }
        for (k, v) in root {
            if k == "Event" && event.is_some() {
                continue;
            }
            match v {
                Value::Object(o) if k == "EventData" || k == "UserData" => {
                    add_data(&mut index, o, 0)
                }
                Value::Object(o) if k == "System" => add_system(&mut index, o),
                _ => index.push((strip_spaces(k), v)),
            }
        }
        FlatWindowsView {
            root: Some(root),
            index,
        }
    }

    /// The values indexed under `field` (first match in priority order).
    fn find(&self, field: &str) -> Option<&'a Value> {
        let name = strip_spaces(field);
        let name = name.as_ref();
        self.index
            .iter()
            .find(|(k, _)| k == name)
            .or_else(|| {
                self.index
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| *v)
    }
}

/// Indexes `EventData` / `UserData` children: `Data` arrays of
/// `{"#attributes":{"Name":..},"#text":..}` nodes by their `Name`, XML
/// text nodes by their `#text`, nested elements (UserData's one wrapper
/// element) recursively.
fn add_data<'a>(
    index: &mut Vec<(Cow<'a, str>, &'a Value)>,
    o: &'a Map<String, Value>,
    depth: usize,
) {
    for (k, v) in o {
        if k == "#attributes" {
            continue;
        }
        match v {
            Value::Array(items) if k == "Data" && items.iter().any(named_data) => {
                for item in items {
                    if let Some(name) = item.pointer("/#attributes/Name").and_then(Value::as_str) {
                        index.push((
                            strip_spaces(name),
                            item.get("#text").unwrap_or(&Value::Null),
                        ));
                    }
                }
            }
            Value::Object(child) if named_data(v) && k == "Data" => {
                if let Some(name) = v.pointer("/#attributes/Name").and_then(Value::as_str) {
                    index.push((
                        strip_spaces(name),
                        child.get("#text").unwrap_or(&Value::Null),
                    ));
                }
            }
            Value::Object(child) if child.contains_key("#text") => {
                index.push((strip_spaces(k), &child["#text"]));
            }
            Value::Object(child) if depth < 4 => add_data(index, child, depth + 1),
            _ => index.push((strip_spaces(k), v)),
        }
    }
}

fn named_data(v: &Value) -> bool {
    v.pointer("/#attributes/Name").is_some()
}

/// Indexes `System` children: plain values by name, `#text` nodes by
/// name, attributes as `Tag_Attribute`.
fn add_system<'a>(index: &mut Vec<(Cow<'a, str>, &'a Value)>, sys: &'a Map<String, Value>) {
    for (k, v) in sys {
        match v {
            Value::Object(node) => {
                if let Some(t) = node.get("#text") {
                    index.push((Cow::Borrowed(k.as_str()), t));
                }
                if let Some(Value::Object(attrs)) = node.get("#attributes") {
                    for (a, av) in attrs {
                        index.push((Cow::Owned(format!("{k}_{a}")), av));
                    }
                    // Convenience: `TimeCreated` → its SystemTime.
                    if k == "TimeCreated" {
                        if let Some(t) = attrs.get("SystemTime") {
                            index.push((Cow::Borrowed("TimeCreated"), t));
                        }
                    }
                }
            }
            _ => index.push((Cow::Borrowed(k.as_str()), v)),
        }
    }
}

impl EventView for FlatWindowsView<'_> {
    fn any_value(&self, field: &str, f: &mut dyn FnMut(&FieldValue<'_>) -> bool) -> bool {
        match self.find(field) {
            Some(v) => emit(v, f),
            None => self
                .root
                .is_some_and(|r| lookup_map(r, field, &mut |v| emit(v, f))),
        }
    }

    fn has_field(&self, field: &str) -> bool {
        self.find(field).is_some()
            || self
                .root
                .is_some_and(|r| lookup_map(r, field, &mut |_| true))
    }

    fn any_text(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.index.iter().any(|(_, v)| walk_text(v, f))
    }

    fn each_named(&self, f: &mut dyn FnMut(&str, &FieldValue<'_>)) -> bool {
        for (k, v) in &self.index {
            emit(v, &mut |x| {
                f(k, x);
                false
            });
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{FieldMatcher, Placeholders};

    /// `evtx_dump` Sysmon event 7 (SigmaHQ regression data).
    const SYSMON: &str = r##"{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon","Guid":"5770385F-C22A-43E0-BF4C-06F5698FFBD9"}},"EventID":7,"Version":3,"Level":4,"Task":7,"Opcode":0,"Keywords":"0x8000000000000000","TimeCreated":{"#attributes":{"SystemTime":"2025-11-27T07:40:10.165324Z"}},"EventRecordID":571146,"Correlation":null,"Execution":{"#attributes":{"ProcessID":3544,"ThreadID":4272}},"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"swachchhanda","Security":{"#attributes":{"UserID":"S-1-5-18"}}},"EventData":{"RuleName":"-","UtcTime":"2025-11-27 07:40:10.132","ProcessGuid":"0197231E-005A-6928-A50B-000000000D00","ProcessId":4460,"Image":"C:\\Windows\\System32\\WerFaultSecure.exe","ImageLoaded":"C:\\Windows\\System32\\dbgcore.dll","FileVersion":"10.0.26100.7019 (WinBuild.160101.0800)","Description":"Windows Core Debugging Helpers","Product":"Microsoft® Windows® Operating System","Company":"Microsoft Corporation","OriginalFileName":"DBGCORE.DLL","Hashes":"SHA1=5E4F2C531C549BB72A658ED9DD16D491EDDBB286,MD5=FAB4B30C1C4F0A9202A7B42DCF1729DC,SHA256=1B48A4F8D20026E6C56E3AB4CC4788FA6425C8A75F8D91C2869FA533DE6B209E,IMPHASH=C324AAAC01F0F75C811E1F80C41B860C","Signed":"true","Signature":"Microsoft Windows","SignatureStatus":"Valid","User":"swachchhanda\\xodih"}}}"##;
    /// `evtx_dump` WMI-Activity event with UserData (SigmaHQ regression data).
    const WMI: &str = r##"{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-WMI-Activity","Guid":"1418EF04-B0B4-4623-BF7E-D74AB47BBDAA"}},"EventID":5858,"Version":0,"Level":2,"Task":0,"Opcode":0,"Keywords":"0x4000000000000000","TimeCreated":{"#attributes":{"SystemTime":"2026-07-02T02:05:27.438557Z"}},"EventRecordID":5314,"Correlation":{"#attributes":{"ActivityID":"8E521E2B-7C26-0001-417F-9C8E267CDB01"}},"Execution":{"#attributes":{"ProcessID":3092,"ThreadID":22616}},"Channel":"Microsoft-Windows-WMI-Activity/Operational","Computer":"swachchhanda","Security":{"#attributes":{"UserID":"S-1-5-18"}}},"UserData":{"Operation_ClientFailure":{"#attributes":{"xmlns":"http://manifests.microsoft.com/win/2006/windows/WMI"},"Id":"{00000000-0000-0000-0000-000000000000}","ClientMachine":"SWACHCHHANDA","User":"swachchhanda\\xodih","ClientProcessId":25920,"Component":"Unknown","Operation":"Start IWbemServices::ExecMethod - ROOT\\CIMV2 : \\\\SWACHCHHANDA\\ROOT\\CIMV2:Win32_NTEventlogFile.Name=\"C:\\\\WINDOWS\\\\System32\\\\Winevt\\\\Logs\\\\System.evtx\"::cleareventlog","ResultCode":"0x80041003","PossibleCause":"Unknown"}}}}"##;
    /// Flat OTRF Security 4688 event (Mordor dataset; Message shortened).
    const FLAT: &str = r##"{"@timestamp":"2020-10-23T02:36:43.542Z","TimeCreated":"2020-10-23T02:36:43.542Z","CommandLine":"bitsadmin.exe  /transfer /Download /priority Foreground https://raw.githubusercontent.com/redcanaryco/atomic-red-team/master/atomics/T1197/T1197.md C:\\Users\\wardog\\AppData\\Local\\Temp\\bitsadmin1_flag.ps1","SubjectLogonId":"0xc61d9","NewProcessId":"0x242c","SubjectDomainName":"WORKSTATION5","ProviderGuid":"{54849625-5478-4994-a5ba-3e3b0328c30d}","TargetLogonId":"0x0","TokenElevationType":"%%1936","SubjectUserSid":"S-1-5-21-3940915590-64593676-1414006259-500","NewProcessName":"C:\\Windows\\System32\\bitsadmin.exe","Level":"0","Channel":"Security","Task":"13312","SourceName":"Microsoft-Windows-Security-Auditing","Hostname":"WORKSTATION5","TargetDomainName":"-","ProcessId":"0x273c","TargetUserName":"-","ParentProcessName":"C:\\Windows\\System32\\cmd.exe","TargetUserSid":"S-1-0-0","EventID":4688,"Keywords":"0x8020000000000000","SubjectUserName":"wardog","MandatoryLabel":"S-1-16-12288","Message":"A new process has been created.\r\n\r\nCreator Subject:\r\n\tSecuri"}"##;

    fn j(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    fn hit(view: &dyn EventView, key: &str, yaml: &str) -> bool {
        let v: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        FieldMatcher::compile(key, &v, &Placeholders::default())
            .unwrap()
            .matches(view)
    }

    fn first_str(view: &dyn EventView, field: &str) -> Option<String> {
        let mut out = None;
        view.any_value(field, &mut |v| {
            out = Some(match v {
                FieldValue::Str(s) => s.to_string(),
                FieldValue::Int(i) => i.to_string(),
                other => format!("{other:?}"),
            });
            true
        });
        out
    }

    #[test]
    fn evtx_dump_sysmon() {
        let ev = j(SYSMON);
        let v = FlatWindowsView::new(&ev);
        assert!(hit(&v, "EventID", "7"));
        assert!(hit(&v, "EventID", "'7'"));
        assert!(hit(&v, "Channel", "'Microsoft-Windows-Sysmon/Operational'"));
        assert!(hit(&v, "Provider_Name", "'Microsoft-Windows-Sysmon'"));
        assert!(hit(&v, "Image|endswith", r"'\WerFaultSecure.exe'"));
        assert!(hit(
            &v,
            "ImageLoaded|endswith",
            r"['\dbgcore.dll', '\dbghelp.dll']"
        ));
        assert!(hit(&v, "Execution_ProcessID", "3544"));
        assert!(hit(&v, "TimeCreated_SystemTime|year", "2025"));
        assert!(hit(&v, "Computer", "swachchhanda"));
        assert!(hit(&v, "Correlation", "null"));
        assert!(hit(&v, "Missing", "null"));
        assert!(!hit(&v, "Image|endswith", r"'\cmd.exe'"));
        assert!(hit(&v, "", "['dbgcore.dll']"));
        assert!(v.has_field("Correlation"));
        assert!(!v.has_field("Nope"));
        // Dotted-path fallback on the raw document.
        assert_eq!(
            first_str(&v, "Event.System.Computer").as_deref(),
            Some("swachchhanda")
        );
    }

    #[test]
    fn evtx_dump_userdata() {
        let ev = j(WMI);
        let v = FlatWindowsView::new(&ev);
        assert!(hit(&v, "EventID", "5858"));
        assert!(hit(
            &v,
            "Operation|contains|all",
            "['Win32_NTEventlogFile', 'cleareventlog']"
        ));
        assert!(hit(&v, "ResultCode", "'0x80041003'"));
        assert!(hit(&v, "ClientProcessId|gt", "25000"));
    }

    #[test]
    fn flat_otrf() {
        // Dataset lines end in CRLF; serde_json accepts the trailing whitespace.
        let line = format!("{FLAT}\r");
        let ev = j(&line);
        let v = FlatWindowsView::new(&ev);
        assert!(hit(&v, "EventID", "4688"));
        assert!(hit(&v, "Channel", "Security"));
        assert!(hit(&v, "NewProcessName|endswith", r"'\bitsadmin.exe'"));
        assert!(hit(&v, "CommandLine|contains|windash", "' -transfer '"));
        assert!(hit(&v, "ProcessId|gt", "0x100"));
        assert_eq!(first_str(&v, "SubjectUserName").as_deref(), Some("wardog"));
        // JsonView reads the same flat document by exact key.
        let jv = JsonView(&ev);
        assert!(hit(&jv, "EventID", "4688"));
        assert!(hit(&jv, "@timestamp|hour", "2"));
    }

    #[test]
    fn text_nodes_spaces_and_data_arrays() {
        let ev = serde_json::json!({"Event": {
            "System": {
                "EventID": {"#text": "1116", "#attributes": {"Qualifiers": "0"}},
                "Channel": "Microsoft-Windows-Windows Defender/Operational",
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Windows Defender"}}
            },
            "EventData": {
                "Threat Name": "Trojan:Win32/Mimikatz",
                "Data": [{"#attributes": {"Name": "Path"}, "#text": "C:\\x.exe"}]
            }
        }});
        let v = FlatWindowsView::new(&ev);
        assert!(hit(&v, "EventID", "1116"));
        assert!(hit(&v, "EventID_Qualifiers", "0"));
        assert!(hit(&v, "ThreatName|contains", "'mimikatz'"));
        assert!(hit(&v, "Threat Name|contains", "'mimikatz'"));
        assert!(hit(&v, "Path|endswith", "'x.exe'"));
        assert!(hit(&v, "Provider_Name|contains", "'Defender'"));
        // EventData is looked up before System.
        let ev =
            serde_json::json!({"Event": {"System": {"Level": 4}, "EventData": {"Level": "high"}}});
        assert!(hit(&FlatWindowsView::new(&ev), "Level", "high"));
    }

    #[test]
    fn winlogbeat_nested() {
        let ev = serde_json::json!({"winlog": {"event_id": 4688, "channel": "Security",
            "provider_name": "Microsoft-Windows-Security-Auditing",
            "event_data": {"CommandLine": "whoami /all"}}});
        let v = FlatWindowsView::new(&ev);
        assert!(hit(&v, "EventID", "4688"));
        assert!(hit(&v, "CommandLine|contains", "'whoami'"));
        assert!(hit(
            &v,
            "Provider_Name",
            "'Microsoft-Windows-Security-Auditing'"
        ));
    }

    #[test]
    fn json_view_paths() {
        let ev = serde_json::json!({
            "source": {"ip": "10.1.2.3"},
            "host.name": "web1",
            "process": {"args": ["a", "-enc"], "parent": {"name": "cmd.exe"}},
            "dns": {"answers": [{"data": "1.2.3.4"}, {"data": "5.6.7.8"}]},
            "user": {"name": null}
        });
        let v = JsonView(&ev);
        assert!(hit(&v, "source.ip|cidr", "'10.0.0.0/8'"));
        assert!(hit(&v, "host.name", "WEB1"));
        assert!(hit(&v, "process.args", "'-enc'"));
        assert!(hit(&v, "process.parent.name", "'cmd.exe'"));
        assert!(hit(&v, "dns.answers.data", "'5.6.7.8'"));
        assert!(hit(&v, "user.name", "null"));
        assert!(v.has_field("user.name"));
        assert!(v.has_field("process.parent"));
        assert!(!v.has_field("process.missing"));
        assert!(hit(&v, "", "'web1'"));
        assert!(!hit(&v, "", "'nothing-here'"));
    }
}
