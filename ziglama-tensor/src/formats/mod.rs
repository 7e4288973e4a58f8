//! The GGML block formats: one file per format, one row per format in [`REGISTRY`].
//!
//! The float types are their own blocks of one element (`f32`, [`half::f16`], [`half::bf16`]).
//! Each quantized format's file holds the `#[repr(C)]` block struct (with a compile-time size check), its
//! [`Block::dequantize`], its [`Quantize::quantize`] where ggml has a reference quantizer, and
//! its scalar [`VecDot::vec_dot`] against the activation format ggml pairs it with. SIMD kernels
//! for a format live under [`crate::simd`] and are attached through [`VecDot::KERNELS`]; the
//! scalar kernel is the specification they are tested against.
//!
//! Adding a format means: one file here, one row in [`REGISTRY`], one variant of
//! [`GgmlType`], and its test data.
//!
//! ```
//! use ziglama_tensor::formats::{dequantize_row, quantize_row};
//! use ziglama_tensor::GgmlType;
//! let x: Vec<f32> = (0..64).map(|i| i as f32 / 8.0 - 4.0).collect();
//! let mut q = vec![0u8; GgmlType::Q8_0.row_size(64).unwrap()];
//! quantize_row(GgmlType::Q8_0, &x, &mut q).unwrap();
//! let mut y = vec![0f32; 64];
//! dequantize_row(GgmlType::Q8_0, &q, &mut y).unwrap();
//! assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() < 0.02));
//! ```

use crate::error::{Result, TensorError};
use crate::{GgmlType, Isa};

pub mod bf16;
pub mod f16;
pub mod f32;
pub mod iq4_nl;
pub mod iq4_xs;
pub mod q2_k;
pub mod q3_k;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q5_0;
pub mod q5_1;
pub mod q5_k;
pub mod q6_k;
pub mod q8_0;
pub mod q8_1;
pub mod q8_k;

pub use self::iq4_nl::BlockIQ4_NL;
pub use self::iq4_xs::BlockIQ4_XS;
pub use self::q2_k::BlockQ2_K;
pub use self::q3_k::BlockQ3_K;
pub use self::q4_0::BlockQ4_0;
pub use self::q4_1::BlockQ4_1;
pub use self::q4_k::BlockQ4_K;
pub use self::q5_0::BlockQ5_0;
pub use self::q5_1::BlockQ5_1;
pub use self::q5_k::BlockQ5_K;
pub use self::q6_k::BlockQ6_K;
pub use self::q8_0::BlockQ8_0;
pub use self::q8_1::BlockQ8_1;
pub use self::q8_k::BlockQ8_K;

/// Elements per super-block of the k-quant formats (ggml's `QK_K`).
pub const QK_K: usize = 256;

/// A block of a GGML format: `BLOCK_SIZE` elements stored in `size_of::<Self>()` bytes.
pub trait Block: bytemuck::Pod + Send + Sync + 'static {
    /// The GGML type this block belongs to.
    const TYPE: GgmlType;
    /// Elements per block.
    const BLOCK_SIZE: usize;
    /// Expands `blocks` into `out`, which holds exactly `blocks.len() * BLOCK_SIZE` values.
    fn dequantize(blocks: &[Self], out: &mut [f32]);
}

/// A format with a reference quantizer, byte-identical to ggml's `quantize_row_*_ref`.
pub trait Quantize: Block {
    /// Quantizes `x` (exactly `out.len() * BLOCK_SIZE` values) into `out`.
    fn quantize(x: &[f32], out: &mut [Self]);

    /// The quantizer llama.cpp's CPU backend applies to activations before a dot product;
    /// defaults to the reference ([`Quantize::quantize`]). Same contract as `quantize`.
    ///
    /// Q8_0 and Q8_1 override it: ggml-cpu's `quantize_row_q8_0` / `quantize_row_q8_1` are
    /// not its reference quantizers (on x86 they multiply by `127 / amax` and round half to
    /// even), and matching llama.cpp's logits to the last bit needs the same quants.
    fn quantize_activation(x: &[f32], out: &mut [Self]) {
        Self::quantize(x, out)
    }
}

