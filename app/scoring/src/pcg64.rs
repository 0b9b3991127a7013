//! numpy's `default_rng` generator, bit for bit: PCG64 (a 128-bit LCG with the XSL-RR output),
//! numpy's buffered 32-bit draws, `random()`, `integers` (Lemire's bounded draws) and
//! `choice(n, k, replace=False)` (Floyd's algorithm, or a tail shuffle above 10,000 items), as
//! fmeval's perturbations use them (METRICS.md section 8). The `rand_pcg` crate has no 32-bit
//! buffer and numpy's bounded draws are its own, so neither would match.
//!
//! Invariants: pure and deterministic for a given starting state; only the state fmeval uses
//! (`default_rng(5)`, after numpy's SeedSequence) is built in. Depends on nothing.

/// PCG64's LCG multiplier.
const MULTIPLIER: u128 = 0x2360_ED05_1FC6_5DA4_4385_DF64_9FCC_F645;

/// `numpy.random.default_rng(5)`'s state and increment, after SeedSequence seeding.
const SEED_5_STATE: u128 = 304_397_142_111_423_816_445_458_517_940_380_168_174;
const SEED_5_INC: u128 = 233_193_750_087_604_940_414_945_475_171_846_202_189;

/// numpy's PCG64 bit generator with its 32-bit buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcg64 {
    state: u128,
    increment: u128,
    /// The high half of the last 64-bit draw, kept for the next 32-bit draw.
    buffered: Option<u32>,
}

impl Pcg64 {
    /// `numpy.random.default_rng(5)`, the generator fmeval's perturbations are seeded with.
    pub fn seeded_5() -> Pcg64 {
        Pcg64::from_state(SEED_5_STATE, SEED_5_INC)
    }

    /// A generator from a raw (state, increment) pair, as numpy's `bit_generator.state` shows.
    pub fn from_state(state: u128, increment: u128) -> Pcg64 {
        Pcg64 {
            state,
            increment,
            buffered: None,
        }
    }

