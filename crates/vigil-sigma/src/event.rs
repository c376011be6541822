//! The event interface the engine evaluates against.

use std::borrow::Cow;

/// One value found at a field.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    /// A string.
    Str(Cow<'a, str>),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// JSON null (a present but empty field).
    Null,
}

/// Read access to an event, by Sigma field name.
pub trait EventView {
    /// Calls `f` with every value stored at `field` (each element of an
    /// array separately) until `f` returns true; returns whether it did.
    /// A missing field calls `f` never.
    fn any_value(&self, field: &str, f: &mut dyn FnMut(&FieldValue<'_>) -> bool) -> bool;

    /// Whether `field` is present (even if null).
    fn has_field(&self, field: &str) -> bool;

    /// Calls `f` with every string (and number, as text) value anywhere in
    /// the event, for keyword searches, until `f` returns true.
    fn any_text(&self, f: &mut dyn FnMut(&str) -> bool) -> bool;

    /// A text in which the text of every value (as [`EventView::any_text`]
    /// gives it) occurs JSON-escaped — `\\` for a backslash, `\"` for a
    /// quote, `\n`, `\r`, `\t`, `\b`, `\f` for those controls, nothing
    /// else escaped — and whose non-ASCII characters are all lowercase:
    /// e.g. the JSON line of a flat event. Keyword pre-selection may then
    /// search it, lowercased, instead of every value. `None` (the default)
    /// when the view has no such text.
    fn raw_text(&self) -> Option<&str> {
        None
    }

    /// For views that index their fields under plain names (no dotted
    /// paths): calls `f` with each (name, value) pair, every value a
    /// lookup of a name equal to it ignoring ASCII case could return, and
    /// returns true. Views that cannot list their fields return false
    /// without calling `f` (the default).
    fn each_named(&self, f: &mut dyn FnMut(&str, &FieldValue<'_>)) -> bool {
        let _ = f;
        false
    }
}
