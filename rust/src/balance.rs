//! Weighted rendezvous hashing (highest random weight) with XXH3: a load-balancing pick that is a pure
//! function of the request's trace key, so the same trace always lands on the same target.
//!
//! Each target `i` draws a uniform `u_i` in (0, 1) from `mix(xxh3(key) ^ seed_i)`, where `seed_i` is the
//! XXH3 of the target's name and `mix` the SplitMix64 finaliser (the key is hashed once, not once per
//! target); its score is `w_i / -ln(u_i)` and the highest score wins. `-ln(u_i) / w_i` is an
//! exponential variable with rate `w_i`, and the smallest of independent exponentials is `i` with
//! probability `w_i / Σw` (an "exponential race"), so the pick follows the normalised weights exactly.
//!
//! Why rendezvous rather than cumulative-weight buckets: a trace's score for a target depends on that target
//! alone. Changing one target's weight only moves the traces that must move (to it when it grows, away
//! from it when it shrinks: exactly the total-variation distance between the two distributions), and
//! removing a target only moves the traces it had. Bucket schemes shift every boundary after the change.
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

/// Targets and weights that cannot be balanced.
#[derive(Debug, Clone, PartialEq)]
pub enum BalanceError {
    Empty,
    LengthMismatch { targets: usize, weights: usize },
    BadWeight { index: usize, weight: f64 },
    Duplicate { name: String },
}

impl std::fmt::Display for BalanceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => write!(f, "at least one target is needed"),
            Self::LengthMismatch { targets, weights } => {
                write!(f, "{targets} targets but {weights} weights")
            }
            Self::BadWeight { index, weight } => write!(
                f,
                "weight of target {index} is {weight}: weights must be finite and positive"
            ),
            Self::Duplicate { name } => write!(f, "target {name:?} is listed twice"),
        }
    }
}

/// A fixed set of weighted targets.
#[derive(Debug, Clone)]
pub struct Rendezvous {
    seeds: Vec<u64>,
    weights: Vec<f64>,
}

