//! The shared specification of the `KvCache` family: every implementation, in every storage
//! format, passes the same suite of llama.cpp's sequence operations (store and read, remove
//! a range, fork, keep one sequence, clear, shift with key re-rotation, save and load).

use ziglama_model::model::{
    load_sequence, save_sequence, ContiguousKvCache, KvType, LayeredKvCache, MultiSequenceKvCache,
    SlidingWindowKvCache,
};
use ziglama_nn::kv_cache::KeyRotation;
use ziglama_nn::rope::{Rope, RopeMode};
use ziglama_nn::{KvCache, NnError};

const N_LAYER: usize = 2;
const N_SEQ: usize = 3;
const N_CTX: usize = 64;
const HEAD_DIM: usize = 32;
const ROW: usize = 2 * HEAD_DIM;
/// Positions the suite stores (every cache below holds them all).
const N_POS: usize = 40;

type Make = fn(KvType) -> Box<dyn KvCache>;

fn implementations() -> Vec<(&'static str, Make)> {
    vec![
        ("contiguous", |ty| {
            Box::new(ContiguousKvCache::with_type(N_LAYER, N_SEQ, N_CTX, ROW, ty).unwrap())
        }),
        ("sliding window of 64", |ty| {
            Box::new(SlidingWindowKvCache::with_type(N_LAYER, N_SEQ, 64, ROW, ty).unwrap())
        }),
        ("sliding window of 32 in a ring of 48", |ty| {
            Box::new(SlidingWindowKvCache::with_capacity(N_LAYER, N_SEQ, 32, 48, ROW, ty).unwrap())
        }),
        ("layered, window 48 + full", |ty| {
            Box::new(LayeredKvCache::with_type(&[Some(48), None], N_SEQ, N_CTX, ROW, ty).unwrap())
        }),
        ("multi-sequence, blocks of 16", |ty| {
            Box::new(MultiSequenceKvCache::new(N_LAYER, N_SEQ, N_CTX, ROW, 16, ty).unwrap())
        }),
        ("multi-sequence, blocks of 1", |ty| {
            Box::new(MultiSequenceKvCache::new(N_LAYER, N_SEQ, N_CTX, ROW, 1, ty).unwrap())
        }),
    ]
}

/// A key or value row with values of magnitude ~1, distinct per (layer, seq, pos, kind).
fn row(layer: usize, seq: usize, pos: usize, kind: usize) -> Vec<f32> {
    (0..ROW)
        .map(|i| {
            let x = (layer * 7919 + seq * 104_729 + pos * 31 + kind * 17 + i * 13) % 97;
            (x as f32 - 48.0) / 32.0
        })
        .collect()
}

/// Largest decode error of a row in each format, for rows of magnitude <= 1.5.
fn tolerance(ty: KvType) -> f32 {
    match ty {
        KvType::F32 | KvType::F16 => 0.0, // the rows are multiples of 1/32: exact in f16
        KvType::Q8_0 => 0.01,
        KvType::Q4_0 => 0.2,
    }
}

fn fill(c: &mut dyn KvCache, seq: usize, positions: std::ops::Range<usize>) {
    for pos in positions {
        for layer in 0..N_LAYER {
            c.store(
                layer,
                seq,
                pos,
                &row(layer, seq, pos, 0),
                &row(layer, seq, pos, 1),
            )
            .unwrap();
        }
    }
}

fn read_row(c: &dyn KvCache, layer: usize, seq: usize, pos: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut k, mut v) = (vec![0f32; ROW], vec![0f32; ROW]);
    c.read(layer, seq, pos..pos + 1, 0..ROW, &mut k, &mut v)
        .unwrap_or_else(|e| panic!("layer {layer} seq {seq} pos {pos}: {e}"));
    (k, v)
}

fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

