"""Numbers from finished jobs: every fold's classifiers pooled (collect.py), the gains with
their intervals (compare.py), the dose and scarcity studies' points (study.py), and which
reports an experiment gets (reports.py, the report job's one entry).

Imports report (to write what it computed), steps, config, data and store; never graph or cli.
"""
