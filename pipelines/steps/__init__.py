"""The work behind each job, and the plan it works from.

plan.py: the ExperimentPlan, computed once per (fold, dose, scarcity level) from the config
and the data (split, targets, sample sets, every GAN's and classifier's recipe); gan.py,
samples.py, classifier.py: the GAN, sample-set and classifier jobs' work, on top of
gan_run.py / gan_resume.py (a GAN run, also gan-train's), sampling.py (draw and filter, also
gan-sample's), feature_space.py, training_set.py and recipe.py.

Imports config, data and store (and the gan and classifier libraries); nothing above it.
"""
