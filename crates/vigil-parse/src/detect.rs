//! Format detection: placeholder until the decoders land.
use crate::{Event, ParseOptions};

/// Parses one received message into an event. Never fails.
pub fn parse_line(line: &[u8], _opts: &ParseOptions) -> Event {
    let mut ev = Event::new();
    ev.set("event.original", String::from_utf8_lossy(line).into_owned());
    ev
}

/// Normalizes one JSON object received over a JSON input.
pub fn parse_json(value: serde_json::Value, opts: &ParseOptions) -> Result<Event, vigil_event::EventError> {
    Event::from_json(value, opts.max_json_depth)
}
