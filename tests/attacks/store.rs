//! Attacks: store.
