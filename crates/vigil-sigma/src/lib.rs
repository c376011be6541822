//! Sigma detection rules: parse, validate, compile, evaluate.
//!
//! A [`rule::Rule`] is read from Sigma YAML (specification v2.1) and compiled
//! into a [`compile::CompiledRule`]: every detection item becomes a
//! [`value::FieldMatcher`] (field name, modifiers and values resolved once),
//! and the condition becomes a tree over them. Evaluation asks an
//! [`event::EventView`] for field values, so the engine works on any event
//! shape: Vigil's nested ECS events, flat Windows/winlogbeat JSON, or
//! `evtx_dump` output. The crate does not depend on the server.
//!
//! Sigma correlation rules ([`correlation`]) and filters ([`filter`]) are
//! read with the detection rules; the loader resolves their references
//! once every file is read.

pub mod compile;
pub mod condition;
pub mod correlation;
pub mod error;
pub mod event;
pub mod filter;
pub mod flat;
pub mod loader;
pub mod logsource;
pub mod prefilter;
pub mod rule;
pub mod ruleset;
pub mod testcases;
pub mod value;
pub mod views;
