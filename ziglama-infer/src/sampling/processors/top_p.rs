//! Top-p, nucleus sampling (Holtzman et al. 2020, "The Curious Case of Neural Text
//! Degeneration").

use crate::sampling::{Candidates, LogitProcessor, SamplingError};

/// Keeps the smallest prefix of the candidates, by descending probability, whose cumulative
/// probability reaches `p`, and at least `min_keep`. `p = 1` disables it. llama.cpp's default
/// is 0.95 (min_keep 0). Leaves the set sorted with `p` the softmax over the set *before*
/// truncation (as llama.cpp does; a later softmax renormalises).
///
/// On an unsorted set larger than 1024, only the top 256 are sorted first, and the rest only
/// if the nucleus is not reached within them.
///
/// ```
/// use ziglama_infer::sampling::{Candidates, LogitProcessor, TopP};
/// let mut c = Candidates::from_logits(&[2.0, 1.0, 0.0, -1.0])?;
/// TopP::new(0.8, 1)?.apply(&mut c)?;
/// assert_eq!(c.len(), 2); // 0.64 + 0.24 >= 0.8
/// assert!(TopP::new(1.5, 1).is_err());
/// # Ok::<(), ziglama_infer::sampling::SamplingError>(())
/// ```
#[derive(Clone, Debug)]
pub struct TopP {
    p: f32,
    min_keep: usize,
}

impl TopP {
    /// Nucleus `p` in `[0, 1]`, keeping at least `min_keep`.
    ///
    /// # Errors
    /// `p` outside `[0, 1]` (NaN included).
    pub fn new(p: f32, min_keep: usize) -> Result<Self, SamplingError> {
        if !(0.0..=1.0).contains(&p) {
            return Err(SamplingError::param("top-p", "p", p, "[0, 1]"));
        }
        Ok(Self { p, min_keep })
    }
}

impl LogitProcessor for TopP {
    fn name(&self) -> &str {
        "top-p"
    }
    fn is_identity(&self) -> bool {
        self.p >= 1.0
    }
    fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
        if self.p >= 1.0 {
            return Ok(());
        }
        c.softmax_for("top-p", false)?;
        let n = c.data.len();
        let mut k = n;
        let mut all_sorted = c.sorted;
        if !all_sorted {
            if n > 1024 {
                k = 256;
                all_sorted = c.sort_prefix(k);
            } else {
                c.sort_descending();
                all_sorted = true;
            }
        }
        let mut cum = 0.0f32;
        let mut last = n;
        for i in 0..n {
            cum += c.data[i].p;
            if cum >= self.p && i + 1 >= self.min_keep {
                last = i + 1;
                break;
            }
            if !all_sorted && i + 1 == k {
                c.sort_after_prefix(k);
                all_sorted = true;
            }
        }
        // Only the kept prefix need be sorted, and it is.
        c.sorted = true;
        c.truncate(last);
        Ok(())
    }
}
