"""Datasets in memory: the Dataset type, resizing and formats (dataset.py) below the format
dispatcher (load.py); file listings, the decode cache, MedMNIST, the synthetic demo and its
painter, lesion-level splits.

Imports store (records) and errors; no stage above it.
"""
