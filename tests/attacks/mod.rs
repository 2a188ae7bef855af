//! The attack corpus: each case plays an attacker or a tired operator against the real
//! binary and asserts both sides — what must happen (the payload arrives as the exact bytes,
//! the legitimate request succeeds) and what must not (no file created, no secret found, a
//! 4xx). docs/security.md is the threat model these cases defend.

mod alerts;
mod identity;
mod paths;
mod secrets;
mod shell;
mod skips;
mod store;
mod terminal;
mod uncertain;
mod web;
