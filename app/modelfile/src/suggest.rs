//! "Did you mean …?": the closest known word by edit distance, bounded so that
//! it costs constant time per word.

/// Words longer than this get no suggestion (keeps the work per word bounded).
const MAX_LEN: usize = 40;

/// The candidate closest to `word` (compared case-insensitively), if it is
/// near enough to be a plausible typo: at most two edits, and fewer edits than
/// the word has characters.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word: Vec<char> = word.chars().flat_map(char::to_lowercase).collect();
    if word.is_empty() || word.len() > MAX_LEN {
        return None;
    }
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let c: Vec<char> = candidate.chars().flat_map(char::to_lowercase).collect();
        let d = distance(&word, &c);
        if d <= 2 && d < word.len() && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Levenshtein distance, with adjacent transpositions counted as one edit.
fn distance(a: &[char], b: &[char]) -> usize {
    let width = b.len() + 1;
    let mut rows = vec![0usize; (a.len() + 1) * width];
    for (j, cell) in rows.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        if let Some(cell) = rows.get_mut(i * width) {
            *cell = i;
        }
        for j in 1..=b.len() {
            let same = a.get(i - 1) == b.get(j - 1);
            let at = |r: &Vec<usize>, i: usize, j: usize| {
                r.get(i * width + j).copied().unwrap_or(usize::MAX / 2)
            };
            let mut d = (at(&rows, i - 1, j) + 1)
                .min(at(&rows, i, j - 1) + 1)
                .min(at(&rows, i - 1, j - 1) + usize::from(!same));
            if i > 1 && j > 1 && a.get(i - 1) == b.get(j - 2) && a.get(i - 2) == b.get(j - 1) {
                d = d.min(at(&rows, i - 2, j - 2) + 1);
            }
            if let Some(cell) = rows.get_mut(i * width + j) {
                *cell = d;
            }
        }
    }
    rows.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn typos_find_the_parameter() {
        let names = ["num_ctx", "num_predict", "temperature", "top_k"];
        assert_eq!(closest("num_ctxx", names), Some("num_ctx"));
        assert_eq!(closest("temprature", names), Some("temperature"));
        assert_eq!(closest("Temperature", names), Some("temperature"));
        assert_eq!(closest("top-k", names), Some("top_k"));
        assert_eq!(closest("tpo_k", names), Some("top_k"));
        assert_eq!(closest("ctx", names), None);
        assert_eq!(closest("", names), None);
    }
}