/// A weight format's dot product with the activation format ggml pairs it with.
pub trait VecDot: Block {
    /// The format activations are quantized to before the dot product (ggml's
    /// `vec_dot_type`). Both slices of a dot product cover the same number of elements.
    type Activation: Quantize;
    /// The scalar reference: the specification every SIMD kernel is tested against.
    /// `a` covers as many elements as `w`.
    fn vec_dot(w: &[Self], a: &[Self::Activation]) -> f32;
    /// SIMD versions of [`VecDot::vec_dot`], per instruction set.
    const KERNELS: Kernels<Self> = Kernels::NONE;
    /// Four-row versions of [`VecDot::KERNELS`]: each slot computes four weight rows against
    /// one activation row, every result bit-identical to the single-row kernel in the same
    /// slot (so the four independent accumulator chains overlap without changing the order
    /// of any row's operations). An empty slot falls back to four single-row calls.
    const KERNELS4: Kernels4<Self> = Kernels4::NONE;
    /// GEMM tile versions of [`VecDot::KERNELS`]: each slot computes [`TILE_ROWS`] weight
    /// rows against [`TILE_COLS`] activation rows, every one of the results bit-identical to
    /// the single-row kernel in the same slot on that pair of rows (each output keeps its
    /// own accumulator, updated in exactly the single-row order; what is shared is the
    /// loading and unpacking of the weight and activation blocks). An empty slot falls back
    /// to single-row calls.
    const TILES: Tiles<Self> = Tiles::NONE;
    /// A GEMM panel version of the AVX-512 VNNI kernel ([`Kernels::avx512_vnni`]): every
    /// output bit-identical to that single-row kernel on its pair of rows. A wide panel: it
    /// takes any number of weight rows (see [`DotKernel::call_panel`]). `None`: tiles or
    /// single-row calls.
    const PANEL_VNNI: Option<RawPanel<Self>> = None;

    /// The kernels `matmul` uses for `n_out` weight rows times `n_rows` activation rows with
    /// the kernels of `isa` (or the best below it this CPU supports). By default
    /// [`DotKernel::select`] for every activation row. A format whose summation order in
    /// llama.cpp depends on the shape of the product (the k-quants on x86: a repacked
    /// matrix-matrix order for groups of four activation rows, a matrix-vector order for the
    /// rest, a tiled order for large batches of weights it does not repack) overrides this
    /// to give each activation row the kernel of llama.cpp's order.
    fn batch_kernels(n_out: usize, n_rows: usize, isa: Isa) -> BatchKernels<Self> {
        let _ = (n_out, n_rows);
        BatchKernels::uniform(DotKernel::select(isa))
    }
}

/// The kernels of one matrix product ([`VecDot::batch_kernels`]): activation rows
/// `0..split` go through `head` (through its tile kernel where it has one, in groups of
/// [`TILE_COLS`] starting at row 0), the rest through `tail`.
pub struct BatchKernels<W: VecDot> {
    /// The first activation row that goes through `tail`.
    pub split: usize,
    /// The kernel of activation rows `0..split`.
    pub head: DotKernel<W>,
    /// The kernel of activation rows `split..`.
    pub tail: DotKernel<W>,
}

impl<W: VecDot> BatchKernels<W> {
    /// `kernel` for every activation row.
    pub fn uniform(kernel: DotKernel<W>) -> Self {
        BatchKernels {
            split: 0,
            head: kernel,
            tail: kernel,
        }
    }

    /// The kernel of activation row `j`.
    pub fn for_row(&self, j: usize) -> &DotKernel<W> {
        if j < self.split {
            &self.head
        } else {
            &self.tail
        }
    }
}

/// Weight rows of a GEMM tile ([`RawTile`]).
pub const TILE_ROWS: usize = 4;
/// Activation rows of a GEMM tile ([`RawTile`]).
pub const TILE_COLS: usize = 4;

