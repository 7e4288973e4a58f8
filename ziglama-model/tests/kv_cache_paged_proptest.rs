//! The paged cache against the contiguous one under random sequences of llama.cpp's
//! operations (store a range, remove a range, fork, keep one, clear): after every operation
//! both hold the same positions with the same rows, and the paged cache's bytes are its
//! blocks in use, never more than a block per (sequence, block index) it holds.

use proptest::prelude::*;
use ziglama_model::model::{ContiguousKvCache, KvType, MultiSequenceKvCache};
use ziglama_nn::KvCache;

const N_LAYER: usize = 2;
const N_SEQ: usize = 3;
const N_CTX: usize = 24;
const ROW: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    Store {
        seq: usize,
        start: usize,
        len: usize,
    },
    Remove {
        seq: usize,
        start: usize,
        len: usize,
    },
    Copy {
        src: usize,
        dst: usize,
    },
    Keep {
        seq: usize,
    },
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..N_SEQ, 0..N_CTX, 1..8usize).prop_map(|(seq, start, len)| Op::Store { seq, start, len }),
        2 => (0..N_SEQ, 0..N_CTX, 1..10usize).prop_map(|(seq, start, len)| Op::Remove { seq, start, len }),
        2 => (0..N_SEQ, 0..N_SEQ).prop_map(|(src, dst)| Op::Copy { src, dst }),
        1 => (0..N_SEQ).prop_map(|seq| Op::Keep { seq }),
        1 => Just(Op::Clear),
    ]
}

fn apply(c: &mut dyn KvCache, op: &Op, step: usize) {
    match *op {
        Op::Store { seq, start, len } => {
            for pos in start..(start + len).min(N_CTX) {
                for layer in 0..N_LAYER {
                    let x = (step * 1000 + seq * 100 + pos * 4 + layer) as f32;
                    c.store(layer, seq, pos, &[x; ROW], &[-x; ROW]).unwrap();
                }
            }
        }
        Op::Remove { seq, start, len } => c.remove_positions(seq, start..start + len).unwrap(),
        Op::Copy { src, dst } => c.copy_sequence(src, dst).unwrap(),
        Op::Keep { seq } => c.keep_sequence(seq).unwrap(),
        Op::Clear => c.clear().unwrap(),
    }
}

proptest! {
    #[test]
    fn paged_equals_contiguous(ops in proptest::collection::vec(op(), 1..40), block in 1..6usize) {
        let mut want = ContiguousKvCache::with_type(N_LAYER, N_SEQ, N_CTX, ROW, KvType::F32).unwrap();
        let mut got = MultiSequenceKvCache::new(N_LAYER, N_SEQ, N_CTX, ROW, block, KvType::F32).unwrap();
        for (step, op) in ops.iter().enumerate() {
            apply(&mut want, op, step);
            apply(&mut got, op, step);
            let mut blocks_held = 0;
            for seq in 0..N_SEQ {
                prop_assert_eq!(got.seq_len(seq), want.seq_len(seq), "step {} seq {}", step, seq);
                for b in 0..N_CTX.div_ceil(block) {
                    let range = b * block..((b + 1) * block).min(N_CTX);
                    if range.clone().any(|p| (0..N_LAYER).any(|l| want.contains(l, seq, p))) {
                        blocks_held += 1;
                    }
                }
                for pos in 0..N_CTX {
                    for layer in 0..N_LAYER {
                        let held = want.contains(layer, seq, pos);
                        prop_assert_eq!(got.contains(layer, seq, pos), held);
                        if held {
                            let (mut a, mut b) = ([0f32; ROW], [0f32; ROW]);
                            let (mut c, mut d) = ([0f32; ROW], [0f32; ROW]);
                            want.read(layer, seq, pos..pos + 1, 0..ROW, &mut a, &mut b).unwrap();
                            got.read(layer, seq, pos..pos + 1, 0..ROW, &mut c, &mut d).unwrap();
                            prop_assert_eq!((a, b), (c, d), "step {} seq {} pos {}", step, seq, pos);
                        }
                    }
                }
            }
            prop_assert_eq!(got.bytes(), got.blocks_in_use() * got.block_bytes());
            prop_assert!(got.blocks_in_use() <= blocks_held, "step {}: {} blocks for {} held", step, got.blocks_in_use(), blocks_held);
        }
    }
}
