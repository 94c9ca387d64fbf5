//! Small statistics for the Envoy rounds: medians, and a distribution-free
//! confidence interval for a median.

/// The median of `values`; NaN when there are none.
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The confidence level of [`median_interval`].
pub(crate) const CONFIDENCE: f64 = 0.95;

/// A summary of per-round ratios: their median, a confidence interval for
/// the median, and the lowest and highest round.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Summary {
    pub(crate) median: f64,
    /// The interval that holds the true median with probability at least
    /// [`CONFIDENCE`]; the whole range of the rounds when there are too few
    /// of them for that.
    pub(crate) low: f64,
    pub(crate) high: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Summary {
    /// The summary of `values`; `None` when there are none.
    pub(crate) fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (low, high) = median_interval(&sorted);
        Some(Summary {
            median: median(sorted.clone()),
            low,
            high,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }

    /// Whether `value` lies inside the confidence interval.
    pub(crate) fn contains(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }
}

/// The order-statistic (sign test) confidence interval for the median of
/// `sorted` (ascending): `[x(k), x(n+1-k)]` with the largest `k` whose
/// coverage, `P(k <= B <= n-k)` for `B ~ Binomial(n, 1/2)`, is at least
/// [`CONFIDENCE`]. It assumes only that the values are independent draws
/// of one distribution. Fewer than 6 values cannot reach 95 %: the interval
/// is then the whole range.
pub(crate) fn median_interval(sorted: &[f64]) -> (f64, f64) {
    let n = sorted.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let k = interval_rank(n).unwrap_or(1);
    (sorted[k - 1], sorted[n - k])
}

/// The `k` of [`median_interval`] for `n` values (1-based), if some `k`
/// reaches [`CONFIDENCE`].
fn interval_rank(n: usize) -> Option<usize> {
    // pmf[i] = P(B = i) for B ~ Binomial(n, 1/2), built without overflow.
    let mut pmf = vec![0.0f64; n + 1];
    pmf[0] = 0.5f64.powi(n as i32);
    for i in 1..=n {
        pmf[i] = pmf[i - 1] * (n + 1 - i) as f64 / i as f64;
    }
    let coverage = |k: usize| -> f64 { pmf[k..=n - k].iter().sum() };
    (1..=n / 2)
        .take_while(|&k| coverage(k) >= CONFIDENCE)
        .last()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle_or_the_mean_of_the_two_middles() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn interval_rank_matches_the_binomial_table() {
        // Published ranks for a 95 % interval of the median.
        assert_eq!(interval_rank(5), None);
        assert_eq!(interval_rank(6), Some(1));
        assert_eq!(interval_rank(10), Some(2));
        assert_eq!(interval_rank(16), Some(4));
        assert_eq!(interval_rank(20), Some(6));
        assert_eq!(interval_rank(24), Some(7));
    }

    #[test]
    fn median_interval_picks_order_statistics() {
        let sorted: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(median_interval(&sorted), (2.0, 9.0));
        assert_eq!(median_interval(&[1.0, 2.0, 3.0]), (1.0, 3.0));
    }

    #[test]
    fn summary_sorts_and_reports_range_and_interval() {
        let values = [1.02, 0.97, 1.10, 0.90, 1.00, 0.99, 1.01, 1.03, 0.98, 1.05];
        let summary = Summary::of(&values).unwrap();
        assert!((summary.median - 1.005).abs() < 1e-12);
        assert_eq!((summary.low, summary.high), (0.97, 1.05));
        assert_eq!((summary.min, summary.max), (0.90, 1.10));
        assert!(summary.contains(1.0));
        assert!(!summary.contains(0.96));
        assert_eq!(Summary::of(&[]), None);
    }
}
