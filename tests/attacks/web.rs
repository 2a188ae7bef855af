//! Attacks: web.