/// Checks that `seq` holds, at each position, the rows stored for `(from_seq, from_pos)`.
fn holds(c: &dyn KvCache, seq: usize, from_seq: usize, pos: usize, ty: KvType, name: &str) {
    for layer in 0..N_LAYER {
        let (k, v) = read_row(c, layer, seq, pos);
        assert!(
            close(&k, &row(layer, from_seq, pos, 0), tolerance(ty))
                && close(&v, &row(layer, from_seq, pos, 1), tolerance(ty)),
            "{name} {ty}: layer {layer} seq {seq} pos {pos}"
        );
    }
}

#[test]
fn store_and_read_every_position_and_head() {
    for (name, make) in implementations() {
        for ty in KvType::ALL {
            let mut c = make(ty);
            assert_eq!((c.n_layer(), c.n_seq(), c.row_len()), (N_LAYER, N_SEQ, ROW));
            fill(c.as_mut(), 1, 0..N_POS);
            assert_eq!(c.seq_len(1), N_POS, "{name} {ty}");
            assert_eq!(c.seq_len(0), 0, "{name} {ty}");
            for pos in 0..N_POS {
                holds(c.as_ref(), 1, 1, pos, ty, name);
            }
            // A range of positions, one head, in one call.
            let (mut k, mut v) = (vec![0f32; 5 * HEAD_DIM], vec![0f32; 5 * HEAD_DIM]);
            c.read(1, 1, 10..15, HEAD_DIM..ROW, &mut k, &mut v).unwrap();
            for (i, pos) in (10..15).enumerate() {
                let want = &row(1, 1, pos, 1)[HEAD_DIM..];
                assert!(close(&v[i * HEAD_DIM..][..HEAD_DIM], want, tolerance(ty)));
            }
            assert!(c.bytes() > 0, "{name} {ty}");
        }
    }
}

#[test]
fn bad_requests_are_errors() {
    for (name, make) in implementations() {
        let mut c = make(KvType::F16);
        fill(c.as_mut(), 0, 0..2);
        let (mut k, mut v) = (vec![0f32; ROW], vec![0f32; ROW]);
        let e = c.read(0, 0, 5..6, 0..ROW, &mut k, &mut v).unwrap_err();
        assert!(
            matches!(e, NnError::PositionNotStored { pos: 5, .. }),
            "{name}: {e}"
        );
        assert!(
            c.read(0, N_SEQ, 0..1, 0..ROW, &mut k, &mut v).is_err(),
            "{name}"
        );
        assert!(
            c.read(N_LAYER, 0, 0..1, 0..ROW, &mut k, &mut v).is_err(),
            "{name}"
        );
        assert!(
            c.read(0, 0, 0..2, 0..ROW, &mut k, &mut v).is_err(),
            "{name}: short buffers"
        );
        assert!(c.store(0, 0, 3, &k[1..], &v).is_err(), "{name}: short row");
        assert!(c.store(0, N_SEQ, 0, &k, &v).is_err(), "{name}");
        assert!(c.remove_positions(N_SEQ, 0..1).is_err(), "{name}");
        assert!(c.copy_sequence(0, N_SEQ).is_err(), "{name}");
        assert!(!c.contains(0, N_SEQ, 0) && !c.contains(0, 0, 2), "{name}");
        let mut q = make(KvType::Q8_0);
        fill(q.as_mut(), 0, 0..1);
        let (mut k, mut v) = (vec![0f32; 16], vec![0f32; 16]);
        assert!(
            q.read(0, 0, 0..1, 8..24, &mut k, &mut v).is_err(),
            "{name}: half a block"
        );
    }
}

