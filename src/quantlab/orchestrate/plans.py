"""Each workflow command's planner wrapped as a :class:`~quantlab.orchestrate.plan.Plan`.

A builder takes the parsed request and the CLI options, runs the command's own planner
(validation, content keys, run-id claim) and says, for the one executor, what the request
produces, what it locks, where its log goes and what happens on success and on failure.
Imports stay inside the functions (cold ``run`` path).
"""

from __future__ import annotations

import os
from pathlib import Path

from quantlab.contract.lifecycle import print_warnings
from quantlab.orchestrate.plan import Plan


def _discard(path: Path | None):
    def discard() -> None:
        if path is not None:
            import shutil

            shutil.rmtree(path, ignore_errors=True)
    return discard


def _take_warnings(req, found: list[str], dedup: bool = False) -> None:
    """Warnings found after planning (by the steps): on stderr now, and in the envelope."""
    new = [w for w in found if w not in req.warnings] if dedup else list(found)
    print_warnings(new)
    req.warnings.extend(new)


# ------------------------------------------------------------------------------------- run
def run_plan(req, opts) -> Plan:
    from quantlab.commands.run.plan import plan_run
    from quantlab.contract.paths import internal_root
    from quantlab.store_layout import run_chain, sim_dir

    from quantlab.orchestrate.early import abandoned_on_error, take_worker

    printed = len(req.warnings)
    worker = take_worker(opts)  # a big run's, forked by main.py before validation
    with abandoned_on_error(worker):
        rp = plan_run(req.params, request_id=req.request_id, warnings=req.warnings, origin=req.origin,
                      claim=not opts.dry_run)
    print_warnings(req.warnings[printed:])  # found while planning (e.g. a default ticker stood in)
    plan = Plan(run_id=rp.run_id, mode="run", config=rp.snakemake_config(), target=rp.target,
                log_path=rp.staging_dir / "logs" / "snakemake.log", keyed_outputs=run_chain(rp.keys),
                prefetch=_run_prefetch(rp.specs, rp.keys), discard=_discard(rp.staging_dir), worker=worker)
    if opts.dry_run:
        return plan
    internal = internal_root()
    record = rp.request_record()
    sim = str(internal / sim_dir(rp.keys["sim"]))
    published = str(internal / rp.published)

    def fast_path() -> None:
        from quantlab.commands.run import steps as run_steps

        if rp.paper:
            run_steps.step_publish_paper(record, sim, published)
        else:
            run_steps.step_publish(record, sim, published)
            run_steps.step_refresh_index(record, published, str(internal / rp.target))

    def on_success(result: dict) -> dict:
        from quantlab.orchestrate.early import remember

        remember(opts)  # a big run's identical request next time forks its worker only if it needs one
        if result.get("warnings"):  # found by the steps (e.g. a margin call): stderr and envelope
            _take_warnings(req, result["warnings"])
        return result

    plan.fast_path, plan.on_success = fast_path, on_success
    if rp.paper:
        _paper_session(plan, rp, req)
    return plan


def _paper_session(plan: Plan, rp, req) -> None:
    """A paper session is visible (and inspectable) while it runs, and keeps its Snakemake log."""
    from quantlab.commands.paper import PaperSession
    from quantlab.contract.lifecycle import error_info
    from quantlab.contract.paths import internal_root

    session = PaperSession(rp.run_dir, session_id=rp.run_id, request_id=req.request_id, created_at=rp.created_at)
    session.create(rp.params, req.warnings)
    plan.log_path = rp.run_dir / "logs" / "snakemake.log"
    plan.discard = _discard(None)
    plan.on_locked = session.start
    done = plan.on_success

    def on_success(result: dict) -> dict:
        result = done(result)
        session.complete()
        result["session_status"] = "completed"
        return result

    def on_failure(exc: BaseException) -> None:
        from quantlab.orchestrate.execute import keep_failed_log

        session.fail(**error_info(exc, verbose=False))
        keep_failed_log(None, internal_root(), rp.run_id)

    plan.on_success, plan.on_failure = on_success, on_failure


