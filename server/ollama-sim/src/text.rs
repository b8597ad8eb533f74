//! Deterministic "model output": the same prompt always yields the same tokens.
//!
//! Prompts may carry markers that steer the simulator (documented in the README):
//! `[sim:invalid-json]`, `[sim:schema-violation]` and `[sim:tokens=N]`.

/// Marker asking for output that is not valid JSON at all.
pub const MARKER_INVALID_JSON: &str = "[sim:invalid-json]";
/// Marker asking for valid JSON that breaks the requested schema.
pub const MARKER_SCHEMA_VIOLATION: &str = "[sim:schema-violation]";
/// Marker prefix fixing the natural length of the answer: `[sim:tokens=N]`.
pub const MARKER_TOKENS: &str = "[sim:tokens=";

const WORDS: [&str; 64] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "enim",
    "ad",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "aliquip",
    "ex",
    "ea",
    "commodo",
    "consequat",
    "duis",
    "aute",
    "irure",
    "in",
    "reprehenderit",
    "voluptate",
    "velit",
    "esse",
    "cillum",
    "eu",
    "fugiat",
    "nulla",
    "pariatur",
    "excepteur",
    "sint",
    "occaecat",
    "cupidatat",
    "non",
    "proident",
    "sunt",
    "culpa",
    "qui",
    "officia",
    "deserunt",
    "mollit",
    "anim",
    "id",
    "est",
    "laborum",
    "llama",
];

/// FNV-1a, 64 bits: a stable hash of the prompt that seeds everything else.
pub(crate) fn hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // Separate the parts so ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// SplitMix64: a tiny deterministic generator.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A float in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        // 53 random bits: exact in an f64.
        let x = (self.next_u64() >> 11) as f64;
        x / (1u64 << 53) as f64
    }

    pub(crate) fn word(&mut self) -> &'static str {
        WORDS[usize::try_from(self.below(WORDS.len() as u64)).unwrap_or(0)]
    }
}

/// A 64-hex-digit digest derived from `seed`, shaped like a sha256.
pub(crate) fn hex_digest(seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(64);
    for _ in 0..4 {
        out.push_str(&format!("{:016x}", rng.next_u64()));
    }
    out
}

/// An answer split into the chunks a model would stream.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tokens {
    text: String,
    /// End offset of each token in `text`.
    ends: Vec<usize>,
}

impl Tokens {
    /// `n` lorem-ish word tokens seeded by `seed`, with sentence punctuation.
    pub(crate) fn lorem(seed: u64, n: usize) -> Self {
        let mut rng = Rng::new(seed);
        let mut text = String::with_capacity(n * 8);
        let mut ends = Vec::with_capacity(n);
        let mut sentence_left = 0;
        for i in 0..n {
            if i > 0 {
                text.push(' ');
            }
            let word = rng.word();
            if sentence_left == 0 {
                sentence_left = 6 + rng.below(9);
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    text.extend(first.to_uppercase());
                    text.push_str(chars.as_str());
                }
            } else {
                text.push_str(word);
            }
            sentence_left -= 1;
            if sentence_left == 0 || i + 1 == n {
                text.push('.');
                sentence_left = 0;
            }
            ends.push(text.len());
        }
        Self { text, ends }
    }

    /// `text` cut into chunks of a few characters, the way JSON output streams.
    pub(crate) fn chunked(text: String, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut ends = Vec::new();
        let mut at = 0;
        while at < text.len() {
            let want = 2 + usize::try_from(rng.below(4)).unwrap_or(0);
            let mut end = (at + want).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            ends.push(end);
            at = end;
        }
        Self { text, ends }
    }

    /// Keeps the first `n` tokens; true when that cut something off.
    pub(crate) fn truncate(&mut self, n: usize) -> bool {
        if n >= self.ends.len() {
            return false;
        }
        self.ends.truncate(n);
        self.text.truncate(self.ends.last().copied().unwrap_or(0));
        true
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The `i`-th token.
    pub(crate) fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    /// The whole answer.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }
}

/// Whitespace-separated words: the simulator's notion of a token count.
pub(crate) fn words(s: &str) -> u32 {
    u32::try_from(s.split_whitespace().count()).unwrap_or(u32::MAX)
}

/// What a prompt asks of the simulator through markers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Markers {
    pub(crate) invalid_json: bool,
    pub(crate) schema_violation: bool,
    pub(crate) tokens: Option<u32>,
}

impl Markers {
    pub(crate) fn scan(prompt: &str) -> Self {
        let tokens = prompt.find(MARKER_TOKENS).and_then(|at| {
            let rest = &prompt[at + MARKER_TOKENS.len()..];
            let end = rest.find(']')?;
            rest[..end].trim().parse().ok()
        });
        Self {
            invalid_json: prompt.contains(MARKER_INVALID_JSON),
            schema_violation: prompt.contains(MARKER_SCHEMA_VIOLATION),
            tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_answer() {
        let a = Tokens::lorem(hash(&["why is the sky blue?"]), 12);
        let b = Tokens::lorem(hash(&["why is the sky blue?"]), 12);
        let c = Tokens::lorem(hash(&["why is grass green?"]), 12);
        assert_eq!(a.text(), b.text());
        assert_ne!(a.text(), c.text());
        assert_eq!(a.len(), 12);
        let joined: String = (0..a.len()).map(|i| a.get(i)).collect();
        assert_eq!(joined, a.text());
        assert!(a.text().ends_with('.'));
    }

    #[test]
    fn truncation_reports_whether_it_cut() {
        let mut t = Tokens::lorem(1, 10);
        assert!(!t.truncate(10));
        assert!(t.truncate(3));
        assert_eq!(t.len(), 3);
        assert_eq!(t.text(), format!("{}{}{}", t.get(0), t.get(1), t.get(2)));
    }

    #[test]
    fn chunked_text_reassembles_exactly() {
        let t = Tokens::chunked("{\"naïve\": \"café\"}".to_owned(), 5);
        let joined: String = (0..t.len()).map(|i| t.get(i)).collect();
        assert_eq!(joined, "{\"naïve\": \"café\"}");
    }

    #[test]
    fn markers_are_found_in_prompts() {
        let m = Markers::scan("hi [sim:tokens=7] and [sim:invalid-json]");
        assert_eq!(m.tokens, Some(7));
        assert!(m.invalid_json);
        assert!(!m.schema_violation);
        assert_eq!(Markers::scan("plain"), Markers::default());
    }
}
