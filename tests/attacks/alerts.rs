//! Attacks: alerts.