/// An instruction-set-specific GEMM tile kernel: the dot products of [`TILE_ROWS`] weight rows
/// with [`TILE_COLS`] activation rows, `out[r][c]` for weight row `r` and activation row `c`,
/// each bit-identical to the single-row [`RawDot`] kernel of the same slot on `(w[r], a[c])`.
/// All rows must have the same length in elements. Calling it is sound only on a CPU that has
/// the features it was compiled for; [`DotKernel`] guarantees that.
pub type RawTile<W> = unsafe fn(
    [&[W]; TILE_ROWS],
    [&[<W as VecDot>::Activation]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS];

/// The GEMM tile kernels a format has, by instruction set, with the slots of [`Kernels`]
/// (`None`: single-row calls of that slot).
pub struct Tiles<W: VecDot> {
    /// AVX2 + FMA + F16C; pairs with [`Kernels::avx2`].
    pub avx2: Option<RawTile<W>>,
    /// AVX-512 F/BW/DQ/VL; pairs with [`Kernels::avx512`].
    pub avx512: Option<RawTile<W>>,
    /// AVX-512 with VNNI; pairs with [`Kernels::avx512_vnni`].
    pub avx512_vnni: Option<RawTile<W>>,
    /// NEON; pairs with [`Kernels::neon`].
    pub neon: Option<RawTile<W>>,
}

impl<W: VecDot> Tiles<W> {
    /// No tile kernels: every slot falls back to single-row calls.
    pub const NONE: Tiles<W> = Tiles {
        avx2: None,
        avx512: None,
        avx512_vnni: None,
        neon: None,
    };
}

/// Weight rows of a GEMM panel ([`RawPanel`]), at most.
pub const PANEL_ROWS: usize = 16;

/// An instruction-set-specific GEMM panel kernel: the dot products of up to [`PANEL_ROWS`]
/// weight rows `w` (all of the same length; any number for a wide panel, see
/// [`DotKernel::call_panel`]) with every activation row of `a` (consecutive rows of that
/// length), the result of weight row `r` and activation row `j` written to
/// `out[j * stride + r]`, each bit-identical to the single-row [`RawDot`] kernel of the same
/// kernel on that pair. A panel kernel repacks its weight rows once (one SIMD lane per weight
/// row) and reuses them for every activation row, so a batch pays for unpacking the weights
/// once per panel instead of once per activation row. Calling it is sound only on a CPU that
/// has the features it was compiled for, with `w` non-empty and at most [`PANEL_ROWS`] long
/// (for a narrow panel) and `out` long enough; [`DotKernel::call_panel`] checks both.
pub type RawPanel<W> = unsafe fn(&[&[W]], &[<W as VecDot>::Activation], &mut [f32], usize);

/// An instruction-set-specific dot-product kernel. Calling it is sound only on a CPU that has
/// the features the kernel was compiled for; [`DotKernel`] guarantees that.
pub type RawDot<W> = unsafe fn(&[W], &[<W as VecDot>::Activation]) -> f32;

/// The SIMD kernels a format has, by instruction set (`None`: that set falls back to the next
/// lower one, and finally to the scalar reference).
pub struct Kernels<W: VecDot> {
    /// AVX2 + FMA + F16C.
    pub avx2: Option<RawDot<W>>,
    /// AVX-512 F/BW/DQ/VL.
    pub avx512: Option<RawDot<W>>,
    /// AVX-512 with VNNI; preferred over `avx512` where the CPU has VNNI.
    pub avx512_vnni: Option<RawDot<W>>,
    /// NEON.
    pub neon: Option<RawDot<W>>,
}

impl<W: VecDot> Kernels<W> {
    /// No SIMD kernels: the scalar reference everywhere.
    pub const NONE: Kernels<W> = Kernels {
        avx2: None,
        avx512: None,
        avx512_vnni: None,
        neon: None,
    };
}

/// An instruction-set-specific kernel computing the dot products of four weight rows with one
/// activation row. Each row must be bit-identical to the single-row [`RawDot`] kernel of the
/// same slot on that row. Calling it is sound only on a CPU that has the features it was
/// compiled for; [`DotKernel`] guarantees that. It reads `min` over the four rows and the
/// activation of their lengths in blocks.
pub type RawDot4<W> = unsafe fn([&[W]; 4], &[<W as VecDot>::Activation]) -> [f32; 4];

/// The four-row kernels a format has, by instruction set, with the slots of [`Kernels`] (`None`:
/// four calls of the single-row kernel of that slot).
pub struct Kernels4<W: VecDot> {
    /// AVX2 + FMA + F16C; pairs with [`Kernels::avx2`].
    pub avx2: Option<RawDot4<W>>,
    /// AVX-512 F/BW/DQ/VL; pairs with [`Kernels::avx512`].
    pub avx512: Option<RawDot4<W>>,
    /// AVX-512 with VNNI; pairs with [`Kernels::avx512_vnni`].
    pub avx512_vnni: Option<RawDot4<W>>,
    /// NEON; pairs with [`Kernels::neon`].
    pub neon: Option<RawDot4<W>>,
}

impl<W: VecDot> Kernels4<W> {
    /// No four-row kernels: every slot falls back to four single-row calls.
    pub const NONE: Kernels4<W> = Kernels4 {
        avx2: None,
        avx512: None,
        avx512_vnni: None,
        neon: None,
    };
}

/// A dot-product kernel of weight format `W` that is safe to call on this CPU.
///
/// ```
/// use ziglama_tensor::formats::{BlockQ8_0, DotKernel, Quantize};
/// use ziglama_tensor::Isa;
/// let x: Vec<f32> = (0..32).map(|i| i as f32).collect();
/// let mut q = [bytemuck::Zeroable::zeroed()];
/// BlockQ8_0::quantize(&x, &mut q);
/// let k = DotKernel::<BlockQ8_0>::select(Isa::active());
/// let dot = k.call(&q, &q);
/// // Q8_0 keeps about 2.5 significant digits per value.
/// assert!((dot - x.iter().map(|v| v * v).sum::<f32>()).abs() / dot < 2e-3);
/// ```
pub struct DotKernel<W: VecDot> {
    f: RawDot<W>,
    /// The four-row kernel of the same slot as `f`, if the format has one.
    f4: Option<RawDot4<W>>,
    /// The GEMM tile kernel of the same slot as `f`, if the format has one.
    tile: Option<RawTile<W>>,
    /// The GEMM panel kernel of the same order as `f`, if there is one.
    panel: Option<RawPanel<W>>,
    /// Whether `panel` takes any number of weight rows (else at most [`PANEL_ROWS`]).
    wide_panel: bool,
    isa: Isa,
    name: &'static str,
}

impl<W: VecDot> Clone for DotKernel<W> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<W: VecDot> Copy for DotKernel<W> {}

impl<W: VecDot> DotKernel<W> {
    /// The best kernel of `W` at or below `isa` that this CPU can run.
    pub fn select(isa: Isa) -> Self {
        Self::variants()
            .into_iter()
            .rev()
            .find(|k| k.isa <= isa && (isa == Isa::Neon || k.isa != Isa::Neon))
            .unwrap_or_else(Self::scalar)
    }

    /// The scalar reference kernel.
    pub fn scalar() -> Self {
        DotKernel {
            f: W::vec_dot as RawDot<W>,
            f4: None,
            tile: None,
            panel: None,
            wide_panel: false,
            isa: Isa::Scalar,
            name: "scalar",
        }
    }

    /// Every kernel of `W` this CPU can run, scalar first and the preferred one last: for
    /// testing each against the reference, and for benches.
    pub fn variants() -> Vec<Self> {
        let (k, k4, t) = (&W::KERNELS, &W::KERNELS4, &W::TILES);
        let candidates = [
            (k.avx2, k4.avx2, t.avx2, Isa::Avx2, "avx2", true),
            (k.avx512, k4.avx512, t.avx512, Isa::Avx512, "avx512", true),
            (
                k.avx512_vnni,
                k4.avx512_vnni,
                t.avx512_vnni,
                Isa::Avx512,
                "avx512_vnni",
                Isa::has_avx512_vnni(),
            ),
            (k.neon, k4.neon, t.neon, Isa::Neon, "neon", true),
        ];
        let mut out = vec![Self::scalar()];
        for (f, f4, tile, isa, name, extra) in candidates {
            let panel = if name == "avx512_vnni" {
                W::PANEL_VNNI
            } else {
                None
            };
            if let Some(f) = f.filter(|_| extra && isa.is_supported()) {
                // The four-row and tile kernels of a slot need the same features as the
                // single-row one. `PANEL_VNNI` panels are wide.
                out.push(DotKernel {
                    f,
                    f4,
                    tile,
                    panel,
                    wide_panel: panel.is_some(),
                    isa,
                    name,
                });
            }
        }
        out
    }

    /// The kernel's name: `scalar`, `avx2`, `avx512`, `avx512_vnni` or `neon`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The instruction set this kernel uses.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The dot product of weight blocks `w` with activation blocks `a` covering the same
    /// number of elements. Panics in debug builds if they do not.
    #[inline]
    pub fn call(&self, w: &[W], a: &[W::Activation]) -> f32 {
        debug_assert_eq!(
            w.len() * W::BLOCK_SIZE,
            a.len() * <W::Activation as Block>::BLOCK_SIZE
        );
        // SAFETY: `variants` (through which `select` goes) only stores a kernel whose
        // instruction set `is_supported()` on this CPU (and VNNI kernels only when VNNI is
        // detected); the scalar kernel is safe code.
        unsafe { (self.f)(w, a) }
    }

    /// Whether this kernel has a four-row version (else [`DotKernel::call4`] makes four
    /// [`DotKernel::call`]s).
    pub fn has_rows4(&self) -> bool {
        self.f4.is_some()
    }

    /// The dot products of four weight rows with one activation row: element `r` is
    /// bit-identical to `self.call(w[r], a)`. Uses the four-row kernel of the same variant
    /// (instruction set and VNNI choice) when the format has one and the four rows have the
    /// same length, else four [`DotKernel::call`]s.
    #[inline]
    pub fn call4(&self, w: [&[W]; 4], a: &[W::Activation]) -> [f32; 4] {
        let n = w[0].len();
        match self.f4 {
            Some(f4) if w.iter().all(|r| r.len() == n) => {
                debug_assert_eq!(
                    n * W::BLOCK_SIZE,
                    a.len() * <W::Activation as Block>::BLOCK_SIZE
                );
                // SAFETY: `f4` is only stored by `variants`, together with the single-row
                // kernel of the same slot, when that slot's instruction set is supported on
                // this CPU (VNNI slots only when VNNI is detected).
                unsafe { f4(w, a) }
            }
            _ => w.map(|r| self.call(r, a)),
        }
    }
}

impl<W: VecDot> DotKernel<W> {
    /// Whether this kernel has a GEMM tile version (else [`DotKernel::call_tile`] makes
    /// single-row calls).
    pub fn has_tile(&self) -> bool {
        self.tile.is_some()
    }

    /// The dot products of [`TILE_ROWS`] weight rows with [`TILE_COLS`] activation rows:
    /// `out[r][c]` is bit-identical to `self.call(w[r], a[c])`. Uses the tile kernel of the
    /// same variant when the format has one and all rows have the same length, else
    /// single-row calls.
    #[inline]
    pub fn call_tile(
        &self,
        w: [&[W]; TILE_ROWS],
        a: [&[W::Activation]; TILE_COLS],
    ) -> [[f32; TILE_COLS]; TILE_ROWS] {
        let n = w[0].len();
        let same = w.iter().all(|r| r.len() == n)
            && a.iter()
                .all(|r| r.len() * <W::Activation as Block>::BLOCK_SIZE == n * W::BLOCK_SIZE);
        match self.tile {
            Some(t) if same => {
                // SAFETY: `tile` is only stored by `variants`, together with the single-row
                // kernel of the same slot, when that slot's instruction set is supported on
                // this CPU (VNNI slots only when VNNI is detected); all rows have the same
                // length, as the tile kernels require.
                unsafe { t(w, a) }
            }
            _ => w.map(|wr| a.map(|ar| self.call(wr, ar))),
        }
    }
}

impl<W: VecDot> DotKernel<W> {
    /// A kernel from its parts (for the formats' order-specific kernel choices).
    pub(crate) fn from_parts(
        f: RawDot<W>,
        f4: Option<RawDot4<W>>,
        tile: Option<RawTile<W>>,
        panel: Option<RawPanel<W>>,
        isa: Isa,
        name: &'static str,
    ) -> Self {
        DotKernel {
            f,
            f4,
            tile,
            panel,
            wide_panel: false,
            isa,
            name,
        }
    }

    /// This kernel with its panel marked wide: it takes any number of weight rows in one call
    /// (and does the splitting into groups of [`PANEL_ROWS`] itself, sharing the work done
    /// once per activation row across all of them).
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn with_wide_panel(mut self) -> Self {
        self.wide_panel = true;
        self
    }

    /// Whether this kernel has a GEMM panel version (else [`DotKernel::call_panel`] makes
    /// single-row calls).
    pub fn has_panel(&self) -> bool {
        self.panel.is_some()
    }

    /// The dot products of the weight rows `w` (any number, all of the same length) with
    /// every activation row of `a` (consecutive rows of that length in elements): the result
    /// of weight row `r` and activation row `j` goes to `out[j * stride + r]`, bit-identical
    /// to `self.call(w[r], a_j)`. Uses the panel kernel when there is one (a wide one once,
    /// a narrow one per group of [`PANEL_ROWS`] rows), else single-row calls.
    ///
    /// # Panics
    /// If `w` is empty, its rows differ in length, `a` is not a whole number of rows,
    /// `stride < w.len()` with more than one activation row, or `out` is too short.
    pub fn call_panel(&self, w: &[&[W]], a: &[W::Activation], out: &mut [f32], stride: usize) {
        assert!(!w.is_empty(), "panel of no rows");
        let nb = w[0].len();
        assert!(
            w.iter().all(|r| r.len() == nb),
            "panel rows of different lengths"
        );
        let a_row = nb * W::BLOCK_SIZE / <W::Activation as Block>::BLOCK_SIZE;
        assert!(
            a_row > 0 && a.len().is_multiple_of(a_row),
            "activation rows of {a_row} blocks"
        );
        let n = a.len() / a_row;
        if n == 0 {
            return;
        }
        assert!(
            n == 1 || stride >= w.len(),
            "stride {stride} < {} rows",
            w.len()
        );
        assert!(
            out.len() >= (n - 1) * stride + w.len(),
            "panel output too short"
        );
        match self.panel {
            // SAFETY: `panel` is only stored, together with the single-row kernel of the
            // same order, when the instruction set it needs is supported on this CPU; the
            // shapes were checked above (a narrow panel gets at most PANEL_ROWS rows).
            Some(p) if self.wide_panel => unsafe { p(w, a, out, stride) },
            Some(p) => {
                for (i, w) in w.chunks(PANEL_ROWS).enumerate() {
                    // SAFETY: as above.
                    unsafe { p(w, a, &mut out[i * PANEL_ROWS..], stride) }
                }
            }
            None => {
                for (j, a) in a.chunks_exact(a_row).enumerate() {
                    for (r, w) in w.iter().enumerate() {
                        out[j * stride + r] = self.call(w, a);
                    }
                }
            }
        }
    }
}

/// One row of the format registry: what every layer needs to know about a type.
pub struct TypeTraits {
    /// The type.
    pub ty: GgmlType,
    /// The name GGUF tools print.
    pub name: &'static str,
    /// Elements per block.
    pub block_size: usize,
    /// Bytes per block.
    pub type_size: usize,
    /// Alignment of the block struct; byte buffers must be aligned to it.
    pub align: usize,
    /// The activation type of the dot product (ggml's `vec_dot_type`).
    pub vec_dot_type: GgmlType,
    dequantize: fn(&[u8], &mut [f32]),
    quantize: Option<QuantizeFn>,
    pub(crate) matmul: MatmulFn,
}

type QuantizeFn = fn(&[f32], &mut [u8]);

type MatmulFn = fn(&crate::Tensor, &[f32], &mut [f32], &crate::ThreadPool, Isa) -> Result<()>;

fn dequantize_bytes<B: Block>(bytes: &[u8], out: &mut [f32]) {
    B::dequantize(bytemuck::cast_slice(bytes), out)
}

fn quantize_bytes<B: Quantize>(x: &[f32], out: &mut [u8]) {
    B::quantize(x, bytemuck::cast_slice_mut(out))
}

const fn row<B: VecDot>(name: &'static str) -> TypeTraits {
    TypeTraits {
        ty: B::TYPE,
        name,
        block_size: B::BLOCK_SIZE,
        type_size: std::mem::size_of::<B>(),
        align: std::mem::align_of::<B>(),
        vec_dot_type: <B::Activation as Block>::TYPE,
        dequantize: dequantize_bytes::<B>,
        quantize: None,
        matmul: crate::matmul::matmul_typed::<B>,
    }
}

const fn quantizable<B: VecDot + Quantize>(name: &'static str) -> TypeTraits {
    TypeTraits {
        quantize: Some(quantize_bytes::<B>),
        ..row::<B>(name)
    }
}

/// The format registry, one row per supported type, in [`GgmlType::ALL`] order.
pub static REGISTRY: &[TypeTraits] = &[
    quantizable::<f32>("F32"),
    quantizable::<half::f16>("F16"),
    quantizable::<BlockQ4_0>("Q4_0"),
    quantizable::<BlockQ4_1>("Q4_1"),
    quantizable::<BlockQ5_0>("Q5_0"),
    quantizable::<BlockQ5_1>("Q5_1"),
    quantizable::<BlockQ8_0>("Q8_0"),
    quantizable::<BlockQ8_1>("Q8_1"),
    row::<BlockQ2_K>("Q2_K"),
    row::<BlockQ3_K>("Q3_K"),
    quantizable::<BlockQ4_K>("Q4_K"),
    row::<BlockQ5_K>("Q5_K"),
    quantizable::<BlockQ6_K>("Q6_K"),
    quantizable::<BlockQ8_K>("Q8_K"),
    row::<BlockIQ4_NL>("IQ4_NL"),
    row::<BlockIQ4_XS>("IQ4_XS"),
    quantizable::<half::bf16>("BF16"),
];

/// The registry row of `ty`.
pub fn traits(ty: GgmlType) -> &'static TypeTraits {
    REGISTRY
        .iter()
        .find(|t| t.ty == ty)
        .unwrap_or_else(|| unreachable!("format registry has no row for {ty:?}"))
}

