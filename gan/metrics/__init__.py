"""Set metrics for generated images, one per module, computed on cached feature tensors.

Features are extracted once per image set (features.py); FID, KID and precision/recall are pure
functions of two feature tensors, so the real set's features are reused by every evaluation.
A number is only comparable to numbers of the same feature space and sample sizes:
`features.metric_label` spells both out wherever one is printed or written.
"""
