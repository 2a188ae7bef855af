//! The delay before each retry.

use std::time::Duration;

use rand::Rng;

use crate::runbook::{Backoff, RetryPolicy};

/// The delay after attempt `attempt` (1-based) failed, or none when no attempt is left.
pub fn next_delay(p: &RetryPolicy, attempt: u32, rng: &mut impl Rng) -> Option<Duration> {
    if attempt >= p.attempts {
        return None;
    }
    let base = match p.backoff {
        Backoff::Fixed => p.delay,
        Backoff::Exponential => {
            let factor = 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
            Duration::from_secs_f64((p.delay.as_secs_f64() * factor).min(p.max_delay.as_secs_f64()))
        }
    }
    .min(p.max_delay.max(p.delay));
    if p.jitter <= 0.0 {
        return Some(base);
    }
    // A fraction `jitter` of the delay is random: [base*(1-j), base].
    let low = base.as_secs_f64() * (1.0 - p.jitter);
    Some(Duration::from_secs_f64(rng.random_range(low..=base.as_secs_f64())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: Backoff, jitter: f64) -> RetryPolicy {
        RetryPolicy { attempts: 5, backoff, delay: Duration::from_secs(1), max_delay: Duration::from_secs(5), jitter }
    }

    #[test]
    fn exponential_doubles_up_to_the_cap() {
        let p = policy(Backoff::Exponential, 0.0);
        let mut rng = rand::rng();
        let d: Vec<u64> = (1..5).map(|a| next_delay(&p, a, &mut rng).unwrap().as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 5]);
        assert_eq!(next_delay(&p, 5, &mut rng), None);
    }

    #[test]
    fn fixed_and_jitter() {
        let mut rng = rand::rng();
        assert_eq!(next_delay(&policy(Backoff::Fixed, 0.0), 3, &mut rng), Some(Duration::from_secs(1)));
        for _ in 0..100 {
            let d = next_delay(&policy(Backoff::Exponential, 0.5), 3, &mut rng).unwrap();
            assert!(d >= Duration::from_secs(2) && d <= Duration::from_secs(4), "{d:?}");
        }
    }
}
