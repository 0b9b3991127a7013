//! Record selection: all records, the first N, or a seeded random sample drawn exactly as fmeval
//! 1.0.3 draws it, so a run can be compared record for record with fmeval.
//!
//! fmeval samples with pandas `df.sample(k, random_state=seed)`, which is
//! `numpy.random.RandomState(seed).permutation(count)[:k]`: a Mersenne Twister (MT19937) seeded
//! with `init_genrand(seed)` (numpy's legacy `mt19937_seed` for an integer seed), then numpy's
//! legacy Fisher–Yates shuffle from the last element down, each swap partner drawn by
//! `random_interval` (a 32-bit draw masked to the smallest covering bit mask, redrawn while it is
//! too large). Invariants: deterministic for a given (seed, count); `k = min(n, count)`; only the
//! first 100,000 records are sampled from, as fmeval does.

/// fmeval's default sampling seed.
pub const DEFAULT_SEED: u32 = 1234;

/// fmeval only samples from the first this many records.
pub const MAX_SAMPLED_RECORDS: usize = 100_000;

/// Which records a run evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Every record, in file order.
    All,
    /// The first N records, in file order.
    First(usize),
    /// A random sample of N records in fmeval's (shuffled) order.
    Sample {
        /// How many records.
        n: usize,
        /// The seed (fmeval's default is [`DEFAULT_SEED`]).
        seed: u32,
    },
}

/// The 0-based record indices to evaluate, in evaluation order, for a dataset of `count`
/// records; `None` means every record in file order. `Sample` always shuffles, even when it
/// selects every record (fmeval does); a sample of 0 selects nothing.
pub fn selected_indices(selection: &Selection, count: usize) -> Option<Vec<usize>> {
    match *selection {
        Selection::All => None,
        Selection::First(n) => Some((0..n.min(count)).collect()),
        Selection::Sample { n, seed } => {
            let count = count.min(MAX_SAMPLED_RECORDS);
            let mut indices = permutation(seed, count);
            indices.truncate(n.min(count));
            Some(indices)
        }
    }
}

/// `numpy.random.RandomState(seed).permutation(count)`.
pub fn permutation(seed: u32, count: usize) -> Vec<usize> {
    let mut generator = Mt19937::new(seed);
    let mut indices: Vec<usize> = (0..count).collect();
    for position in (1..count).rev() {
        let other = generator.interval(position as u64) as usize;
        indices.swap(position, other);
    }
    indices
}

const STATE_LEN: usize = 624;
const SHIFT_LEN: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// The 32-bit Mersenne Twister, as numpy's legacy `RandomState` runs it.
struct Mt19937 {
    state: [u32; STATE_LEN],
    position: usize,
}

impl Mt19937 {
    /// `init_genrand(seed)`.
    fn new(seed: u32) -> Mt19937 {
        let mut state = [0u32; STATE_LEN];
        state[0] = seed;
        for index in 1..STATE_LEN {
            let previous = state[index - 1];
            state[index] = 1_812_433_253u32
                .wrapping_mul(previous ^ (previous >> 30))
                .wrapping_add(index as u32);
        }
        Mt19937 {
            state,
            position: STATE_LEN,
        }
    }

    fn regenerate(&mut self) {
        for index in 0..STATE_LEN {
            let mixed = (self.state[index] & UPPER_MASK)
                | (self.state[(index + 1) % STATE_LEN] & LOWER_MASK);
            let mut next = self.state[(index + SHIFT_LEN) % STATE_LEN] ^ (mixed >> 1);
            if mixed & 1 != 0 {
                next ^= MATRIX_A;
            }
            self.state[index] = next;
        }
        self.position = 0;
    }

    /// `genrand_int32`.
    fn next_u32(&mut self) -> u32 {
        if self.position >= STATE_LEN {
            self.regenerate();
        }
        let mut value = self.state[self.position];
        self.position += 1;
        value ^= value >> 11;
        value ^= (value << 7) & 0x9d2c_5680;
        value ^= (value << 15) & 0xefc6_0000;
        value ^ (value >> 18)
    }

