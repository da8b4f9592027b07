//! The reconnect delay every socket of the app uses: doubling, capped, with jitter.

/// Doublings past which the delay is at its cap anyway (and the arithmetic stays small).
const MAX_DOUBLINGS: u32 = 16;

/// The delay before reconnecting after `retry` earlier retries: `first_ms` doubled per
/// retry up to `max_ms`, then scaled into its upper half by `unit_random` (0 to 1), so
/// clients that dropped together do not all return at once.
pub fn delay_ms(retry: u32, first_ms: f64, max_ms: f64, unit_random: f64) -> f64 {
    let doublings = i32::try_from(retry.min(MAX_DOUBLINGS)).unwrap_or(0);
    let exponential = first_ms * 2f64.powi(doublings);
    exponential.min(max_ms) * (0.5 + unit_random.clamp(0.0, 1.0) * 0.5)
}

/// [`delay_ms`] with the browser's randomness.
pub fn jittered_delay_ms(retry: u32, first_ms: f64, max_ms: f64) -> f64 {
    delay_ms(retry, first_ms, max_ms, js_sys::Math::random())
}

#[cfg(test)]
mod tests {
    use super::delay_ms;

    #[test]
    fn the_delay_doubles_up_to_its_cap_and_jitters_in_the_upper_half() {
        assert_eq!(delay_ms(0, 500.0, 10_000.0, 1.0), 500.0);
        assert_eq!(delay_ms(0, 500.0, 10_000.0, 0.0), 250.0);
        assert_eq!(delay_ms(3, 500.0, 10_000.0, 1.0), 4000.0);
        assert_eq!(delay_ms(5, 500.0, 10_000.0, 1.0), 10_000.0);
        assert_eq!(delay_ms(u32::MAX, 500.0, 10_000.0, 0.0), 5000.0);
    }
}
