//! Deterministic, L2-normalised embedding vectors.

use base64::Engine as _;

use crate::text::{Rng, hash};

/// The embedding of `input` by `model`: `dims` components of unit length.
pub(crate) fn embed(model_key: &str, input: &str, dims: usize) -> Vec<f32> {
    let mut rng = Rng::new(hash(&[model_key, input]));
    let mut v: Vec<f32> = (0..dims).map(|_| (rng.unit() * 2.0 - 1.0) as f32).collect();
    normalize(&mut v);
    v
}

/// Scales `v` to unit length, as Ollama does after truncating to `dimensions`.
pub(crate) fn normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    let scale = 1.0 / norm.max(1e-12);
    for x in v.iter_mut() {
        *x = (f64::from(*x) * scale) as f32;
    }
}

/// The OpenAI `encoding_format: "base64"` form: little-endian f32s, base64-encoded.
pub(crate) fn to_base64(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_unit_length_and_deterministic() {
        let a = embed("m", "why is the sky blue?", 768);
        let b = embed("m", "why is the sky blue?", 768);
        let c = embed("m", "why is grass green?", 768);
        assert_eq!(a.len(), 768);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    }

    #[test]
    fn base64_round_trips_the_floats() {
        let v = [1.0_f32, -0.5];
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(to_base64(&v))
            .unwrap();
        assert_eq!(decoded.len(), 8);
        assert_eq!(f32::from_le_bytes(decoded[4..8].try_into().unwrap()), -0.5);
    }
}
