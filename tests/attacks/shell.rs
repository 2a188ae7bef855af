//! Attacks: shell.
