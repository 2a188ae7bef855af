//! Attacks: secrets.
