//! The token buffer between a producing and a consuming thread: a consumer slower than the
//! producer loses nothing and sees nothing twice, in order, for capacities 1, 2, 7 and 64;
//! closing from the consumer's side stops the producer; a cancellation from another thread
//! ends a stream of real text mid-way.

use std::thread;
use std::time::Duration;

use ziglama_infer::model::catalog::KnownModel;
use ziglama_infer::model::gguf::GgufFile;
use ziglama_infer::model::tokenizer::Tokenizer;
use ziglama_infer::stream::{
    Cancellation, Closed, FlushPolicy, StopReason, StreamStatus, TextStream, TokenBuffer,
};

const CAPACITIES: [usize; 4] = [1, 2, 7, 64];

#[test]
fn slow_consumer_loses_nothing_and_sees_nothing_twice() {
    for capacity in CAPACITIES {
        let (producer, consumer) = TokenBuffer::bounded(capacity);
        let worker = thread::spawn(move || {
            for i in 0..400u32 {
                producer.push(i).expect("the consumer reads to the end");
                // Backpressure: the producer is never more than `capacity` items ahead.
                assert!(producer.buffer().len() <= capacity);
            }
            producer.finish(StopReason::MaxTokens);
        });
        let mut seen = Vec::new();
        for item in &consumer {
            if item % 8 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
            seen.push(item);
        }
        worker.join().unwrap();
        assert_eq!(seen, (0..400).collect::<Vec<_>>(), "capacity {capacity}");
        assert_eq!(
            consumer.status(),
            StreamStatus::Finished(StopReason::MaxTokens)
        );
    }
}

#[test]
fn closing_from_the_consumer_stops_a_blocked_producer() {
    for capacity in CAPACITIES {
        let (producer, consumer) = TokenBuffer::bounded(capacity);
        let worker = thread::spawn(move || {
            let mut pushed = 0u32;
            loop {
                match producer.push(pushed) {
                    Ok(()) => pushed += 1,
                    Err(Closed(item)) => {
                        assert_eq!(item, pushed, "the refused item comes back");
                        assert!(producer.status().is_cancelled());
                        return pushed;
                    }
                }
            }
        });
        let first: Vec<u32> = consumer.iter().take(10).collect();
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        // Let the producer fill the buffer and block in push.
        thread::sleep(Duration::from_millis(20));
        consumer.close();
        let pushed = worker.join().unwrap();
        assert!(pushed as usize <= 10 + capacity, "{pushed} pushed");
        // What was delivered stays readable, in order, once.
        let rest: Vec<u32> = consumer.iter().collect();
        assert_eq!(rest, (10..pushed).collect::<Vec<_>>());
    }
}

#[test]
fn dropping_the_consumer_closes_and_dropping_the_producer_fails() {
    let (producer, consumer) = TokenBuffer::<u8>::bounded(1);
    drop(consumer);
    assert_eq!(producer.push(1), Err(Closed(1)));

    let (producer, consumer) = TokenBuffer::<u8>::bounded(3);
    producer.push(1).unwrap();
    drop(producer);
    assert_eq!(consumer.iter().collect::<Vec<_>>(), [1]);
    assert!(matches!(consumer.status(), StreamStatus::Failed(_)));
}

fn smollm2() -> Tokenizer {
    let path = KnownModel::SmolLM2
        .ensure()
        .expect("the model must be fetchable");
    Tokenizer::from_gguf(&GgufFile::open(path).unwrap()).unwrap()
}

const TEXT: &str = "Streaming text 🦀 through a bounded buffer: 日本語、中文。 Each chunk arrives \
    once.\nLists:\n- one\n- two 👋🏽\nDone! Really? Yes.";

