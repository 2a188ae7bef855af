//! Attacks: terminal.
