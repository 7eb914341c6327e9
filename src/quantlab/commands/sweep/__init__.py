"""The ``sweep`` command: :mod:`.plan` (experiment -> SweepPlan), :mod:`.steps` (what
workflow/rules/sweep.smk calls), :mod:`.results` (shard results read back, ranking),
:mod:`.publish` (the sweep run directory's artifact writers). This package imports none of them."""
