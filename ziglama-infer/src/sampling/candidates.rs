//! The candidate set: (token id, logit, probability) triples a chain of samplers narrows down.
//!
//! It mirrors llama.cpp's `llama_token_data_array`: processors may reorder and shrink it, and
//! it remembers whether it is sorted by descending logit and whether the probabilities are the
//! softmax of the current logits. Probabilities are only (re)computed where a sampler needs
//! them, exactly where llama.cpp computes them, so a stale `p` is possible (and flagged by
//! [`Candidates::is_normalized`]). The buffer is meant to be reused from token to token: no
//! allocation happens once it has grown to the vocabulary size.

use std::cmp::Ordering;

use super::{SamplingError, TokenId};

/// One candidate token: its id, its (possibly transformed) logit and its probability.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Candidate {
    /// The token id (index into the vocabulary).
    pub id: TokenId,
    /// The logit, after whatever the processors so far have done to it.
    pub logit: f32,
    /// The probability, meaningful only where the set [is normalised](Candidates::is_normalized).
    pub p: f32,
}

/// Orders candidates by descending logit, then ascending id (a total, deterministic order).
#[inline]
pub(crate) fn by_logit_desc(a: &Candidate, b: &Candidate) -> Ordering {
    b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id))
}

/// A logit a candidate may carry: finite or `-inf` (not NaN, not `+inf`).
#[inline]
pub(crate) fn admissible(logit: f32) -> bool {
    !logit.is_nan() && logit != f32::INFINITY
}

/// `a` ranks strictly below `b` in [`by_logit_desc`] order.
#[inline]
fn worse(a: &Candidate, b: &Candidate) -> bool {
    a.logit < b.logit || (a.logit == b.logit && a.id > b.id)
}

/// Above this `k`, top-k selects with `select_nth_unstable` (linear) instead of a heap.
const HEAP_TOP_K_MAX: usize = 1024;

/// The set of candidate tokens for one sampling step.
///
/// ```
/// use ziglama_infer::sampling::Candidates;
/// let mut c = Candidates::from_logits(&[1.0, 3.0, 2.0])?;
/// c.softmax(true)?;
/// assert!(c.is_sorted() && c.is_normalized());
/// assert_eq!(c.as_slice()[0].id, 1);
/// let sum: f32 = c.iter().map(|c| c.p).sum();
/// assert!((sum - 1.0).abs() < 1e-6);
/// # Ok::<(), ziglama_infer::sampling::SamplingError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    pub(crate) data: Vec<Candidate>,
    pub(crate) sorted: bool,
    pub(crate) normalized: bool,
    pub(crate) selected: Option<usize>,
    /// Reused working space (top-k heap, filtered copies).
    pub(crate) scratch: Vec<Candidate>,
}

impl Candidates {
    /// An empty set (fill it with [`Candidates::fill_from_logits`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The full vocabulary: one candidate per logit, id = index, `p` = 0, unsorted.
    ///
    /// # Errors
    /// [`SamplingError::NonFiniteLogit`] for a NaN or `+inf` logit (`-inf` masks a token).
    pub fn from_logits(logits: &[f32]) -> Result<Self, SamplingError> {
        let mut c = Self::new();
        c.fill_from_logits(logits)?;
        Ok(c)
    }

    /// Refills this set from one step's logits, reusing its buffers (no allocation once the
    /// buffer has grown to the vocabulary size).
    ///
    /// # Errors
    /// [`SamplingError::NonFiniteLogit`] naming the first NaN or `+inf` logit; the set is
    /// left empty then. More than `u32::MAX` logits is an [`SamplingError::InvalidParameter`].
    pub fn fill_from_logits(&mut self, logits: &[f32]) -> Result<(), SamplingError> {
        if u32::try_from(logits.len()).is_err() {
            return Err(SamplingError::param(
                "candidates",
                "logits.len()",
                logits.len(),
                "0..=u32::MAX",
            ));
        }
        self.data.clear();
        self.data.reserve(logits.len());
        let mut bad = false;
        self.data
            .extend(logits.iter().enumerate().map(|(i, &logit)| {
                bad |= !admissible(logit);
                Candidate {
                    id: i as TokenId,
                    logit,
                    p: 0.0,
                }
            }));
        self.sorted = false;
        self.normalized = false;
        self.selected = None;
        if bad {
            self.data.clear();
            let (token, &value) = logits
                .iter()
                .enumerate()
                .find(|(_, l)| !admissible(**l))
                .expect("a bad logit was seen");
            return Err(SamplingError::NonFiniteLogit { token, value });
        }
        Ok(())
    }

