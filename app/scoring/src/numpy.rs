//! numpy's float64 summation, bit for bit: `np.sum`/`np.mean` add up arrays pairwise, which
//! differs from a left-to-right sum in the last bits from 8 values on (METRICS.md section 8).
//! fmeval's delta scores and scikit-learn's averages (balanced accuracy, macro and weighted
//! precision and recall) go through it.
//!
//! Invariants: pure; the same order of additions as numpy's `pairwise_sum` (blocks of 128,
//! 8 accumulators, halves split at a multiple of 8). Depends on nothing.

/// numpy's `pairwise_sum` of `values`.
pub fn pairwise_sum(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 8 {
        let mut sum = 0.0;
        for value in values {
            sum += value;
        }
        sum
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&values[..8]);
        let whole = n - n % 8;
        let mut index = 8;
        while index < whole {
            for (lane, accumulator) in r.iter_mut().enumerate() {
                *accumulator += values[index + lane];
            }
            index += 8;
        }
        let mut sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for value in &values[whole..] {
            sum += value;
        }
        sum
    } else {
        let mut half = n / 2;
        half -= half % 8;
        pairwise_sum(&values[..half]) + pairwise_sum(&values[half..])
    }
}

/// numpy's `mean`: the pairwise sum divided by the count (NaN for no values, as numpy).
pub fn mean(values: &[f64]) -> f64 {
    pairwise_sum(values) / values.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_sums_go_left_to_right() {
        let values = [0.1, 0.2, 0.3];
        assert_eq!(pairwise_sum(&values), (0.1 + 0.2) + 0.3);
        assert!(mean(&[]).is_nan());
    }

    /// Printed by numpy 2.4.6: `repr(np.sum(np.array([0.1] * n)))` (a left-to-right sum of ten
    /// 0.1 is 0.9999999999999999).
    #[test]
    fn matches_numpy() {
        for (n, expected) in [
            (7, 0.7),
            (8, 0.8),
            (10, 1.0),
            (100, 9.999999999999998),
            (1000, 100.00000000000001),
            (20_000, 1999.9999999999998),
        ] {
            assert_eq!(pairwise_sum(&vec![0.1; n]), expected, "{n} values");
        }
    }
}
