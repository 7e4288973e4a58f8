//! Saving one sequence of a KV cache to a file and loading it back, into any cache of the
//! same shape.
//!
//! The file (little-endian): the magic `ZGKV`, version 1, `n_layer` (u32), `row_len` (u32),
//! the sequence length (u64), the number of rows (u64), then per row its layer (u32), its
//! position (u64), and its key and value as `row_len` `f32` each. Rows are written as the
//! cache decodes them, so an `f32` or `f16` cache loads back bit for bit; a quantized cache
//! re-quantizes the decoded values (which gives back the same blocks in all but rare cases).
//! A file to load is untrusted: every count is checked against the cache before anything is
//! read, and a short file is an error.

use std::io::{Read, Write};

use ziglama_nn::kv_cache::check_seq;
use ziglama_nn::{KvCache, NnError};

const MAGIC: &[u8; 4] = b"ZGKV";
const VERSION: u32 = 1;

fn io_error(e: std::io::Error) -> NnError {
    NnError::StateFile {
        reason: if e.kind() == std::io::ErrorKind::UnexpectedEof {
            "truncated".into()
        } else {
            e.to_string()
        },
    }
}

fn bad(reason: String) -> NnError {
    NnError::StateFile { reason }
}

/// Writes every row `seq` holds in `cache` to `out`.
///
/// ```
/// use ziglama_model::model::{load_sequence, save_sequence, ContiguousKvCache};
/// use ziglama_nn::KvCache;
/// let mut a = ContiguousKvCache::new(2, 1, 8, 2);
/// for pos in 0..3 {
///     for layer in 0..2 {
///         a.store(layer, 0, pos, &[pos as f32, 1.5], &[-1.0, layer as f32])?;
///     }
/// }
/// let mut file = Vec::new();
/// save_sequence(&a, 0, &mut file)?;
/// let mut b = ContiguousKvCache::new(2, 2, 8, 2);
/// load_sequence(&mut b, 1, &mut file.as_slice())?;
/// assert_eq!(b.seq_len(1), 3);
/// let (mut k, mut v) = ([0f32; 2], [0f32; 2]);
/// b.read(1, 1, 2..3, 0..2, &mut k, &mut v)?;
/// assert_eq!((k, v), ([2.0, 1.5], [-1.0, 1.0]));
/// assert!(load_sequence(&mut b, 0, &mut &file[..20]).is_err()); // truncated
/// # Ok::<(), ziglama_nn::NnError>(())
/// ```
///
/// # Errors
///
/// A sequence the cache does not have, or a write that fails ([`NnError::StateFile`]).
pub fn save_sequence<C: KvCache + ?Sized>(
    cache: &C,
    seq: usize,
    out: &mut impl Write,
) -> Result<(), NnError> {
    check_seq(cache.n_seq(), seq)?;
    let (n_layer, n) = (cache.n_layer(), cache.row_len());
    let len = cache.seq_len(seq);
    let rows: Vec<(usize, usize)> = (0..len)
        .flat_map(|pos| (0..n_layer).map(move |layer| (layer, pos)))
        .filter(|&(layer, pos)| cache.contains(layer, seq, pos))
        .collect();
    let mut head = Vec::with_capacity(32);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&VERSION.to_le_bytes());
    head.extend_from_slice(&(n_layer as u32).to_le_bytes());
    head.extend_from_slice(&(n as u32).to_le_bytes());
    head.extend_from_slice(&(len as u64).to_le_bytes());
    head.extend_from_slice(&(rows.len() as u64).to_le_bytes());
    out.write_all(&head).map_err(io_error)?;
    let (mut k, mut v) = (vec![0f32; n], vec![0f32; n]);
    let mut buf = Vec::with_capacity(12 + 8 * n);
    for (layer, pos) in rows {
        cache.read(layer, seq, pos..pos + 1, 0..n, &mut k, &mut v)?;
        buf.clear();
        buf.extend_from_slice(&(layer as u32).to_le_bytes());
        buf.extend_from_slice(&(pos as u64).to_le_bytes());
        for x in k.iter().chain(&v) {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        out.write_all(&buf).map_err(io_error)?;
    }
    Ok(())
}

fn read_u32(input: &mut impl Read) -> Result<u32, NnError> {
    let mut b = [0u8; 4];
    input.read_exact(&mut b).map_err(io_error)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(input: &mut impl Read) -> Result<u64, NnError> {
    let mut b = [0u8; 8];
    input.read_exact(&mut b).map_err(io_error)?;
    Ok(u64::from_le_bytes(b))
}

/// Replaces `seq` in `cache` with the sequence [`save_sequence`] wrote to `input`. On an
/// error the sequence may hold part of the file's rows; clear it before reusing it.
///
/// # Errors
///
/// [`NnError::StateFile`] for a bad magic or version, a layer count, row length, sequence
/// length or row count the cache cannot take, a row out of place, or a truncated file; the
/// cache's own errors.
pub fn load_sequence<C: KvCache + ?Sized>(
    cache: &mut C,
    seq: usize,
    input: &mut impl Read,
) -> Result<(), NnError> {
    check_seq(cache.n_seq(), seq)?;
    let mut magic = [0u8; 4];
    input.read_exact(&mut magic).map_err(io_error)?;
    if &magic != MAGIC {
        return Err(bad(format!("bad magic {magic:?}, expected {MAGIC:?}")));
    }
    let version = read_u32(input)?;
    if version != VERSION {
        return Err(bad(format!("version {version}, expected {VERSION}")));
    }
    let (n_layer, n) = (cache.n_layer(), cache.row_len());
    let file_layers = read_u32(input)? as usize;
    let file_row = read_u32(input)? as usize;
    if (file_layers, file_row) != (n_layer, n) {
        return Err(bad(format!(
            "{file_layers} layers of rows of {file_row} values, the cache has {n_layer} of {n}"
        )));
    }
    let len = read_u64(input)?;
    if len > cache.n_ctx() as u64 {
        return Err(bad(format!(
            "sequence of {len} positions, the cache holds {}",
            cache.n_ctx()
        )));
    }
    let n_rows = read_u64(input)?;
    if n_rows > len.saturating_mul(n_layer as u64) {
        return Err(bad(format!(
            "{n_rows} rows for {len} positions of {n_layer} layers"
        )));
    }
    cache.remove_positions(seq, 0..usize::MAX)?;
    let (mut k, mut v) = (vec![0f32; n], vec![0f32; n]);
    let mut bytes = vec![0u8; 8 * n];
    for row in 0..n_rows {
        let layer = read_u32(input)? as usize;
        let pos = read_u64(input)?;
        if layer >= n_layer || pos >= len {
            return Err(bad(format!(
                "row {row} at layer {layer}, position {pos}: outside {n_layer} layers, {len} positions"
            )));
        }
        input.read_exact(&mut bytes).map_err(io_error)?;
        for (x, b) in k.iter_mut().chain(v.iter_mut()).zip(bytes.chunks_exact(4)) {
            *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        cache.store(layer, seq, pos as usize, &k, &v)?;
    }
    Ok(())
}