    /// A set from explicit candidates (for custom vocabularies or tests); flags cleared.
    ///
    /// # Errors
    /// [`SamplingError::NonFiniteLogit`] for a NaN or `+inf` logit.
    pub fn from_vec(data: Vec<Candidate>) -> Result<Self, SamplingError> {
        if let Some((token, c)) = data.iter().enumerate().find(|(_, c)| !admissible(c.logit)) {
            return Err(SamplingError::NonFiniteLogit {
                token,
                value: c.logit,
            });
        }
        Ok(Self {
            data,
            ..Self::default()
        })
    }

    /// The number of candidates left.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether no candidate is left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The candidates, in their current order.
    pub fn as_slice(&self) -> &[Candidate] {
        &self.data
    }

    /// Iterates over the candidates in their current order.
    pub fn iter(&self) -> std::slice::Iter<'_, Candidate> {
        self.data.iter()
    }

    /// Mutable access for custom processors. Clears the sorted and normalised flags, since the
    /// caller may change logits or order (use [`Candidates::set_sorted`] to restore a claim).
    pub fn as_mut_slice(&mut self) -> &mut [Candidate] {
        self.sorted = false;
        self.normalized = false;
        &mut self.data
    }

    /// Keeps the candidates for which `keep` is true, in their order; clears `normalized`.
    pub fn retain(&mut self, keep: impl FnMut(&Candidate) -> bool) {
        self.data.retain(keep);
        self.normalized = false;
    }

    /// Keeps the first `n` candidates (in the current order); clears `normalized`.
    pub fn truncate(&mut self, n: usize) {
        if n < self.data.len() {
            self.data.truncate(n);
            self.normalized = false;
        }
    }

    /// Whether the candidates are sorted by descending logit.
    pub fn is_sorted(&self) -> bool {
        self.sorted
    }

    /// Claims (or withdraws the claim) that the candidates are sorted by descending logit.
    pub fn set_sorted(&mut self, sorted: bool) {
        self.sorted = sorted;
    }

    /// Whether every `p` is the softmax of the current logits over the current set.
    pub fn is_normalized(&self) -> bool {
        self.normalized
    }

    /// Claims (or withdraws the claim) that the probabilities are normalised.
    pub fn set_normalized(&mut self, normalized: bool) {
        self.normalized = normalized;
    }

    /// The position of the token a selector chose in this step, if any.
    pub fn selected(&self) -> Option<usize> {
        self.selected
    }

    /// Records the position of the chosen candidate (`None` to clear it).
    pub fn set_selected(&mut self, index: Option<usize>) {
        self.selected = index.filter(|&i| i < self.data.len());
    }

    /// The largest logit (`None` when empty).
    pub fn max_logit(&self) -> Option<f32> {
        if self.sorted {
            return self.data.first().map(|c| c.logit);
        }
        self.data.iter().map(|c| c.logit).reduce(f32::max)
    }

    /// Softmax of the logits into `p`, sorting first when `sort` is set, as llama.cpp's
    /// softmax does: `p_i = exp(l_i - max) / sum_j exp(l_j - max)` in f32.
    ///
    /// # Errors
    /// [`SamplingError::EmptyCandidates`] when empty, [`SamplingError::AllMasked`] when every
    /// logit is `-inf`.
    pub fn softmax(&mut self, sort: bool) -> Result<(), SamplingError> {
        self.softmax_for("softmax", sort)
    }

    pub(crate) fn softmax_for(
        &mut self,
        sampler: &'static str,
        sort: bool,
    ) -> Result<(), SamplingError> {
        if self.data.is_empty() {
            return Err(SamplingError::EmptyCandidates { sampler });
        }
        if sort && !self.sorted {
            self.sort_descending();
        }
        let max = self.max_logit().unwrap_or(f32::NEG_INFINITY);
        if max == f32::NEG_INFINITY {
            return Err(SamplingError::AllMasked {
                sampler,
                n: self.data.len(),
            });
        }
        let mut sum = 0.0f32;
        for c in &mut self.data {
            let p = (c.logit - max).exp();
            c.p = p;
            sum += p;
        }
        for c in &mut self.data {
            c.p /= sum;
        }
        self.normalized = true;
        Ok(())
    }

    /// Sorts by descending logit (ties by ascending id).
    pub fn sort_descending(&mut self) {
        if !self.sorted {
            self.data.sort_unstable_by(by_logit_desc);
            self.sorted = true;
        }
    }

    /// Keeps the `k` candidates of highest logit, sorted (ties keep the lower id). `k = 0`
    /// leaves the set as it is; `k` at least the size sorts the whole set.
    ///
    /// One pass with a `k`-element min-heap whose root is the threshold to beat: on a
    /// vocabulary of 262,144 almost every candidate costs one comparison, with no allocation
    /// once the scratch buffer has grown. Above 1,024, a linear-time selection and a sort of
    /// the `k` kept.
    pub fn truncate_top_k(&mut self, k: usize) {
        let n = self.data.len();
        if k == 0 {
            return;
        }
        if k >= n {
            self.sort_descending();
            return;
        }
        if self.sorted {
            self.truncate(k);
            return;
        }
        if k > HEAP_TOP_K_MAX {
            // A large k makes the heap churn: select in linear time, then sort the k.
            self.sort_prefix(k);
            self.data.truncate(k);
            self.sorted = true;
            self.normalized = false;
            return;
        }
        let heap = &mut self.scratch;
        heap.clear();
        heap.extend_from_slice(&self.data[..k]);
        for i in (0..k / 2).rev() {
            sift_down(heap, i);
        }
        let mut root = heap[0];
        for c in &self.data[k..] {
            if worse(&root, c) {
                heap[0] = *c;
                sift_down(heap, 0);
                root = heap[0];
            }
        }
        heap.sort_unstable_by(by_logit_desc);
        self.data.clear();
        self.data.extend_from_slice(heap);
        self.sorted = true;
        self.normalized = false;
    }

    /// Fills the set from one step's logits and keeps the top `k` in the same pass: the same
    /// result as [`Candidates::fill_from_logits`] then [`Candidates::truncate_top_k`], without
    /// writing a candidate per vocabulary entry. The logits are scanned 32 at a time against
    /// the heap's threshold (a comparison the compiler vectorises); only the rare chunk with a
    /// logit above it goes through the heap.
    ///
    /// # Errors
    /// As [`Candidates::fill_from_logits`]; the set is left empty then.
    pub fn fill_top_k(&mut self, logits: &[f32], k: usize) -> Result<(), SamplingError> {
        let n = logits.len();
        if k == 0 || k >= n || k > HEAP_TOP_K_MAX {
            self.fill_from_logits(logits)?;
            self.truncate_top_k(k);
            return Ok(());
        }
        self.data.clear();
        self.sorted = false;
        self.normalized = false;
        self.selected = None;
        let bad_at = |from: usize| -> SamplingError {
            let (token, &value) = logits
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, l)| !admissible(**l))
                .expect("a bad logit was seen");
            SamplingError::NonFiniteLogit { token, value }
        };
        if logits[..k].iter().any(|&l| !admissible(l)) {
            return Err(bad_at(0));
        }
        let heap = &mut self.scratch;
        heap.clear();
        heap.extend(logits[..k].iter().enumerate().map(|(i, &logit)| Candidate {
            id: i as TokenId,
            logit,
            p: 0.0,
        }));
        for i in (0..k / 2).rev() {
            sift_down(heap, i);
        }
        let mut root = heap[0];
        // Chunks of 32 logits: two branch-free reductions (any above the threshold? all
        // admissible?) the compiler turns into packed compares; the rare chunk that has a
        // logit above the threshold, or a bad one, takes the element-wise path.
        const CHUNK: usize = 32;
        let mut start = k;
        while start < n {
            let end = (start + CHUNK).min(n);
            let chunk = &logits[start..end];
            let threshold = root.logit;
            let mut above = false;
            let mut ok = true;
            for &l in chunk {
                above |= l >= threshold;
                ok &= l < f32::INFINITY;
            }
            if !ok {
                return Err(bad_at(start));
            }
            if above {
                for (j, &logit) in chunk.iter().enumerate() {
                    let c = Candidate {
                        id: (start + j) as TokenId,
                        logit,
                        p: 0.0,
                    };
                    if worse(&root, &c) {
                        heap[0] = c;
                        sift_down(heap, 0);
                        root = heap[0];
                    }
                }
            }
            start = end;
        }
        heap.sort_unstable_by(by_logit_desc);
        self.data.extend_from_slice(heap);
        self.sorted = true;
        Ok(())
    }

    /// Moves the `k` highest candidates, sorted, to the front; the rest follows unsorted
    /// (all of it ranks below the front). Returns whether the whole set is now sorted.
    pub(crate) fn sort_prefix(&mut self, k: usize) -> bool {
        if self.sorted {
            return true;
        }
        if k >= self.data.len() {
            self.sort_descending();
            return true;
        }
        if k > 0 {
            self.data.select_nth_unstable_by(k - 1, by_logit_desc);
            self.data[..k].sort_unstable_by(by_logit_desc);
        }
        false
    }

    /// Sorts the tail after a [`Candidates::sort_prefix`] of `k`, completing the sort.
    pub(crate) fn sort_after_prefix(&mut self, k: usize) {
        if !self.sorted {
            let from = k.min(self.data.len());
            self.data[from..].sort_unstable_by(by_logit_desc);
            self.sorted = true;
        }
    }
}

