//! Attacks: uncertain.
