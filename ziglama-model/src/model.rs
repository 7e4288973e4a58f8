//! A loaded model: weights and hyperparameters, and the forward pass over a batch.
