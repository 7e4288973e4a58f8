//! Instruction-set selection: which kernel set runs, chosen once at run time.
//!
//! The best set the CPU supports is detected on first use; the environment variable
//! `ZIGLAMA_KERNELS` (`scalar`, `avx2`, `avx512`, `neon`) caps it, so `ZIGLAMA_KERNELS=scalar`
//! forces the portable reference kernels everywhere. A set the CPU cannot run is ignored in
//! favour of the best one it can.

use std::fmt;
use std::sync::OnceLock;

/// A kernel set. Each quantized format has a scalar reference kernel and may have faster ones
/// for these instruction sets; [`Isa::active`] is the one the library uses.
///
/// ```
/// use ziglama_tensor::Isa;
/// let isa = Isa::active();
/// assert!(isa.is_supported());
/// assert!(Isa::Scalar.is_supported());
/// println!("kernels: {isa}");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Portable Rust, the specification every other set is tested against.
    Scalar,
    /// x86_64 with AVX2, FMA and F16C.
    Avx2,
    /// x86_64 with AVX-512 F, BW, DQ and VL (and everything of `Avx2`).
    Avx512,
    /// aarch64 with NEON (and the dot-product extension where present).
    Neon,
}

impl Isa {
    /// The kernel set in use: the best the CPU supports, capped by `ZIGLAMA_KERNELS`.
    /// Decided once per process.
    pub fn active() -> Isa {
        static ACTIVE: OnceLock<Isa> = OnceLock::new();
        *ACTIVE.get_or_init(|| {
            let best = Isa::detect();
            match std::env::var("ZIGLAMA_KERNELS")
                .ok()
                .and_then(|v| Isa::parse(&v))
            {
                Some(cap) if cap.is_supported() => cap,
                _ => best,
            }
        })
    }

    /// The best kernel set this CPU supports, ignoring `ZIGLAMA_KERNELS`.
    pub fn detect() -> Isa {
        [Isa::Avx512, Isa::Avx2, Isa::Neon]
            .into_iter()
            .find(|i| i.is_supported())
            .unwrap_or(Isa::Scalar)
    }

    /// Parses `scalar`, `avx2`, `avx512` or `neon` (any case).
    pub fn parse(s: &str) -> Option<Isa> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" | "none" => Some(Isa::Scalar),
            "avx2" => Some(Isa::Avx2),
            "avx512" => Some(Isa::Avx512),
            "neon" => Some(Isa::Neon),
            _ => None,
        }
    }

    /// Whether this CPU can run this kernel set.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                    && std::arch::is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.is_supported()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Whether AVX-512 VNNI (`vpdpbusd`) is available; AVX-512 kernels may use it.
    pub fn has_avx512_vnni() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            static VNNI: OnceLock<bool> = OnceLock::new();
            *VNNI.get_or_init(|| {
                Isa::Avx512.is_supported() && std::arch::is_x86_feature_detected!("avx512vnni")
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// The kernel sets this CPU supports, `Scalar` first.
    pub fn all_supported() -> Vec<Isa> {
        [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon]
            .into_iter()
            .filter(|i| i.is_supported())
            .collect()
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 if Isa::has_avx512_vnni() => "avx512+vnni",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        })
    }
}