/// Runs the tokens of `TEXT` through a [`TextStream`] on a producer thread, delivering the
/// chunks through a buffer of `capacity`; the consumer is slower than the producer.
fn stream_through_buffer(
    tok: &Tokenizer,
    ids: &[u32],
    policy: FlushPolicy,
    capacity: usize,
) -> Vec<String> {
    thread::scope(|scope| {
        let (producer, consumer) = TokenBuffer::bounded(capacity);
        scope.spawn(move || {
            let mut stream = TextStream::new(policy).with_stop_strings(["Yes."]);
            for &id in ids {
                if let Some(chunk) = stream.push_token(tok, id) {
                    producer.push(chunk).expect("the consumer reads to the end");
                }
                if stream.stop_string().is_some() {
                    break;
                }
            }
            let done = stream.finish();
            if let Some(chunk) = done.last_chunk {
                producer.push(chunk).expect("the consumer reads to the end");
            }
            producer.finish(StopReason::StopString(0));
        });
        let mut chunks = Vec::new();
        for chunk in &consumer {
            thread::sleep(Duration::from_micros(300));
            chunks.push(chunk);
        }
        assert_eq!(
            consumer.status().stop_reason(),
            Some(StopReason::StopString(0))
        );
        chunks
    })
}

#[test]
fn text_chunks_through_the_buffer_for_every_policy_and_capacity() {
    let tok = smollm2();
    let ids = tok.encode(TEXT, false, false).unwrap();
    let expected = &TEXT[..TEXT.find("Yes.").unwrap()];
    for policy in FlushPolicy::ALL {
        let mut reference = None;
        for capacity in CAPACITIES {
            let chunks = stream_through_buffer(&tok, &ids, policy, capacity);
            assert_eq!(chunks.concat(), expected, "{policy:?} capacity {capacity}");
            assert!(chunks.iter().all(|c| !c.contains('\u{FFFD}')));
            // The buffer does not change where the chunks are cut.
            assert_eq!(*reference.get_or_insert_with(|| chunks.clone()), chunks);
        }
    }
}

#[test]
fn cancellation_from_another_thread_mid_stream() {
    let tok = smollm2();
    let long_text = TEXT.repeat(20);
    let ids = tok.encode(&long_text, false, false).unwrap();
    let cancel = Cancellation::new();
    let (producer, consumer) = TokenBuffer::bounded(2);
    let (tokens_used, final_text) = thread::scope(|scope| {
        let worker = scope.spawn({
            let cancel = cancel.clone();
            let (tok, ids) = (&tok, &ids);
            move || {
                let mut stream = TextStream::new(FlushPolicy::EveryToken);
                let mut used = 0;
                let mut reason = StopReason::MaxTokens;
                for &id in ids {
                    if cancel.is_cancelled() {
                        reason = StopReason::Cancelled;
                        break;
                    }
                    used += 1;
                    if let Some(chunk) = stream.push_token(tok, id) {
                        if producer.push(chunk).is_err() {
                            reason = StopReason::Cancelled;
                            break;
                        }
                    }
                }
                let done = stream.finish();
                if let Some(chunk) = done.last_chunk {
                    let _ = producer.push(chunk);
                }
                producer.finish(reason);
                (used, done.text)
            }
        });
        // The consumer reads five chunks, then another thread cancels.
        let mut received = String::new();
        for chunk in consumer.iter().take(5) {
            received.push_str(&chunk);
        }
        let canceller = cancel.clone();
        thread::spawn(move || canceller.cancel()).join().unwrap();
        for chunk in &consumer {
            received.push_str(&chunk);
        }
        let (used, text) = worker.join().unwrap();
        assert_eq!(received, text, "everything produced was received, once");
        (used, text)
    });
    assert_eq!(
        consumer.status(),
        StreamStatus::Finished(StopReason::Cancelled)
    );
    // It stopped mid-way: the producer can be at most the buffer's capacity plus the chunk
    // it was pushing ahead of the consumer when the flag went up.
    assert!(
        tokens_used < ids.len() / 10,
        "{tokens_used} of {} tokens",
        ids.len()
    );
    assert!(long_text.starts_with(&final_text) && final_text.len() < long_text.len());
}