def _run_prefetch(specs: dict, keys: dict) -> tuple:
    """The step worker's warm-up of a run: its data, for a big window numba, then the chain's
    steps computed ahead (commands/warmup.py, commands/speculate.py). A big window's warm-up is
    the request's critical path: the worker runs it before importing the other step libraries."""
    from quantlab.commands.warmup import big_run
    from quantlab.contract.paths import internal_root

    big = big_run(specs["data"])
    return ("warmup.prefetch_run", (specs["data"], specs["signals"], specs["sim"]["engine"], big,
                                    (str(internal_root()), dict(keys), specs["sim"])), big)


# ----------------------------------------------------------------------------------- sweep
def sweep_plan(req, opts) -> Plan:
    from quantlab.commands.sweep.plan import computed_whole, estimate_bars, plan_sweep
    from quantlab.commands.experiment import load_experiment
    from quantlab.commands.sweep.board import attach_board
    from quantlab.commands.sweep.spec import externalize, spec_path
    from quantlab.contract.paths import internal_root, resolve_input_path
    from quantlab.orchestrate.early import abandoned_on_error, remember, take_worker
    from quantlab.store_layout import sweep_outputs

    executor = req.params.get("executor") or opts.executor
    # forked by main.py before validation (or decided against there), else here before planning
    worker = take_worker(opts, "sweep", req.params)
    with abandoned_on_error(worker):
        exp = load_experiment(req.params, resolve_path=resolve_input_path)
        print_warnings(exp.warnings)
        req.warnings = req.warnings + exp.warnings
        sp = plan_sweep(exp, req.params, request_id=req.request_id, warnings=req.warnings,
                        origin=req.origin, cores=opts.cores, claim=not opts.dry_run, force=opts.force)
    board = attach_board(sp.config, sp.run_id) if exp.mode == "grid" else None
    with abandoned_on_error(worker):
        try:
            profile = _profile_path(req.params.get("profile") or opts.profile)
        except BaseException:
            _discard(sp.staging_dir)()
            raise
    work = sum(len(spec["combos"]) for spec in sp.config["shards"].values()) * max(
        estimate_bars(exp.base, exp.base["start"], exp.base["end"]), 1)
    whole = None  # a short grid sweep: every shard and the board computed ahead
    if board is not None and computed_whole(exp.mode, work):
        whole = (str(Path(board).parent), sp.config["requests"][sp.run_id])
    prefetch = (("sweep.prefetch_sweep", (list(sp.config["data"].values()), exp.strategy,
                                          dict(exp.combos[0]), work >= 300_000,
                                          any(r.get("robustness") for r in sp.config["requests"].values()),
                                          (str(internal_root()), dict(sp.config["data"]), dict(sp.config["shards"]),
                                           whole)))
                if sp.new_shards or whole else None)  # the shard dicts as planned, before externalize() slims
    # the config; a grid whose shards are all stored (re-ranked, relabelled) still has its board computed ahead

    spec_file = internal_root() / spec_path(sp.run_id)

    def on_success(result: dict) -> dict:
        spec_file.unlink(missing_ok=True)  # scratch (commands/sweep/spec.py)
        remember(opts)  # an identical request next time forks its worker only if it needs one
        result["mode"] = exp.mode
        return result

    def discard() -> None:
        spec_file.unlink(missing_ok=True)
        _discard(sp.staging_dir)()

    plan = Plan(run_id=sp.run_id, mode=exp.mode, config=sp.config, target=sp.target,
                log_path=sp.staging_dir / "logs" / "snakemake.log", keyed_outputs=sweep_outputs(sp.config),
                prefetch=prefetch, discard=discard, executor=executor, profile=profile,
                progress=_progress_printer(len(sp.new_shards)), on_success=on_success,
                before_workflow=lambda: externalize(sp.config, sp.run_id, internal_root()), worker=worker)
    if board is not None and not opts.dry_run:
        plan.fast_path = _sweep_fast_path(sp, board)
    return plan


