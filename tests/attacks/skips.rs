//! Attacks: skips.
