"""augment-and-compare as a job graph: the typed jobs and their keys (jobs.py), the one
scheduler with its local backend (scheduler.py), the Ray backend (ray_executor.py) and the
checks that run before any job (preflight.py, which returns notes rather than printing).

Imports results (the report job writes them), steps, config, data and store; never cli.
"""
