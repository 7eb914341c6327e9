"""Artifacts: atomic writes, run directories, the runs index and plots."""
