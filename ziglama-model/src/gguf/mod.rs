//! GGUF files: reading (zero-copy from a memory map) and writing.
