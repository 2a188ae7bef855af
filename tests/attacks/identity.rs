//! Attacks: identity.
