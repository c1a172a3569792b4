"""Decisions and downloads: the memory-fit estimator, the plan, and (later) its execution."""