    /// One 64-bit draw: step the LCG, then XSL-RR.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self
            .state
            .wrapping_mul(MULTIPLIER)
            .wrapping_add(self.increment);
        let rotation = (self.state >> 122) as u32;
        (((self.state >> 64) as u64) ^ (self.state as u64)).rotate_right(rotation)
    }

    /// One 32-bit draw: the buffered high half, or the low half of a fresh 64-bit draw.
    pub fn next_u32(&mut self) -> u32 {
        if let Some(high) = self.buffered.take() {
            return high;
        }
        let draw = self.next_u64();
        self.buffered = Some((draw >> 32) as u32);
        draw as u32
    }

    /// `Generator.random()`: a float in [0, 1) from 53 bits (the 32-bit buffer is untouched).
    pub fn random(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// numpy's `random_bounded_uint64` (unmasked): an integer in `[0, range]`.
    pub fn bounded(&mut self, range: u64) -> u64 {
        if range == 0 {
            0
        } else if range <= u64::from(u32::MAX) {
            if range == u64::from(u32::MAX) {
                return u64::from(self.next_u32());
            }
            let range = range as u32;
            let exclusive = range + 1;
            let mut product = u64::from(self.next_u32()) * u64::from(exclusive);
            let mut leftover = product as u32;
            if leftover < exclusive {
                let threshold = (u32::MAX - range) % exclusive;
                while leftover < threshold {
                    product = u64::from(self.next_u32()) * u64::from(exclusive);
                    leftover = product as u32;
                }
            }
            product >> 32
        } else if range == u64::MAX {
            self.next_u64()
        } else {
            let exclusive = range + 1;
            let mut product = u128::from(self.next_u64()) * u128::from(exclusive);
            let mut leftover = product as u64;
            if leftover < exclusive {
                let threshold = (u64::MAX - range) % exclusive;
                while leftover < threshold {
                    product = u128::from(self.next_u64()) * u128::from(exclusive);
                    leftover = product as u64;
                }
            }
            (product >> 64) as u64
        }
    }

    /// `Generator.choice(range(n), k, replace=False)` (with its default shuffle): `k` distinct
    /// indices below `n`, in numpy's order. `k` is capped at `n`.
    pub fn choice_without_replacement(&mut self, n: usize, k: usize) -> Vec<usize> {
        let k = k.min(n);
        if k == 0 {
            return Vec::new();
        }
        if n > 10_000 && k > n / 50 {
            // Tail shuffle: the last k of a partial Fisher–Yates shuffle.
            let mut indices: Vec<usize> = (0..n).collect();
            let last = (n - k).max(1);
            for i in (last..n).rev() {
                let j = self.bounded(i as u64) as usize;
                indices.swap(i, j);
            }
            return indices.split_off(n - k);
        }
        // Floyd's algorithm with numpy's open-addressing set.
        let set_size = (1.2 * k as f64) as u64;
        let mut mask = set_size;
        for shift in [1, 2, 4, 8, 16, 32] {
            mask |= mask >> shift;
        }
        let empty = u64::MAX;
        let mut set = vec![empty; (mask + 1) as usize];
        let mut selected = Vec::with_capacity(k);
        for j in (n - k) as u64..n as u64 {
            let value = self.bounded(j);
            let mut slot = value & mask;
            while set[slot as usize] != empty && set[slot as usize] != value {
                slot = (slot + 1) & mask;
            }
            if set[slot as usize] == empty {
                set[slot as usize] = value;
                selected.push(value as usize);
            } else {
                let mut slot = j & mask;
                while set[slot as usize] != empty {
                    slot = (slot + 1) & mask;
                }
                set[slot as usize] = j;
                selected.push(j as usize);
            }
        }
        for i in (1..k).rev() {
            let j = self.bounded(i as u64) as usize;
            selected.swap(i, j);
        }
        selected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Printed by numpy 2.4.6 for `g = np.random.default_rng(5)`, a fresh one each line:
    // `g.bit_generator.random_raw(2)`, `[g.random() for _ in range(3)]`,
    // `[g.integers(0, 10) for _ in range(6)]`, `g.choice(range(50), 5, False)`,
    // `g.choice(range(20000), 3000, False)[:5]`.
    const NUMPY_RAW: [u64; 2] = [14_849_682_912_918_955_432, 14_903_876_974_979_881_461];
    const NUMPY_RANDOM: [f64; 3] = [0.8050029237453802, 0.8079407897364937, 0.515325561042142];
    const NUMPY_INTEGERS_0_10: [u64; 6] = [6, 8, 0, 8, 4, 5];
    const NUMPY_CHOICE_50_5: [usize; 5] = [39, 37, 30, 23, 1];
    const NUMPY_CHOICE_20000_3000_HEAD: [usize; 5] = [8309, 15028, 19771, 641, 6866];

    #[test]
    fn matches_numpy_default_rng_5() {
        let mut generator = Pcg64::seeded_5();
        assert_eq!(generator.next_u64(), NUMPY_RAW[0]);
        assert_eq!(generator.next_u64(), NUMPY_RAW[1]);
        let mut generator = Pcg64::seeded_5();
        let randoms: Vec<f64> = (0..3).map(|_| generator.random()).collect();
        assert_eq!(randoms, NUMPY_RANDOM);
        let mut generator = Pcg64::seeded_5();
        let integers: Vec<u64> = (0..6).map(|_| generator.bounded(9)).collect();
        assert_eq!(integers, NUMPY_INTEGERS_0_10);
        let mut generator = Pcg64::seeded_5();
        assert_eq!(
            generator.choice_without_replacement(50, 5),
            NUMPY_CHOICE_50_5
        );
        let mut generator = Pcg64::seeded_5();
        assert_eq!(
            generator.choice_without_replacement(20_000, 3_000)[..5],
            NUMPY_CHOICE_20000_3000_HEAD
        );
    }

    proptest::proptest! {
        #[test]
        fn choices_are_distinct_and_in_range(n in 0usize..12_000, fraction in 0.0f64..1.0) {
            let k = (n as f64 * fraction) as usize;
            let mut generator = Pcg64::seeded_5();
            let mut chosen = generator.choice_without_replacement(n, k);
            proptest::prop_assert_eq!(chosen.len(), k);
            chosen.sort_unstable();
            chosen.dedup();
            proptest::prop_assert_eq!(chosen.len(), k);
            proptest::prop_assert!(chosen.iter().all(|index| *index < n));
        }

        #[test]
        fn bounded_stays_in_range(range in proptest::num::u64::ANY) {
            let mut generator = Pcg64::seeded_5();
            proptest::prop_assert!(generator.bounded(range) <= range);
        }
    }
}
