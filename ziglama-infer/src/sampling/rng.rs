//! The Mersenne Twister (MT19937, Matsumoto and Nishimura 1998) and the uniform draws built on
//! it, so that a seeded sampler picks the very tokens llama.cpp picks with the same seed.
//!
//! llama.cpp seeds a `std::mt19937` per sampler and draws through the C++ standard library:
//! `uniform_real_distribution<double>` takes two 32-bit outputs, low word first
//! (`(a + b * 2^32) / 2^64`), `uniform_real_distribution<float>` one (`a / 2^32` in f32), each
//! clamped below 1 (as GCC's libstdc++ does); `discrete_distribution` normalises the weights
//! in f64, takes their running sum (last entry set to 1) and returns the first index whose sum
//! is at least one double draw (no draw at all for fewer than two weights). Any
//! `rand_core::Rng` can stand in for MT19937; the draws below are defined for all of them.

use rand_core::{Infallible, SeedableRng, TryRng};

const N: usize = 624;
const M: usize = 397;

/// The 32-bit Mersenne Twister, `std::mt19937`: the same outputs for the same `u32` seed.
///
/// ```
/// use rand_core::Rng;
/// use ziglama_infer::sampling::Mt19937;
/// // The C++ standard requires the 10000th output of a default-seeded mt19937 to be 4123659995.
/// let mut rng = Mt19937::new(5489);
/// let last = (0..10000).map(|_| rng.next_u32()).last();
/// assert_eq!(last, Some(4123659995));
/// ```
#[derive(Clone, Debug)]
pub struct Mt19937 {
    state: Box<[u32; N]>,
    index: usize,
}

impl Mt19937 {
    /// Seeds the generator as `std::mt19937(seed)` does.
    pub fn new(seed: u32) -> Self {
        let mut state = Box::new([0u32; N]);
        state[0] = seed;
        for i in 1..N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self { state, index: N }
    }

    fn twist(&mut self) {
        let s = &mut self.state;
        for i in 0..N {
            let y = (s[i] & 0x8000_0000) | (s[(i + 1) % N] & 0x7fff_ffff);
            let mut v = s[(i + M) % N] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= 0x9908_b0df;
            }
            s[i] = v;
        }
        self.index = 0;
    }

    /// The next 32-bit output.
    pub fn generate(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

impl TryRng for Mt19937 {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.generate())
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let lo = u64::from(self.generate());
        Ok(lo | (u64::from(self.generate()) << 32))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(4) {
            let w = self.generate().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
        Ok(())
    }
}

impl SeedableRng for Mt19937 {
    type Seed = [u8; 4];
    fn from_seed(seed: [u8; 4]) -> Self {
        Self::new(u32::from_le_bytes(seed))
    }
}

/// A uniform double in `[0, 1)` from two 32-bit draws, as libstdc++'s
/// `generate_canonical<double, 53>` over a 32-bit engine.
pub fn uniform_f64<R: rand_core::Rng + ?Sized>(rng: &mut R) -> f64 {
    let lo = f64::from(rng.next_u32());
    let hi = f64::from(rng.next_u32());
    let r = (lo + hi * 4_294_967_296.0) / 18_446_744_073_709_551_616.0;
    if r >= 1.0 {
        1.0 - f64::EPSILON / 2.0
    } else {
        r
    }
}

/// A uniform float in `[0, 1)` from one 32-bit draw, as libstdc++'s
/// `generate_canonical<float, 24>`.
pub fn uniform_f32<R: rand_core::Rng + ?Sized>(rng: &mut R) -> f32 {
    let r = rng.next_u32() as f32 / 4_294_967_296.0f32;
    if r >= 1.0 {
        1.0 - f32::EPSILON / 2.0
    } else {
        r
    }
}

/// Draws an index with probability proportional to `weights`, as
/// `std::discrete_distribution<int>` does (see the module docs). Fewer than two weights give
/// index 0 without drawing.
pub fn discrete<R: rand_core::Rng + ?Sized>(
    weights: impl Iterator<Item = f32> + Clone,
    rng: &mut R,
) -> usize {
    let n = weights.clone().count();
    if n < 2 {
        return 0;
    }
    let sum: f64 = weights.clone().map(f64::from).sum();
    let u = uniform_f64(rng);
    let mut cum = 0.0f64;
    for (i, w) in weights.enumerate() {
        cum += f64::from(w) / sum;
        if i + 1 == n || cum >= u {
            return i;
        }
    }
    n - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_outputs_of_seed_5489() {
        let mut r = Mt19937::new(5489);
        assert_eq!(r.generate(), 3_499_211_612);
        assert_eq!(r.generate(), 581_869_302);
    }

    #[test]
    fn discrete_of_one_weight_does_not_draw() {
        let mut a = Mt19937::new(1);
        let b = a.clone();
        assert_eq!(discrete([0.3f32].into_iter(), &mut a), 0);
        assert_eq!(a.state, b.state);
        assert_eq!(a.index, b.index);
    }
}
