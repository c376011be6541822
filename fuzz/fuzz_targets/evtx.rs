//! EVTX input as `vigil hunt` reads it: `vigil_parse::evtx` (the `evtx`
//! crate's chunks, walked with bounds) over hostile bytes, then everything
//! Vigil does with each record: the Windows field view used by Sigma rules
//! and the built-in detectors' extraction.
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
    let Ok(mut parser) = evtx::EvtxParser::from_buffer(data.to_vec()) else {
        return;
    };
    let cfg = vigil_detect::Config::default();
    vigil_parse::evtx::for_each_record(&mut parser, &mut |rec| {
        let Ok(v) = rec else { return };
        let view = FlatWindowsView::new(&v);
        for f in FIELDS {
            view.has_field(f);
            view.any_value(f, &mut |_| false);
        }
        view.any_text(&mut |_| false);
        if let Some(m) = v.as_object() {
            let _ = vigil_detect::observe(m, 0, &cfg);
        }
    });
});
