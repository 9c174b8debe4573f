"""Training: the engine, its batches, resumable state, logs, GAN losses, data-parallel runs, the shipped ladder (notebooks 01-05)."""