/// SplitMix64's finaliser: a bijection with full avalanche, so each target's draw looks independent.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The top 53 bits of a hash as a uniform double in the open interval (0, 1).
#[inline]
fn unit(hash: u64) -> f64 {
    ((hash >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

impl Rendezvous {
    pub fn new<S: AsRef<str>>(names: &[S], weights: &[f64]) -> Result<Self, BalanceError> {
        if names.is_empty() {
            return Err(BalanceError::Empty);
        }
        if names.len() != weights.len() {
            return Err(BalanceError::LengthMismatch {
                targets: names.len(),
                weights: weights.len(),
            });
        }
        if let Some((index, &weight)) = weights
            .iter()
            .enumerate()
            .find(|(_, w)| !(w.is_finite() && **w > 0.0))
        {
            return Err(BalanceError::BadWeight { index, weight });
        }
        let seeds: Vec<u64> = names
            .iter()
            .map(|n| xxh3_64(n.as_ref().as_bytes()))
            .collect();
        for (i, name) in names.iter().enumerate() {
            if names[..i].iter().any(|m| m.as_ref() == name.as_ref()) {
                return Err(BalanceError::Duplicate {
                    name: name.as_ref().to_owned(),
                });
            }
        }
        // Scale is irrelevant to the race; normalising keeps scores in a comparable range.
        let total: f64 = weights.iter().sum();
        Ok(Self {
            seeds,
            weights: weights.iter().map(|w| w / total).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.seeds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seeds.is_empty()
    }

    /// The normalised weights (they sum to 1).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    #[inline]
    fn score(&self, i: usize, hash: u64) -> f64 {
        self.weights[i] / -unit(mix(hash ^ self.seeds[i])).ln()
    }

    /// The index of the target this key lands on.
    pub fn pick(&self, key: &[u8]) -> usize {
        let hash = xxh3_64(key);
        let mut best = 0;
        let mut best_score = self.score(0, hash);
        for i in 1..self.seeds.len() {
            let s = self.score(i, hash);
            // Strictly greater: an exact tie (practically impossible) goes to the earlier target.
            if s > best_score {
                best = i;
                best_score = s;
            }
        }
        best
    }

    /// Every target index, best first for this key: `rank(key)[0] == pick(key)`, and dropping any target
    /// from the set leaves the relative order of the others unchanged (the failover order).
    pub fn rank(&self, key: &[u8]) -> Vec<usize> {
        let hash = xxh3_64(key);
        let mut scored: Vec<(f64, usize)> = (0..self.seeds.len())
            .map(|i| (self.score(i, hash), i))
            .collect();
        scored.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().map(|(_, i)| i).collect()
    }
}

// -- Python binding ---------------------------------------------------------------------------------

/// Weighted rendezvous hashing over a fixed list of targets (immutable; build a new one to change it).
#[pyclass(name = "Rendezvous", module = "router._core", frozen)]
pub struct PyRendezvous(Rendezvous);

#[pymethods]
impl PyRendezvous {
    #[new]
    fn new(targets: Vec<String>, weights: Vec<f64>) -> PyResult<Self> {
        Rendezvous::new(&targets, &weights)
            .map(Self)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    fn pick(&self, key: &str) -> usize {
        self.0.pick(key.as_bytes())
    }

    fn rank(&self, key: &str) -> Vec<usize> {
        self.0.rank(key.as_bytes())
    }

    #[getter]
    fn weights(&self) -> Vec<f64> {
        self.0.weights().to_vec()
    }

    fn __len__(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(n: usize) -> impl Iterator<Item = String> {
        (0..n).map(|i| format!("trace-{i}"))
    }

    fn shares(r: &Rendezvous, n: usize) -> Vec<f64> {
        let mut counts = vec![0usize; r.len()];
        for k in keys(n) {
            counts[r.pick(k.as_bytes())] += 1;
        }
        counts.iter().map(|&c| c as f64 / n as f64).collect()
    }

    #[test]
    fn rejects_bad_input() {
        let empty: [&str; 0] = [];
        assert_eq!(
            Rendezvous::new(&empty, &[]).unwrap_err(),
            BalanceError::Empty
        );
        assert!(matches!(
            Rendezvous::new(&["a"], &[1.0, 2.0]),
            Err(BalanceError::LengthMismatch { .. })
        ));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                Rendezvous::new(&["a", "b"], &[1.0, bad]),
                Err(BalanceError::BadWeight { index: 1, .. })
            ));
        }
        assert_eq!(
            Rendezvous::new(&["a", "a"], &[1.0, 1.0]).unwrap_err(),
            BalanceError::Duplicate { name: "a".into() }
        );
    }

    #[test]
    fn distribution_follows_weights() {
        let r = Rendezvous::new(&["a", "b", "c"], &[70.0, 20.0, 10.0]).unwrap();
        let got = shares(&r, 100_000);
        for (g, want) in got.iter().zip([0.7, 0.2, 0.1]) {
            assert!((g - want).abs() < 0.01, "{got:?}");
        }
    }

    #[test]
    fn single_weight_change_moves_only_the_needed_fraction() {
        let before = Rendezvous::new(&["a", "b", "c"], &[50.0, 30.0, 20.0]).unwrap();
        // c: 20% → 1/3 of the total. Only traces moving *to* c may change target.
        let after = Rendezvous::new(&["a", "b", "c"], &[50.0, 30.0, 40.0]).unwrap();
        let n = 100_000;
        let mut moved = 0;
        for k in keys(n) {
            let (x, y) = (before.pick(k.as_bytes()), after.pick(k.as_bytes()));
            if x != y {
                assert_eq!(y, 2, "a trace moved between the unchanged targets");
                moved += 1;
            }
        }
        let needed = 40.0 / 120.0 - 0.2;
        let fraction = moved as f64 / n as f64;
        assert!((fraction - needed).abs() < 0.01, "{fraction} vs {needed}");
    }

    proptest! {
        #[test]
        fn pick_is_first_of_rank_and_rank_is_a_permutation(
            weights in prop::collection::vec(0.01f64..100.0, 1..12),
            key in ".{0,40}",
        ) {
            let names: Vec<String> = (0..weights.len()).map(|i| format!("model-{i}")).collect();
            let r = Rendezvous::new(&names, &weights).unwrap();
            let rank = r.rank(key.as_bytes());
            prop_assert_eq!(rank[0], r.pick(key.as_bytes()));
            let mut sorted = rank.clone();
            sorted.sort_unstable();
            prop_assert_eq!(sorted, (0..weights.len()).collect::<Vec<_>>());
        }

        #[test]
        fn removing_a_target_keeps_the_others_in_order(
            weights in prop::collection::vec(0.01f64..100.0, 2..10),
            drop in 0usize..10,
            key in "[a-z0-9-]{1,30}",
        ) {
            let drop = drop % weights.len();
            let names: Vec<String> = (0..weights.len()).map(|i| format!("t{i}")).collect();
            let full = Rendezvous::new(&names, &weights).unwrap();
            let kept: Vec<usize> = (0..names.len()).filter(|&i| i != drop).collect();
            let fewer = Rendezvous::new(
                &kept.iter().map(|&i| names[i].clone()).collect::<Vec<_>>(),
                &kept.iter().map(|&i| weights[i]).collect::<Vec<_>>(),
            ).unwrap();
            let expected: Vec<usize> = full.rank(key.as_bytes()).into_iter().filter(|&i| i != drop).collect();
            let got: Vec<usize> = fewer.rank(key.as_bytes()).into_iter().map(|j| kept[j]).collect();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn raising_one_weight_only_moves_traces_to_it(
            weights in prop::collection::vec(0.1f64..10.0, 2..8),
            which in 0usize..8,
            factor in 1.0f64..20.0,
            key in "[a-z0-9-]{1,30}",
        ) {
            let which = which % weights.len();
            let names: Vec<String> = (0..weights.len()).map(|i| format!("t{i}")).collect();
            let mut raised = weights.clone();
            raised[which] *= factor;
            let (x, y) = (
                Rendezvous::new(&names, &weights).unwrap().pick(key.as_bytes()),
                Rendezvous::new(&names, &raised).unwrap().pick(key.as_bytes()),
            );
            prop_assert!(x == y || y == which);
        }

        #[test]
        fn scale_of_weights_does_not_matter(
            weights in prop::collection::vec(0.01f64..100.0, 1..10),
            scale in 0.001f64..1000.0,
            key in ".{0,20}",
        ) {
            let names: Vec<String> = (0..weights.len()).map(|i| format!("t{i}")).collect();
            let scaled: Vec<f64> = weights.iter().map(|w| w * scale).collect();
            prop_assert_eq!(
                Rendezvous::new(&names, &weights).unwrap().rank(key.as_bytes()),
                Rendezvous::new(&names, &scaled).unwrap().rank(key.as_bytes())
            );
        }
    }
}
