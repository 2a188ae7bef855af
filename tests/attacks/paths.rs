//! Attacks: paths.