#[test]
fn remove_a_range_keep_one_sequence_and_clear() {
    for (name, make) in implementations() {
        for ty in KvType::ALL {
            let mut c = make(ty);
            for seq in 0..N_SEQ {
                fill(c.as_mut(), seq, 0..N_POS);
            }
            c.remove_positions(1, 8..20).unwrap();
            for pos in 0..N_POS {
                let want = !(8..20).contains(&pos);
                assert_eq!(c.contains(0, 1, pos), want, "{name} {ty} pos {pos}");
                assert_eq!(c.contains(1, 1, pos), want, "{name} {ty} pos {pos}");
                assert!(
                    c.contains(1, 0, pos) && c.contains(1, 2, pos),
                    "{name} {ty}"
                );
            }
            holds(c.as_ref(), 1, 1, 25, ty, name);
            c.remove_positions(1, 30..usize::MAX).unwrap();
            assert_eq!(c.seq_len(1), 30, "{name} {ty}");
            c.keep_sequence(2).unwrap();
            assert_eq!(
                (c.seq_len(0), c.seq_len(1), c.seq_len(2)),
                (0, 0, N_POS),
                "{name}"
            );
            holds(c.as_ref(), 2, 2, 39, ty, name);
            c.clear().unwrap();
            assert!((0..N_SEQ).all(|s| c.seq_len(s) == 0), "{name} {ty}");
        }
    }
}

#[test]
fn a_fork_equals_its_source_and_then_goes_its_own_way() {
    for (name, make) in implementations() {
        for ty in KvType::ALL {
            let mut c = make(ty);
            fill(c.as_mut(), 0, 0..N_POS);
            fill(c.as_mut(), 2, 0..5);
            c.copy_sequence(0, 2).unwrap();
            assert_eq!(c.seq_len(2), N_POS, "{name} {ty}");
            for pos in 0..N_POS {
                holds(c.as_ref(), 2, 0, pos, ty, name);
            }
            // Overwrite part of the fork: the source keeps its rows.
            for pos in 30..N_POS {
                for layer in 0..N_LAYER {
                    c.store(
                        layer,
                        2,
                        pos,
                        &row(layer, 2, pos, 0),
                        &row(layer, 2, pos, 1),
                    )
                    .unwrap();
                }
            }
            for pos in 0..N_POS {
                holds(c.as_ref(), 0, 0, pos, ty, name);
                holds(c.as_ref(), 2, if pos < 30 { 0 } else { 2 }, pos, ty, name);
            }
            c.remove_positions(0, 0..usize::MAX).unwrap();
            holds(c.as_ref(), 2, 0, 3, ty, name);
        }
    }
}

#[test]
fn a_shift_moves_positions_and_rotates_keys() {
    let rope = Rope::new(HEAD_DIM, RopeMode::Neox, 10000.0);
    let rotation = KeyRotation::new(vec![rope.clone(); N_LAYER], HEAD_DIM);
    for (name, make) in implementations() {
        for ty in [KvType::F32, KvType::F16] {
            let mut c = make(ty);
            fill(c.as_mut(), 1, 0..N_POS);
            // llama.cpp's context shift: drop 4..14, move 14..40 down by 10.
            c.remove_positions(1, 4..14).unwrap();
            c.shift_positions(1, 14..N_POS, -10, &rotation).unwrap();
            assert_eq!(c.seq_len(1), N_POS - 10, "{name} {ty}");
            holds(c.as_ref(), 1, 1, 2, ty, name);
            for new in 4..N_POS - 10 {
                for layer in 0..N_LAYER {
                    let (k, v) = read_row(c.as_ref(), layer, 1, new);
                    let mut want = row(layer, 1, new + 10, 0);
                    rope.apply(&mut want, HEAD_DIM, -10);
                    let tol = if ty == KvType::F16 { 2e-3 } else { 0.0 };
                    assert!(close(&k, &want, tol), "{name} {ty}: key at {new}");
                    assert_eq!(v, row(layer, 1, new + 10, 1), "{name} {ty}: value at {new}");
                }
            }
            // Positions shifted below zero are removed.
            c.shift_positions(1, 0..4, -2, &rotation).unwrap();
            assert!(!c.contains(0, 1, 3) && c.contains(0, 1, 0), "{name} {ty}");
        }
    }
}

