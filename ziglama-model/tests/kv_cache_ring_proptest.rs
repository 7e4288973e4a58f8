//! Sliding-window rings against a contiguous cache under random sequences of llama.cpp's
//! operations (append, trim the tail, remove a range, shift with key re-rotation, fork,
//! clear), for a ring of every layer ([`SlidingWindowKvCache`]) and a ring beside a full
//! layer ([`LayeredKvCache`]), rings of the window and of up to 3 positions more. A ring forgets, but never lies: after every operation
//! - every row it holds is the contiguous cache's row of that position, bit for bit;
//! - when [`KvCache::check_continuation`] accepts the sequence's end, the ring holds every
//!   position of that end's window the contiguous cache holds (attention will find them);
//!   when it refuses, the position it names is one the ring lacks, inside the window;
//! - a shift it refuses moves nothing.

use proptest::prelude::*;
use ziglama_model::model::{ContiguousKvCache, KvType, LayeredKvCache, SlidingWindowKvCache};
use ziglama_nn::kv_cache::KeyRotation;
use ziglama_nn::rope::{Rope, RopeMode};
use ziglama_nn::{KvCache, NnError};

const N_LAYER: usize = 2;
const N_SEQ: usize = 2;
const N_CTX: usize = 32;
const WINDOW: usize = 5;
const HEAD_DIM: usize = 2;
const ROW: usize = 2 * HEAD_DIM;

#[derive(Clone, Debug)]
enum Op {
    Append {
        seq: usize,
        len: usize,
    },
    Trim {
        seq: usize,
        keep: usize,
    },
    Remove {
        seq: usize,
        start: usize,
        len: usize,
    },
    Shift {
        seq: usize,
        start: usize,
        delta: isize,
    },
    Copy {
        src: usize,
        dst: usize,
    },
    Clear {
        seq: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..N_SEQ, 1..9usize).prop_map(|(seq, len)| Op::Append { seq, len }),
        2 => (0..N_SEQ, 0..N_CTX).prop_map(|(seq, keep)| Op::Trim { seq, keep }),
        1 => (0..N_SEQ, 0..N_CTX, 1..8usize).prop_map(|(seq, start, len)| Op::Remove { seq, start, len }),
        3 => (0..N_SEQ, 0..N_CTX, -10..6isize).prop_map(|(seq, start, delta)| Op::Shift { seq, start, delta }),
        1 => (0..N_SEQ, 0..N_SEQ).prop_map(|(src, dst)| Op::Copy { src, dst }),
        1 => (0..N_SEQ).prop_map(|seq| Op::Clear { seq }),
    ]
}

fn rotation() -> KeyRotation {
    KeyRotation::new(
        vec![Rope::new(HEAD_DIM, RopeMode::Normal, 10000.0); N_LAYER],
        HEAD_DIM,
    )
}

fn row(c: &dyn KvCache, layer: usize, seq: usize, pos: usize) -> Option<([f32; ROW], [f32; ROW])> {
    let (mut k, mut v) = ([0f32; ROW], [0f32; ROW]);
    c.read(layer, seq, pos..pos + 1, 0..ROW, &mut k, &mut v)
        .ok()
        .map(|()| (k, v))
}

/// Every row of `c`, by (layer, sequence, position).
fn snapshot(c: &dyn KvCache) -> Vec<Option<([f32; ROW], [f32; ROW])>> {
    let mut rows = Vec::new();
    for layer in 0..N_LAYER {
        for seq in 0..N_SEQ {
            for pos in 0..N_CTX {
                rows.push(row(c, layer, seq, pos));
            }
        }
    }
    rows
}

