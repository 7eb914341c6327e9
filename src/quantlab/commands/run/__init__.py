"""The ``run`` command: :mod:`.plan` (request -> RunPlan), :mod:`.steps` (what the workflow rules
call), :mod:`.publish` (the run directory's artifact writers). Import from those modules: this
package imports none of them, so the planner's cold path stays light."""
