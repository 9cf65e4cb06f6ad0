//! The request body: strict validation, reading the few top-level members the gateway cares
//! about, and rewriting some of them while every other byte stays exactly as the client sent it.
//!
//! The body is never round-tripped through a JSON tree. [`parse`] walks it once (iteratively,
//! in linear time, without allocating unless a value it reads has escapes) and records byte
//! spans; [`rewrite`] turns a [`Plan`] into a handful of span edits and splices them into one
//! exactly-sized output buffer.
//!
//! Layout: `parse.rs` (validation and the [`Parsed`] view), `rewrite.rs` ([`Plan`] to span
//! edits: [`rewrite`], [`rewrite_prefix`]), `scan.rs` (the validator both stand on), `escape.rs`
//! and `number.rs` (JSON string and number helpers). The public API is re-exported here.

mod escape;
mod number;
mod parse;
mod rewrite;
mod scan;

#[cfg(test)]
mod tests;

pub use parse::{parse, BodyError, Parsed, TRACKED_KEYS};
pub use rewrite::{rewrite, rewrite_prefix, Endpoint, Plan, PrefixRewrite, Rewrite};
