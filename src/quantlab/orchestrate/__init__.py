"""Orchestration: every workflow command yields a :class:`~quantlab.orchestrate.plan.Plan` and
:func:`~quantlab.orchestrate.execute.execute` runs it (claim -> lock -> fast path or Snakemake ->
outcome -> cleanup)."""
