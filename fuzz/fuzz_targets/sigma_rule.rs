//! The Sigma rule loader on arbitrary text: YAML, rule fields, conditions,
//! modifiers, correlations and filters. Refusals must name a line and hold
//! no raw control characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_sigma::loader::{load_source, LoadReport};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut report = LoadReport::default();
    load_source(s, "fuzz.yml", &Default::default(), &mut report);
    report.finish(&Default::default());
    for e in &report.refused {
        let text = e.to_string();
        assert!(
            !text.contains('\n') && !text.contains('\r'),
            "refusal spans lines: {text:?}"
        );
    }
});
