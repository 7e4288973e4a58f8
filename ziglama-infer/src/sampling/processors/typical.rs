//! Locally typical sampling (Meister et al. 2023, "Locally Typical Sampling", TACL).

use crate::sampling::{Candidates, LogitProcessor, SamplingError};

/// Keeps the candidates whose surprise `-ln p_i` is closest to the entropy `H` of the
/// distribution, in order of `|-ln p_i - H|`, until their cumulative probability exceeds `p`
/// (and at least `min_keep`). `p = 1` disables it (llama.cpp's default). Leaves the set in
/// that (unsorted) order with the probabilities of the full softmax.
#[derive(Clone, Debug)]
pub struct Typical {
    p: f32,
    min_keep: usize,
    order: Vec<(f32, u32)>,
}

impl Typical {
    /// Typical mass `p` in `[0, 1]`, keeping at least `min_keep`.
    ///
    /// # Errors
    /// `p` outside `[0, 1]`.
    pub fn new(p: f32, min_keep: usize) -> Result<Self, SamplingError> {
        if !(0.0..=1.0).contains(&p) {
            return Err(SamplingError::param("typical", "p", p, "[0, 1]"));
        }
        Ok(Self {
            p,
            min_keep,
            order: Vec::new(),
        })
    }
}

impl LogitProcessor for Typical {
    fn name(&self) -> &str {
        "typical"
    }
    fn is_identity(&self) -> bool {
        self.p >= 1.0
    }
    fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
        if self.p >= 1.0 {
            return Ok(());
        }
        c.softmax_for("typical", true)?;
        let mut entropy = 0.0f32;
        for x in &c.data {
            entropy += -x.p * x.p.ln();
        }
        self.order.clear();
        self.order.extend(
            c.data
                .iter()
                .enumerate()
                .map(|(i, x)| ((-x.p.ln() - entropy).abs(), i as u32)),
        );
        self.order
            .sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut cum = 0.0f32;
        let mut last = self.order.len();
        for (i, &(_, idx)) in self.order.iter().enumerate() {
            cum += c.data[idx as usize].p;
            if cum > self.p && (self.min_keep == 0 || i + 1 >= self.min_keep) {
                last = i + 1;
                break;
            }
        }
        c.scratch.clear();
        c.scratch
            .extend(self.order[..last].iter().map(|&(_, i)| c.data[i as usize]));
        std::mem::swap(&mut c.data, &mut c.scratch);
        c.sorted = false;
        c.normalized = false;
        Ok(())
    }
}
