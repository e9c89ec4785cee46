"""Evaluation on the cluster: binary-classification metrics, baselines, lead time, alert policy, reports."""
