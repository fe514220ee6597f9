//! # tidings-example-catalogue
//!
//! The examples' events, defined once in `events.json` (docs/CATALOGUE.md). From it,
//! `cargo run -p tidings-example-catalogue --bin tidings-catalogue-gen` writes
//!
//! - [`generated`] (`src/generated.rs`): a serde type per data type, a constant per event name
//!   and [`generated::decode_data`];
//! - `examples/react-app/src/catalogue.generated.ts`: the `ServerToClient` / `ClientToServer`
//!   event maps, the data interfaces and a validator without dependencies.
//!
//! Both files are committed; this crate's tests fail when they differ from what the catalogue
//! generates (drift), and check that the TypeScript compiles and that its validator and types
//! agree with [`validate`] and the Rust types on generated samples.
//!
//! Validation ([`validate`], [`validate_data`]) reports every missing or wrong-typed field as a
//! [`Problem`]; fields the catalogue does not name are accepted (producers may add fields).

#![forbid(unsafe_code)]

pub mod generate;
#[rustfmt::skip]
pub mod generated;
pub mod samples;
pub mod schema;
pub mod validate;

use std::sync::OnceLock;

pub use generated::*;
pub use schema::{Catalogue, Direction};
pub use validate::{Problem, describe};

/// The catalogue's source.
pub const SOURCE: &str = include_str!("../events.json");

/// The catalogue (parsed once), or why `events.json` is not valid.
pub fn catalogue() -> Result<&'static Catalogue, &'static str> {
    static PARSED: OnceLock<Result<Catalogue, String>> = OnceLock::new();
    PARSED.get_or_init(|| Catalogue::parse(SOURCE)).as_ref().map_err(String::as_str)
}

/// [`Catalogue::validate`] on the catalogue: the problems of event `name`'s payload as it is on
/// the wire (the envelope for enveloped events).
pub fn validate(direction: Direction, name: &str, payload: &serde_json::Value) -> Result<(), Vec<Problem>> {
    catalogue().map_err(broken)?.validate(direction, name, payload)
}

/// [`Catalogue::validate_data`] on the catalogue: the problems of event `name`'s data.
pub fn validate_data(direction: Direction, name: &str, data: &serde_json::Value) -> Result<(), Vec<Problem>> {
    catalogue().map_err(broken)?.validate_data(direction, name, data)
}

/// Whether event `name` going `direction` is in the catalogue.
pub fn is_known(direction: Direction, name: &str) -> bool {
    catalogue().is_ok_and(|c| c.event(direction, name).is_some())
}

fn broken(e: &str) -> Vec<Problem> {
    vec![Problem { path: "$".into(), message: format!("the catalogue does not load: {e}") }]
}
