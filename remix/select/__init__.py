"""Target-task data selection (DataMIL): which prior data helps a task with a few demos.

`remix-select` clusters the prior data, scores each cluster with datamodels over a rollout-free target
metric (the held-out target demos' BC loss of the Re-Mix core's small discrete policy), keeps the best
clusters up to a budget and writes them in remix-subset's form. See docs/select.md.
"""
