"""Pure functions of a results dict: report.md and its figures (markdown.py), the studies'
text and figures (study.py), and an arm's training set exported as an ImageFolder with its
dataset card (export.py, handed the classifier folder it checks against).

Imports steps (export rebuilds the arm's training set), config, data and store; never the
job graph, results or cli.
"""