/// Applies `op` to the ring and, unless the ring refused it, to the contiguous cache.
fn apply(
    got: &mut dyn KvCache,
    want: &mut dyn KvCache,
    op: &Op,
    step: usize,
) -> Result<(), TestCaseError> {
    match *op {
        Op::Append { seq, len } => {
            let start = want.seq_len(seq);
            for pos in start..(start + len).min(N_CTX) {
                for layer in 0..N_LAYER {
                    let x = (step * 1000 + seq * 100 + pos * 2 + layer) as f32;
                    let (k, v) = ([x, 1.0, -x, 0.5], [-x; ROW]);
                    got.store(layer, seq, pos, &k, &v).unwrap();
                    want.store(layer, seq, pos, &k, &v).unwrap();
                }
            }
        }
        Op::Trim { seq, keep } => {
            got.remove_positions(seq, keep..usize::MAX).unwrap();
            want.remove_positions(seq, keep..usize::MAX).unwrap();
        }
        Op::Remove { seq, start, len } => {
            got.remove_positions(seq, start..start + len).unwrap();
            want.remove_positions(seq, start..start + len).unwrap();
        }
        Op::Shift { seq, start, delta } => {
            if want
                .seq_len(seq)
                .checked_add_signed(delta)
                .is_none_or(|end| end > N_CTX)
            {
                return Ok(()); // past the contiguous cache's context
            }
            let before = snapshot(got);
            match got.shift_positions(seq, start..usize::MAX, delta, &rotation()) {
                Ok(()) => want
                    .shift_positions(seq, start..usize::MAX, delta, &rotation())
                    .unwrap(),
                Err(NnError::PositionEvicted { .. }) => {
                    prop_assert!(
                        snapshot(got) == before,
                        "step {}: a refused shift moved rows",
                        step
                    );
                }
                Err(e) => panic!("step {step}: {e}"),
            }
        }
        Op::Copy { src, dst } => {
            got.copy_sequence(src, dst).unwrap();
            want.copy_sequence(src, dst).unwrap();
        }
        Op::Clear { seq } => {
            got.remove_positions(seq, 0..usize::MAX).unwrap();
            want.remove_positions(seq, 0..usize::MAX).unwrap();
        }
    }
    Ok(())
}

/// The invariants of the module documentation; `windowed` says which layers are rings.
fn check(
    got: &dyn KvCache,
    want: &dyn KvCache,
    windowed: [bool; N_LAYER],
    step: usize,
) -> Result<(), TestCaseError> {
    for seq in 0..N_SEQ {
        for (layer, &ring) in windowed.iter().enumerate() {
            for pos in 0..N_CTX {
                if let Some(r) = row(got, layer, seq, pos) {
                    prop_assert_eq!(
                        Some(r),
                        row(want, layer, seq, pos),
                        "step {} layer {} seq {} pos {}",
                        step,
                        layer,
                        seq,
                        pos
                    );
                } else if !ring {
                    prop_assert!(
                        !want.contains(layer, seq, pos),
                        "step {}: a full layer lost {}",
                        step,
                        pos
                    );
                }
            }
        }
        let end = want.seq_len(seq);
        let window = (end + 1).saturating_sub(WINDOW)..end;
        match got.check_continuation(seq, end) {
            Ok(()) => {
                for layer in 0..N_LAYER {
                    for pos in window.clone() {
                        prop_assert!(
                            !want.contains(layer, seq, pos) || got.contains(layer, seq, pos),
                            "step {}: continuation of seq {} at {} accepted without position {} of layer {}",
                            step, seq, end, pos, layer
                        );
                    }
                }
            }
            Err(NnError::PositionEvicted { layer, pos, .. }) => {
                prop_assert!(
                    window.contains(&pos) && !got.contains(layer, seq, pos),
                    "step {}: refused for {}",
                    step,
                    pos
                );
            }
            Err(e) => panic!("step {step}: {e}"),
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn a_ring_forgets_but_never_lies(ops in proptest::collection::vec(op(), 1..60), slack in 0..4usize) {
        let want = ContiguousKvCache::with_type(N_LAYER, N_SEQ, N_CTX, ROW, KvType::F32).unwrap();
        let ring = SlidingWindowKvCache::with_capacity(N_LAYER, N_SEQ, WINDOW, WINDOW + slack, ROW, KvType::F32).unwrap();
        let layered = LayeredKvCache::with_slack(&[Some(WINDOW), None], N_SEQ, N_CTX, ROW, KvType::F32, slack).unwrap();
        let (mut want, mut want2, mut ring, mut layered) = (want.clone(), want, ring, layered);
        for (step, op) in ops.iter().enumerate() {
            apply(&mut ring, &mut want, op, step)?;
            check(&ring, &want, [true, true], step)?;
            apply(&mut layered, &mut want2, op, step)?;
            check(&layered, &want2, [true, false], step)?;
        }
    }
}
