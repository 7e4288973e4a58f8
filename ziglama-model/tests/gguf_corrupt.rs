//! Corruption tests on real GGUF headers: truncation at every byte offset, and thousands of
//! seeded byte flips and random u64 writes. Each case must end in `Ok` or in an error that
//! names a field and a byte offset; none may panic or allocate more than a small multiple
//! of the input (an allocator in this test binary measures it, per thread).
//!
//! Two inputs are used:
//! - the first 64 KiB of the real SmolLM2 file (header, metadata keys, the start of the
//!   49152-token vocabulary);
//! - a "shrunk SmolLM2": the real file's metadata in the real order and types, its three
//!   long arrays cut to their first 200 items, and all 272 real tensor infos (names, types,
//!   number of dimensions) with their shapes shrunk to one block, so the whole file, tensor
//!   data included, is small and a corrupted copy can parse successfully.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use ziglama_model::catalog::KnownModel;
use ziglama_model::gguf::{GgufFile, GgufWriter, MetadataArray, MetadataValue, StringArray};
use ziglama_model::ModelError;

// ---- allocation accounting -------------------------------------------------------------

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let _ = LIVE.try_with(|l| {
        let live = l.get() + size;
        l.set(live);
        let _ = PEAK.try_with(|p| p.set(p.get().max(live)));
    });
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
}

fn note_free(size: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(size)));
}

// SAFETY: every method forwards to the system allocator with the caller's arguments and
// only updates thread-local counters (const-initialised `Cell`s, which never allocate).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_free(layout.size());
        note_alloc(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Bytes of a buffer prefix, shared without copying.
struct Prefix(Arc<Vec<u8>>, usize);

impl AsRef<[u8]> for Prefix {
    fn as_ref(&self) -> &[u8] {
        &self.0[..self.1]
    }
}

/// The most the reader may allocate while parsing `len` input bytes: a small multiple of
/// the input (a count of 2^60 would blow through this).
fn allocation_budget(len: usize) -> usize {
    16 * len + (64 << 10)
}

/// Parses `buf[..len]`, checking the outcome: `Ok`, or an error whose message names a
/// field and a byte offset within the input. Returns the outcome.
fn parse_checked(buf: &Arc<Vec<u8>>, len: usize, case: &str) -> Result<GgufFile, ModelError> {
    let bytes = Arc::new(Prefix(buf.clone(), len));
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    LARGEST.with(|m| m.set(0));
    let r = GgufFile::from_bytes(bytes);
    let (peak, largest) = (PEAK.with(Cell::get), LARGEST.with(Cell::get));
    assert!(
        peak <= allocation_budget(len),
        "{case}: parsing {len} bytes peaked at {peak} bytes allocated ({r:?})"
    );
    assert!(
        largest <= allocation_budget(len),
        "{case}: one allocation of {largest} bytes"
    );
    if let Err(e) = &r {
        let msg = e.to_string();
        let offset = error_offset(e).unwrap_or_else(|| panic!("{case}: no offset in {e:?}"));
        assert!(
            offset <= len as u64,
            "{case}: error offset {offset} beyond input of {len} bytes: {msg}"
        );
        assert!(
            msg.contains(&format!("byte offset {offset}")),
            "{case}: message does not give the byte offset: {msg}"
        );
        let names_field = [
            "GGUF",
            "header field",
            "metadata key",
            "tensor",
            "array",
            "padding",
        ]
        .iter()
        .any(|f| msg.contains(f));
        assert!(names_field, "{case}: message names no field: {msg}");
    }
    r
}

fn error_offset(e: &ModelError) -> Option<u64> {
    Some(match e {
        ModelError::BadMagic { .. } => 0,
        ModelError::UnsupportedVersion { .. } => 4,
        ModelError::Truncated { offset, .. }
        | ModelError::CountTooLarge { offset, .. }
        | ModelError::InvalidValue { offset, .. }
        | ModelError::UnknownValueType { offset, .. }
        | ModelError::NestingTooDeep { offset, .. }
        | ModelError::DuplicateKey { offset, .. }
        | ModelError::DuplicateTensor { offset, .. }
        | ModelError::InvalidTensor { offset, .. }
        | ModelError::TensorDataOutOfBounds { offset, .. } => *offset,
        _ => return None,
    })
}

/// splitmix64: a tiny seeded generator, so every case is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn real_prefix() -> Vec<u8> {
    use std::io::Read;
    let path = KnownModel::SmolLM2
        .ensure()
        .expect("SmolLM2 must be fetchable");
    let mut buf = vec![0u8; 64 << 10];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read the first 64 KiB of SmolLM2");
    buf
}

/// The shrunk SmolLM2 described in the module docs.
fn shrunk_smollm2() -> Vec<u8> {
    let path = KnownModel::SmolLM2
        .ensure()
        .expect("SmolLM2 must be fetchable");
    let real = GgufFile::open(path).expect("SmolLM2 parses");
    let mut w = GgufWriter::new();
    for (key, value) in real.metadata().iter() {
        let value = match value {
            MetadataValue::Array(MetadataArray::String(a)) => MetadataValue::Array(
                MetadataArray::String(a.iter().take(200).collect::<StringArray>()),
            ),
            MetadataValue::Array(MetadataArray::Int32(a)) => {
                MetadataValue::Array(MetadataArray::Int32(a[..a.len().min(200)].to_vec()))
            }
            v => v.clone(),
        };
        w.metadata_mut().insert(key, value).unwrap();
    }
    let mut rng = Rng(7);
    for info in real.tensor_infos() {
        let mut shape = vec![1usize; info.shape.len()];
        shape[0] = info.dtype.block_size();
        let n = info.dtype.type_size();
        let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        w.add_tensor_bytes(&info.name, info.dtype, &shape, &bytes)
            .unwrap();
    }
    let out = w.to_bytes().unwrap();
    assert!(out.len() < 64 << 10, "shrunk file is {} bytes", out.len());
    out
}

