"""raregan's pipeline: the stage folders, top to bottom in the order data flows.

    cli/      the three commands (click only)
    graph/    augment-and-compare as typed jobs, their keys, the scheduler, Ray, preflight
    results/  numbers from finished jobs: pooled predictions, gains, the studies' points
    report/   pure functions of those numbers: report.md, study.md, figures, an arm's export
    steps/    the work behind each job, and the ExperimentPlan every job derives from
    config/   what was asked: ExperimentConfig, the arms table, the profiles (no torch)
    data/     datasets in memory: formats, decoding, the demo painter, lesion-level splits
    store/    the run directory: paths, records and keys, lock, checkpoints, TensorBoard
    errors.py, format.py, plots.py on the ground floor

Each folder imports only the folders below it; pyproject.toml declares that as import-linter
contracts and tests/test_architecture.py checks them.
"""
