//! Percentiles that merge: a DDSketch with 1 % relative accuracy.
//!
//! Each summary row keeps one sketch per measure, and a window's answer merges the rows it
//! covers, so a year reads a few hundred rows and never the events. A sketch answers a
//! quantile within [`RELATIVE_ERROR`] of the value at the same rank, however many sketches were
//! merged. Rows store the sketch's standard binary encoding (the one DataDog's Java library
//! reads), which keeps the exact count, sum, minimum and maximum.

use std::sync::OnceLock;

use sketches_ddsketch::{Config, DDSketch};

use crate::error::AppError;

/// A quantile read from a sketch lies within this fraction of the exact value at its rank.
pub const RELATIVE_ERROR: f64 = 0.01;

#[derive(Clone)]
pub struct Sketch(DDSketch);

/// An empty sketch as decoding builds one. Merging needs equal configurations, and a decoded
/// sketch's configuration is rebuilt from its encoded gamma: new sketches start from the same
/// decoded form, so fresh and stored sketches always merge.
fn empty() -> &'static DDSketch {
    static EMPTY: OnceLock<DDSketch> = OnceLock::new();
    EMPTY.get_or_init(|| {
        let config = Config::new(RELATIVE_ERROR, 2048, 1.0e-9);
        DDSketch::from_java_bytes(&DDSketch::new(config).to_java_bytes())
            .expect("an encoded empty sketch decodes")
    })
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch(empty().clone())
    }
}

impl Sketch {
    pub fn add(&mut self, value: f64) {
        self.0.add(value);
    }

    pub fn merge(&mut self, other: &Sketch) -> Result<(), AppError> {
        self.0
            .merge(&other.0)
            .map_err(|e| AppError::internal(format!("merging sketches: {e:?}")))
    }

    pub fn encode(&self) -> Vec<u8> {
        self.0.to_java_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Sketch, AppError> {
        let sketch = DDSketch::from_java_bytes(bytes)
            .map_err(|e| AppError::internal(format!("a stored sketch does not decode: {e}")))?;
        let mut merged = Sketch::default();
        merged
            .0
            .merge(&sketch)
            .map_err(|e| AppError::internal(format!("a stored sketch's mapping differs: {e:?}")))?;
        Ok(merged)
    }

    /// Decodes `bytes` when there are any, else an empty sketch.
    pub fn decode_or_empty(bytes: Option<&[u8]>) -> Result<Sketch, AppError> {
        bytes.map_or_else(|| Ok(Sketch::default()), Sketch::decode)
    }

    pub fn count(&self) -> u64 {
        self.0.count() as u64
    }

    /// The value at rank ⌊q·(n−1)⌋ of the sorted values, within [`RELATIVE_ERROR`];
    /// `None` when the sketch is empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.0.quantile(q).ok().flatten()
    }

    pub fn min(&self) -> Option<f64> {
        self.0.min()
    }

    pub fn max(&self) -> Option<f64> {
        self.0.max()
    }

    pub fn sum(&self) -> f64 {
        self.0.sum().unwrap_or(0.0)
    }
}

/// The exact counterpart of [`Sketch::quantile`] over sorted values: the same rank rule, so
/// an exact answer and a sketched one name the same element.
pub fn exact_quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * (sorted.len() as f64 - 1.0)) as usize;
    sorted.get(rank.min(sorted.len() - 1)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator: the test needs spread, not cryptographic randomness.
    struct Lcg(u64);

    impl Lcg {
        fn unit(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let (u, v) = (self.unit(), self.unit());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    fn check(name: &str, values: Vec<f64>) {
        // Split into many small sketches merged through their encoding, as the summaries are.
        let mut merged = Sketch::default();
        for part in values.chunks(97) {
            let mut s = Sketch::default();
            part.iter().for_each(|v| s.add(*v));
            merged.merge(&Sketch::decode(&s.encode()).unwrap()).unwrap();
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(merged.count(), values.len() as u64);
        for q in [0.5, 0.9, 0.95, 0.99, 0.999] {
            let exact = exact_quantile(&sorted, q).unwrap();
            let estimate = merged.quantile(q).unwrap();
            let error = (estimate - exact).abs() / exact.abs();
            assert!(
                error <= RELATIVE_ERROR,
                "{name} p{q}: {estimate} vs exact {exact} ({error})"
            );
        }
        assert_eq!(merged.min(), sorted.first().copied());
        assert_eq!(merged.max(), sorted.last().copied());
    }

    #[test]
    fn quantiles_stay_within_the_stated_error() {
        let mut rng = Lcg(7);
        check(
            "uniform",
            (0..50_000).map(|_| 1.0 + 999.0 * rng.unit()).collect(),
        );
        check(
            "log-normal",
            (0..50_000)
                .map(|_| (3.0 + 1.2 * rng.normal()).exp())
                .collect(),
        );
        check(
            "bimodal",
            (0..50_000)
                .map(|i| {
                    if i % 3 == 0 {
                        800.0 + 50.0 * rng.normal().abs()
                    } else {
                        20.0 + 5.0 * rng.unit()
                    }
                })
                .collect(),
        );
    }

    #[test]
    fn an_empty_sketch_has_no_quantile() {
        let s = Sketch::decode(&Sketch::default().encode()).unwrap();
        assert_eq!(s.count(), 0);
        assert_eq!(s.quantile(0.5), None);
        assert_eq!(exact_quantile(&[], 0.5), None);
    }
}
