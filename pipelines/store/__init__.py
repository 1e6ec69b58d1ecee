"""The run directory: every path (layout.py), JSON records, versions and job keys
(records.py), the run-directory lock, GAN checkpoints and TensorBoard writers.

Imports only errors (and the gan library for checkpoints).
"""