#[test]
fn real_prefix_truncated_at_every_offset_is_an_error() {
    let buf = Arc::new(real_prefix());
    for len in 0..=buf.len() {
        let r = parse_checked(&buf, len, &format!("prefix of {len} bytes"));
        assert!(r.is_err(), "a {len}-byte prefix parsed");
    }
}

#[test]
fn shrunk_file_truncated_at_every_offset_is_an_error() {
    let full = shrunk_smollm2();
    let buf = Arc::new(full.clone());
    let whole = parse_checked(&buf, buf.len(), "whole shrunk file").expect("whole file parses");
    // The accounting sees the parser's allocations (the metadata is copied out of the file).
    let peak = PEAK.with(Cell::get);
    assert!(
        peak > buf.len() / 4,
        "allocation accounting saw only {peak} bytes"
    );
    assert_eq!(whole.tensor_infos().len(), 272);
    // The last tensor's data ends here; only the zero padding after it may be cut off.
    let last = whole.tensor_infos().last().unwrap();
    let data_end = whole.data_offset() + last.offset as usize + last.n_bytes;
    assert!(
        data_end < buf.len(),
        "the test needs trailing padding to cut"
    );
    for len in 0..buf.len() {
        let r = parse_checked(&buf, len, &format!("shrunk file cut at {len}"));
        assert_eq!(
            r.is_ok(),
            len >= data_end,
            "shrunk file cut at {len}: {r:?}"
        );
    }
}

/// One seeded corruption: flip a byte, write a random byte, or write a u64 (random or
/// chosen to trouble counts and lengths) at a position that is, half the time, in the first
/// `hot` bytes (where the header, counts and first keys are).
fn corrupt(buf: &mut [u8], rng: &mut Rng, hot: usize) -> String {
    let pos = if rng.next().is_multiple_of(2) {
        rng.below(hot.min(buf.len()))
    } else {
        rng.below(buf.len())
    };
    match rng.next() % 4 {
        0 => {
            let bit = 1u8 << rng.below(8);
            buf[pos] ^= bit;
            format!("flip bit {bit:#x} at {pos}")
        }
        1 => {
            let b = rng.next() as u8;
            buf[pos] = b;
            format!("byte {b:#x} at {pos}")
        }
        _ => {
            let specials = [
                0,
                1,
                u64::MAX,
                1 << 60,
                1 << 63,
                u32::MAX as u64,
                buf.len() as u64,
                rng.next() % 64,
            ];
            let v = if rng.next().is_multiple_of(2) {
                rng.next()
            } else {
                specials[rng.below(specials.len())]
            };
            let pos = pos.min(buf.len() - 8);
            buf[pos..pos + 8].copy_from_slice(&v.to_le_bytes());
            format!("u64 {v:#x} at {pos}")
        }
    }
}

fn fuzz(original: &[u8], cases: u64, seed: u64, hot: usize) -> (usize, usize) {
    let (mut ok, mut err) = (0, 0);
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for case in 0..cases {
        let mut rng = Rng(seed ^ case.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let mut buf = original.to_vec();
        let mut what = Vec::new();
        for _ in 0..1 + rng.below(3) {
            what.push(corrupt(&mut buf, &mut rng, hot));
        }
        let len = buf.len();
        let buf = Arc::new(buf);
        let label = format!("seed {seed} case {case}: {}", what.join(", "));
        match parse_checked(&buf, len, &label) {
            Ok(f) => {
                ok += 1;
                // Whatever parsed must be usable: every listed tensor can be taken.
                for info in f.tensor_infos() {
                    let t = f
                        .tensor(&info.name)
                        .unwrap_or_else(|e| panic!("{label}: {e}"));
                    assert_eq!(t.n_bytes(), info.n_bytes, "{label}");
                }
            }
            Err(e) => {
                err += 1;
                let kind = format!("{e:?}");
                let kind = kind.split([' ', '(', '{']).next().unwrap_or("").to_string();
                *kinds.entry(kind).or_default() += 1;
            }
        }
    }
    println!("seed {seed:#x}: {ok} Ok, errors by kind: {kinds:?}");
    // Corruption must reach more than one kind of check.
    assert!(kinds.len() >= 5, "{kinds:?}");
    (ok, err)
}

#[test]
fn real_prefix_random_corruption() {
    let buf = real_prefix();
    // Everything before the vocabulary's first strings: header and 24 metadata keys.
    let (ok, err) = fuzz(&buf, 3000, 0x5eed_0001, 1200);
    assert_eq!(ok, 0, "a 64 KiB prefix of a 98 MB file cannot parse");
    assert_eq!(err, 3000);
}

#[test]
fn shrunk_file_random_corruption() {
    let buf = shrunk_smollm2();
    let (ok, err) = fuzz(&buf, 6000, 0x5eed_0002, 2000);
    // Both outcomes must occur, or the corruption is not reaching the interesting paths.
    assert!(ok > 100, "{ok} cases parsed");
    assert!(err > 1000, "{err} cases failed");
}
