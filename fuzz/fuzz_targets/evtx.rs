//! EVTX input as `vigil hunt` reads it: the `evtx` crate's parser over
//! hostile bytes, then everything Vigil does with each record: the Windows
//! field view used by Sigma rules and the built-in detectors' extraction.
//! A record count cap keeps one input from running for long.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_sigma::event::EventView;
use vigil_sigma::views::FlatWindowsView;

const FIELDS: [&str; 8] = [
    "EventID",
    "Channel",
    "Computer",
    "Provider_Name",
    "TargetUserName",
    "IpAddress",
    "CommandLine",
    "Image",
];

fuzz_target!(|data: &[u8]| {
    let settings = evtx::ParserSettings::default().num_threads(1);
    let Ok(parser) = evtx::EvtxParser::from_buffer(data.to_vec()) else {
        return;
    };
    let mut parser = parser.with_configuration(settings);
    let cfg = vigil_detect::Config::default();
    for rec in parser.records_json_value().take(256) {
        let Ok(rec) = rec else { continue };
        let view = FlatWindowsView::new(&rec.data);
        for f in FIELDS {
            view.has_field(f);
            view.any_value(f, &mut |_| false);
        }
        view.any_text(&mut |_| false);
        if let Some(m) = rec.data.as_object() {
            let _ = vigil_detect::observe(m, 0, &cfg);
        }
    }
});
