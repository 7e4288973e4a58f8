//! Turning logits into tokens: the `Sampler` and `LogitProcessor` traits and the catalogue.
