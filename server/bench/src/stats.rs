//! Latency samples and their percentiles.

use std::time::Duration;

/// Durations in nanoseconds, sorted on demand.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    nanos: Vec<u64>,
    sorted: bool,
}

impl Samples {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            nanos: Vec::with_capacity(n),
            sorted: true,
        }
    }

    pub fn push(&mut self, d: Duration) {
        self.nanos
            .push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.sorted = false;
    }

    pub fn extend(&mut self, other: Samples) {
        self.nanos.extend(other.nanos);
        self.sorted = false;
    }

    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    /// Sorts the samples once, so that percentiles are read without copying.
    pub fn sort(&mut self) {
        if !self.sorted {
            self.nanos.sort_unstable();
            self.sorted = true;
        }
    }

    /// The nearest-rank percentile `p` (0–100); zero when empty.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.nanos.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.nanos.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.nanos.len()) - 1;
        if self.sorted {
            return Duration::from_nanos(self.nanos[i]);
        }
        let mut copy = self.nanos.clone();
        Duration::from_nanos(*copy.select_nth_unstable(i).1)
    }

    pub fn mean(&self) -> Duration {
        if self.nanos.is_empty() {
            return Duration::ZERO;
        }
        let sum: u128 = self.nanos.iter().map(|&n| u128::from(n)).sum();
        Duration::from_nanos(u64::try_from(sum / self.nanos.len() as u128).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut s = Samples::default();
        for n in (1..=100).rev() {
            s.push(Duration::from_micros(n));
        }
        assert_eq!(s.percentile(50.0), Duration::from_micros(50));
        assert_eq!(s.percentile(99.0), Duration::from_micros(99));
        assert_eq!(s.percentile(100.0), Duration::from_micros(100));
        assert_eq!(s.percentile(0.0), Duration::from_micros(1));
        assert_eq!(s.mean(), Duration::from_nanos(50_500));
        assert_eq!(Samples::default().percentile(99.0), Duration::ZERO);
    }
}