    fn next_u64(&mut self) -> u64 {
        (u64::from(self.next_u32()) << 32) | u64::from(self.next_u32())
    }

    /// numpy's `random_interval(max)`: uniform in `[0, max]` by masked rejection.
    fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        mask |= mask >> 32;
        if max <= u64::from(u32::MAX) {
            loop {
                let value = u64::from(self.next_u32()) & mask;
                if value <= max {
                    return value;
                }
            }
        } else {
            loop {
                let value = self.next_u64() & mask;
                if value <= max {
                    return value;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(selection: Selection, count: usize, expected: Option<&[usize]>) {
        let got = selected_indices(&selection, count);
        assert_eq!(got.as_deref(), expected, "{selection:?} of {count}");
    }

    #[test]
    fn mersenne_twister_reference_output() {
        // The reference implementation's first outputs for init_genrand(5489).
        let mut generator = Mt19937::new(5489);
        let first: Vec<u32> = (0..3).map(|_| generator.next_u32()).collect();
        assert_eq!(first, [3_499_211_612, 581_869_302, 3_890_346_734]);
    }

    #[test]
    fn fmeval_order_of_the_20_record_dataset() {
        let expected = [
            3, 13, 2, 16, 14, 5, 4, 0, 8, 18, 17, 11, 10, 9, 7, 1, 19, 12, 6, 15,
        ];
        check(
            Selection::Sample {
                n: 100,
                seed: DEFAULT_SEED,
            },
            20,
            Some(&expected),
        );
        check(
            Selection::Sample {
                n: 20,
                seed: DEFAULT_SEED,
            },
            20,
            Some(&expected),
        );
        check(
            Selection::Sample {
                n: 3,
                seed: DEFAULT_SEED,
            },
            20,
            Some(&expected[..3]),
        );
    }

    /// Prefixes printed by numpy 2.4.6: `RandomState(seed).permutation(count)[:12]`.
    #[test]
    fn matches_numpy_on_larger_counts() {
        let check_prefix = |seed: u32, count: usize, expected: [usize; 12]| {
            assert_eq!(
                permutation(seed, count)[..12],
                expected,
                "seed {seed}, count {count}"
            );
        };
        check_prefix(
            1234,
            1000,
            [681, 990, 155, 768, 438, 363, 688, 555, 620, 99, 756, 428],
        );
        check_prefix(
            1234,
            100_000,
            [
                13504, 72599, 42217, 97650, 99120, 13165, 56244, 72729, 10979, 11794, 30261, 27441,
            ],
        );
        check_prefix(
            42,
            1000,
            [521, 737, 740, 660, 411, 678, 626, 513, 859, 136, 811, 76],
        );
        check_prefix(
            u32::MAX,
            300,
            [110, 21, 54, 6, 19, 166, 190, 59, 280, 170, 126, 97],
        );
    }

    #[test]
    fn selections() {
        check(Selection::All, 5, None);
        check(Selection::First(2), 5, Some(&[0, 1]));
        check(Selection::First(9), 3, Some(&[0, 1, 2]));
        check(Selection::First(0), 3, Some(&[]));
        check(Selection::Sample { n: 0, seed: 1 }, 3, Some(&[]));
        check(Selection::Sample { n: 5, seed: 1 }, 0, Some(&[]));
        check(Selection::Sample { n: 5, seed: 1 }, 1, Some(&[0]));
    }

    #[test]
    fn sample_is_capped_at_100000_records() {
        let indices = selected_indices(
            &Selection::Sample {
                n: 200_000,
                seed: 7,
            },
            150_000,
        )
        .expect("a sample");
        assert_eq!(indices.len(), MAX_SAMPLED_RECORDS);
        assert!(indices.iter().all(|index| *index < MAX_SAMPLED_RECORDS));
        assert_eq!(indices, permutation(7, MAX_SAMPLED_RECORDS));
    }

    proptest::proptest! {
        #[test]
        fn permutation_is_a_permutation(seed in proptest::num::u32::ANY, count in 0usize..300) {
            let mut indices = permutation(seed, count);
            indices.sort_unstable();
            proptest::prop_assert_eq!(indices, (0..count).collect::<Vec<_>>());
        }
    }
}
