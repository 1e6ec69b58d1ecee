"""Declarations and their validation, without torch or numpy: ExperimentConfig and its JSON
round trip (experiment.py), the arms table (arms.py), the budget profiles (profiles.py).

Imports only store (layout names) and errors.
"""