fn check_bytes(op: &'static str, t: &TypeTraits, n: usize, bytes: &[u8]) -> Result<()> {
    let expected = t.ty.row_size(n)?;
    if bytes.len() != expected {
        return Err(TensorError::LengthMismatch {
            op,
            expected,
            actual: bytes.len(),
            unit: "bytes",
        });
    }
    let offset = bytes.as_ptr() as usize % t.align;
    if offset != 0 {
        return Err(TensorError::Misaligned {
            op,
            ty: t.ty,
            offset,
            align: t.align,
        });
    }
    Ok(())
}

/// Dequantizes `bytes` (whole blocks of `ty`) into `out`, which must hold exactly the number
/// of elements the blocks store.
pub fn dequantize_row(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<()> {
    let t = traits(ty);
    check_bytes("dequantize", t, out.len(), bytes)?;
    (t.dequantize)(bytes, out);
    Ok(())
}

/// Quantizes `x` into `out` (whole blocks of `ty`) with ggml's reference quantizer.
pub fn quantize_row(ty: GgmlType, x: &[f32], out: &mut [u8]) -> Result<()> {
    let t = traits(ty);
    let q = t
        .quantize
        .ok_or(TensorError::NotAvailable { op: "quantize", ty })?;
    check_bytes("quantize", t, x.len(), out)?;
    q(x, out);
    Ok(())
}

/// Whether `ty` has a reference quantizer.
pub fn can_quantize(ty: GgmlType) -> bool {
    traits(ty).quantize.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_has_one_row_per_type_in_order() {
        let tys: Vec<_> = REGISTRY.iter().map(|t| t.ty).collect();
        assert_eq!(tys, GgmlType::ALL.to_vec());
        for t in REGISTRY {
            assert_eq!(t.name, format!("{:?}", t.ty));
            assert!(t.type_size.is_multiple_of(t.align), "{}", t.name);
        }
    }
}
