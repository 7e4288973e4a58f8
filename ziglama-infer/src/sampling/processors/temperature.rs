//! Temperature scaling, fixed (llama.cpp's `temp`) and entropy-driven (`temp_ext`, dynamic
//! temperature: Zhu et al. 2024, "Hot or Cold? Adaptive Temperature Sampling for Code
//! Generation with Large Language Models", and kalomaze's DynaTemp).

use crate::sampling::{Candidates, LogitProcessor, SamplingError};

/// Divides logits by `temp`; `temp <= 0` keeps only the largest logit (the others become
/// `-inf`, the first maximum wins), as llama.cpp's temperature does.
pub(crate) fn scale(c: &mut Candidates, temp: f32) {
    if c.data.is_empty() {
        return;
    }
    if temp <= 0.0 {
        let mut max_i = 0;
        let mut max_l = c.data[0].logit;
        for i in 1..c.data.len() {
            if c.data[i].logit > max_l {
                c.data[max_i].logit = f32::NEG_INFINITY;
                max_i = i;
                max_l = c.data[i].logit;
            } else {
                c.data[i].logit = f32::NEG_INFINITY;
            }
        }
    } else {
        for x in &mut c.data {
            x.logit /= temp;
        }
    }
    c.normalized = false;
}

fn check_temp(sampler: &'static str, temp: f32) -> Result<f32, SamplingError> {
    if temp.is_finite() {
        Ok(temp)
    } else {
        Err(SamplingError::param(sampler, "temp", temp, "finite values"))
    }
}

/// Temperature: `l_i / T`. Below 1 sharpens the distribution, above 1 flattens it; `T <= 0`
/// keeps only the most probable token (greedy). llama.cpp's default is 0.8.
///
/// ```
/// use ziglama_infer::sampling::{Candidates, LogitProcessor, Temperature};
/// let mut c = Candidates::from_logits(&[1.0, 2.0])?;
/// Temperature::new(0.5)?.apply(&mut c)?;
/// assert_eq!(c.as_slice()[1].logit, 4.0);
/// # Ok::<(), ziglama_infer::sampling::SamplingError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Temperature {
    temp: f32,
}

impl Temperature {
    /// A temperature of `temp`.
    ///
    /// # Errors
    /// A non-finite `temp`.
    pub fn new(temp: f32) -> Result<Self, SamplingError> {
        Ok(Self {
            temp: check_temp("temp", temp)?,
        })
    }
}

impl LogitProcessor for Temperature {
    fn name(&self) -> &str {
        "temp"
    }
    fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
        scale(c, self.temp);
        Ok(())
    }
}

/// Dynamic temperature (llama.cpp's `temp_ext`): the temperature moves in
/// `[max(0, temp - delta), temp + delta]` with the normalised entropy `H / ln n` of the
/// current distribution, `T = T_min + (T_max - T_min) * (H / ln n)^exponent`; with
/// `delta <= 0` it is plain [`Temperature`]. Sorts the candidates and leaves them normalised
/// (softmax in f64, as llama.cpp).
#[derive(Clone, Debug)]
pub struct DynamicTemperature {
    temp: f32,
    delta: f32,
    exponent: f32,
}

impl DynamicTemperature {
    /// Base temperature `temp`, range `delta`, `exponent` (llama.cpp defaults: 0.8, 0, 1).
    ///
    /// # Errors
    /// Non-finite parameters.
    pub fn new(temp: f32, delta: f32, exponent: f32) -> Result<Self, SamplingError> {
        for (name, v) in [("delta", delta), ("exponent", exponent)] {
            if !v.is_finite() {
                return Err(SamplingError::param("temp-ext", name, v, "finite values"));
            }
        }
        Ok(Self {
            temp: check_temp("temp-ext", temp)?,
            delta,
            exponent,
        })
    }
}

impl LogitProcessor for DynamicTemperature {
    fn name(&self) -> &str {
        "temp-ext"
    }
    fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
        if self.delta <= 0.0 {
            scale(c, self.temp);
            return Ok(());
        }
        let min_temp = (self.temp - self.delta).max(0.0);
        let max_temp = self.temp + self.delta;
        let n = c.data.len();
        if n <= 1 {
            return Ok(());
        }
        let max_entropy = -(1.0f32 / n as f32).ln();
        c.softmax_for("temp-ext", true)?;
        let mut entropy = 0.0f32;
        for x in &c.data {
            if x.p > 0.0 {
                entropy -= x.p * x.p.ln();
            }
        }
        let normalized_entropy = entropy / max_entropy;
        let dyn_temp = min_temp + (max_temp - min_temp) * normalized_entropy.powf(self.exponent);
        scale(c, dyn_temp);
        let max_l = f64::from(c.data[0].logit);
        let mut sum = 0.0f64;
        for x in &mut c.data {
            let p = (f64::from(x.logit) - max_l).exp();
            x.p = p as f32;
            sum += p;
        }
        for x in &mut c.data {
            x.p = (f64::from(x.p) / sum) as f32;
        }
        c.normalized = true;
        Ok(())
    }
}
