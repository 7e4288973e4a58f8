//! Delivering generated text: incremental detokenization, stop strings, the token buffer.