#[test]
fn a_saved_sequence_loads_back_into_any_cache() {
    for (name, make) in implementations() {
        for ty in KvType::ALL {
            let mut c = make(ty);
            fill(c.as_mut(), 2, 0..N_POS);
            let mut file = Vec::new();
            save_sequence(c.as_ref(), 2, &mut file).unwrap();
            let mut d = make(ty);
            load_sequence(d.as_mut(), 0, &mut file.as_slice()).unwrap();
            assert_eq!(d.seq_len(0), N_POS, "{name} {ty}");
            for pos in 0..N_POS {
                for layer in 0..N_LAYER {
                    let (a, b) = (
                        read_row(c.as_ref(), layer, 2, pos),
                        read_row(d.as_ref(), layer, 0, pos),
                    );
                    if matches!(ty, KvType::F32 | KvType::F16) {
                        assert_eq!(a, b, "{name} {ty}: layer {layer} pos {pos}");
                    } else {
                        assert!(
                            close(&a.0, &b.0, 1e-3) && close(&a.1, &b.1, 1e-3),
                            "{name} {ty}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn a_bad_state_file_is_a_clear_error() {
    let mut c = ContiguousKvCache::new(N_LAYER, 1, N_CTX, ROW);
    fill(&mut c, 0, 0..3);
    let mut file = Vec::new();
    save_sequence(&c, 0, &mut file).unwrap();
    let load = |bytes: &[u8]| {
        let mut d = ContiguousKvCache::new(N_LAYER, 1, N_CTX, ROW);
        load_sequence(&mut d, 0, &mut &bytes[..])
            .unwrap_err()
            .to_string()
    };
    let mut bad = file.clone();
    bad[0] = b'X';
    assert!(load(&bad).contains("bad magic"));
    for cut in [0, 3, 10, 31, 40, file.len() - 1] {
        assert!(load(&file[..cut]).contains("truncated"), "cut at {cut}");
    }
    let mut bad = file.clone();
    bad[8] = 9; // 9 layers
    assert!(load(&bad).contains("9 layers"));
    let mut bad = file.clone();
    bad[16..24].copy_from_slice(&u64::MAX.to_le_bytes()); // absurd length: no allocation
    assert!(load(&bad).contains("positions"));
    let mut bad = file.clone();
    bad[24..32].copy_from_slice(&u64::MAX.to_le_bytes()); // absurd row count
    assert!(load(&bad).contains("rows"));
    let mut bad = file.clone();
    bad[36..44].copy_from_slice(&1000u64.to_le_bytes()); // first row at position 1000
    assert!(load(&bad).contains("position 1000"));
    let mut small = ContiguousKvCache::new(N_LAYER, 1, N_CTX, HEAD_DIM);
    let e = load_sequence(&mut small, 0, &mut file.as_slice()).unwrap_err();
    assert!(e.to_string().contains("rows of 64"), "{e}");
}

#[test]
fn a_paged_fork_shares_its_prefix_until_written() {
    let mut c = MultiSequenceKvCache::new(N_LAYER, 2, N_CTX, ROW, 16, KvType::F16).unwrap();
    fill(&mut c, 0, 0..40); // 3 blocks, the last one partly filled
    let block = c.block_bytes();
    assert_eq!(c.bytes(), 3 * block);
    c.copy_sequence(0, 1).unwrap();
    assert_eq!(c.bytes(), 3 * block, "a fork costs nothing");
    fill(&mut c, 0, 40..48);
    fill(&mut c, 1, 40..48);
    assert_eq!(
        c.bytes(),
        4 * block,
        "the block at the fork point is copied once"
    );
    fill(&mut c, 1, 48..50);
    assert_eq!(c.bytes(), 5 * block);
    c.remove_positions(1, 0..usize::MAX).unwrap();
    assert_eq!(c.bytes(), 3 * block, "sequence 1's own blocks are freed");
    let mut small = MultiSequenceKvCache::new(1, 1, N_CTX, ROW, 16, KvType::F16)
        .unwrap()
        .with_max_blocks(1);
    small.store(0, 0, 15, &[0.0; ROW], &[0.0; ROW]).unwrap();
    let e = small.store(0, 0, 16, &[0.0; ROW], &[0.0; ROW]).unwrap_err();
    assert!(matches!(e, NnError::CacheFull { capacity: 1 }), "{e}");
}
