"""Evaluation: measuring a codec, classical baselines, fidelity metrics, the benchmark, reports and figures (notebook 06)."""