/// Restores the min-heap property (root = the worst candidate) below `i`.
fn sift_down(heap: &mut [Candidate], mut i: usize) {
    let n = heap.len();
    loop {
        let l = 2 * i + 1;
        if l >= n {
            return;
        }
        let r = l + 1;
        let w = if r < n && worse(&heap[r], &heap[l]) {
            r
        } else {
            l
        };
        if worse(&heap[w], &heap[i]) {
            heap.swap(w, i);
            i = w;
        } else {
            return;
        }
    }
}

impl<'a> IntoIterator for &'a Candidates {
    type Item = &'a Candidate;
    type IntoIter = std::slice::Iter<'a, Candidate>;
    fn into_iter(self) -> Self::IntoIter {
        self.data.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_k_largest_sorted_and_lower_ids_on_ties() {
        let logits = [0.5, 2.0, -1.0, 2.0, 7.0, 0.0, 2.0, f32::NEG_INFINITY];
        let mut c = Candidates::from_logits(&logits).unwrap();
        c.truncate_top_k(3);
        let ids: Vec<_> = c.iter().map(|c| c.id).collect();
        assert_eq!(ids, [4, 1, 3]);
        assert!(c.is_sorted());
    }

    #[test]
    fn bad_logits_are_errors_naming_the_token() {
        let e = Candidates::from_logits(&[0.0, f32::INFINITY]).unwrap_err();
        assert_eq!(
            e,
            SamplingError::NonFiniteLogit {
                token: 1,
                value: f32::INFINITY
            }
        );
        let mut c = Candidates::from_logits(&[f32::NEG_INFINITY; 3]).unwrap();
        assert!(matches!(
            c.softmax(false),
            Err(SamplingError::AllMasked { n: 3, .. })
        ));
        assert!(matches!(
            Candidates::new().softmax(true),
            Err(SamplingError::EmptyCandidates { .. })
        ));
    }

    #[test]
    fn fill_top_k_equals_fill_then_top_k() {
        let logits: Vec<f32> = (0..5000)
            .map(|i| (((i * 7919) % 1009) as f32 * 0.01).floor())
            .collect();
        for k in [0, 1, 7, 40, 999, 1024, 1025, 2000, 4999, 5000, 6000] {
            let mut sorted = Candidates::from_logits(&logits).unwrap();
            sorted.sort_descending();
            sorted.truncate(k.max(1).min(logits.len()));
            let mut a = Candidates::from_logits(&logits).unwrap();
            a.truncate_top_k(k);
            let mut b = Candidates::new();
            b.fill_top_k(&logits, k).unwrap();
            assert_eq!(a.as_slice(), b.as_slice(), "k = {k}");
            if k > 0 {
                assert_eq!(a.as_slice(), sorted.as_slice(), "k = {k}");
            }
            assert_eq!(a.is_sorted(), b.is_sorted());
        }
        let mut bad = logits.clone();
        bad[500] = f32::NAN;
        let e = Candidates::new().fill_top_k(&bad, 40).unwrap_err();
        assert!(matches!(
            e,
            SamplingError::NonFiniteLogit { token: 500, .. }
        ));
    }

    #[test]
    fn sort_prefix_then_tail_is_a_full_sort() {
        let logits: Vec<f32> = (0..100).map(|i| ((i * 37) % 101) as f32).collect();
        let mut c = Candidates::from_logits(&logits).unwrap();
        assert!(!c.sort_prefix(10));
        c.sort_after_prefix(10);
        let mut full = Candidates::from_logits(&logits).unwrap();
        full.sort_descending();
        assert_eq!(c.as_slice(), full.as_slice());
    }
}
