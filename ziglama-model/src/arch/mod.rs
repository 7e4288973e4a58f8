//! Model architectures, each built from GGUF metadata alone.
