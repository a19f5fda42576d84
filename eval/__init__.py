"""Evaluation: datasets, grounding and retrieval metrics, judges, reports."""