def _sweep_fast_path(sp, board: str):
    """An identical grid sweep (its shards and its board in the store): publish and refresh the
    index directly, without Snakemake, as a run's fast path does."""
    from quantlab.commands.run.steps import step_refresh_index
    from quantlab.commands.sweep.steps import step_publish_sweep
    from quantlab.contract import namespaces
    from quantlab.contract.paths import internal_root

    internal = internal_root()
    record = sp.config["requests"][sp.run_id]
    published = str(internal / namespaces.request_file(sp.run_id, "sweep", "published.json"))

    def fast_path() -> None:
        step_publish_sweep(record, str(internal / board), published)
        step_refresh_index(record, published, str(internal / sp.target))
    return fast_path


def _profile_path(profile: str | None) -> str | None:
    """A profile name from profiles/ or a path to a profile directory."""
    if not profile:
        return None
    from quantlab.contract.paths import PROJECT_ROOT, resolve_input_path
    from quantlab.errors import ConfigError

    if os.sep not in profile and (PROJECT_ROOT / "profiles" / profile).is_dir():
        return str(PROJECT_ROOT / "profiles" / profile)
    path = resolve_input_path(profile, "profile")
    if not (path / "config.yaml").is_file():
        raise ConfigError(f"params.profile: no Snakemake profile (config.yaml) at {path}")
    return str(path)


def _progress_printer(total: int):
    """Shards done / total with an ETA, on the caller's stderr, at most every 2 s."""
    import time

    if total <= 1:
        return None
    state = {"done": 0, "t0": time.monotonic(), "last": 0.0}

    def on_job(rule: str, write) -> None:
        if rule != "sweep_shard":
            return
        state["done"] += 1
        now = time.monotonic()
        if now - state["last"] < 2.0 and state["done"] < total:
            return
        state["last"] = now
        elapsed = now - state["t0"]
        eta = elapsed / state["done"] * (total - state["done"])
        write(f"sweep: {state['done']}/{total} shards done, ETA {eta:.0f}s\n")

    return on_job


# --------------------------------------------------------------------------------- forward
def forward_plan(req, opts) -> Plan:
    """One request at a time per named session directory: its lock is held from reading the
    session to reading this request's own result back (a resume plans on what the last wrote)."""
    from quantlab.commands.forward.plan import plan_forward, session_lock_key, session_target
    from quantlab.commands.common import KeyLocks
    from quantlab.contract.paths import internal_root
    from quantlab.store_layout import run_chains_outputs
    from quantlab.testhooks import pause

    locks = KeyLocks(internal_root() / "locks")
    try:
        named = session_target(req.params)
        if named is not None and not opts.dry_run:
            locks.acquire(session_lock_key(named), exclusive=True)
            pause("forward_session_locked")
        before = len(req.warnings)
        fp = plan_forward(req.params, request_id=req.request_id, warnings=req.warnings, origin=req.origin,
                              claim=not opts.dry_run)
        print_warnings(req.warnings[before:])
    except BaseException:
        locks.release_all()
        raise
    log_dir = fp.session_dir if fp.resume else fp.staging_dir
    return Plan(run_id=fp.request_key, mode="forward", config=fp.config, target=fp.target,
                log_path=log_dir / "logs" / "snakemake.log", keyed_outputs=run_chains_outputs(fp.config),
                discard=_discard(None if fp.resume else fp.staging_dir), locks=locks)


# ------------------------------------------------------------------------ portfolio, basket
def portfolio_plan(req, opts) -> Plan:
    from quantlab.commands.portfolio.plan import plan_portfolio
    from quantlab.store_layout import run_chains_outputs

    pp = plan_portfolio(req.params, request_id=req.request_id, warnings=req.warnings, claim=not opts.dry_run)

    def on_success(result: dict) -> dict:
        # found while combining (calendar gaps, weights): the envelope and stderr say so too
        _take_warnings(req, result.pop("warnings", None) or [], dedup=True)
        return result

    return Plan(run_id=pp.run_id, mode="portfolio", config=pp.config, target=pp.target,
                log_path=pp.staging_dir / "logs" / "snakemake.log", keyed_outputs=run_chains_outputs(pp.config),
                discard=_discard(pp.staging_dir), on_success=on_success)
