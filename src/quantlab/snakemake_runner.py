"""The one adapter between QuantLab and Snakemake's Python API (pinned 9.27.1).

Why the API and not the CLI: measured on this machine kind, the CLI pays ~1 s more per request
(its default ``--max-jobs-per-timespan`` leaves non-daemon timer threads that the process waits
for), and the API reports which files it (re)made and which jobs failed. Calls use keyword
arguments only (9.27 inserted a positional parameter). Rules are ``run:`` blocks executed as
threads in this process (``use_threads``): a spawned ``run:`` job costs a whole Snakemake start.

Snakemake's own locking is not used (``lock=False``): it is unsafe for concurrent requests (the
first run to finish deletes every lock) and a SIGKILL leaves it behind. Callers hold
``fcntl.flock`` locks on the content keys instead (see ``commands.common.KeyLocks``).

Everything Snakemake or a job prints goes to ``log_path`` (file descriptors 1 and 2 are
redirected around the call), so the caller's stdout stays the single envelope line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from quantlab.contract.paths import PROJECT_ROOT

SNAKEFILE = PROJECT_ROOT / "workflow" / "Snakefile"


@dataclass
class WorkflowOutcome:
    ok: bool
    updated_files: list[str] = field(default_factory=list)
    failed_logs: list[str] = field(default_factory=list)
    failed_rules: list[str] = field(default_factory=list)
    error: str = ""
    jobs: list[str] = field(default_factory=list)  # rule names of the jobs that ran / would run


@contextlib.contextmanager
def redirect_fds(log_path: Path | None, verbose: bool) -> Iterator[int]:
    """Send fd 1 and fd 2 to ``log_path`` (or fd 1 to fd 2 with ``verbose``) for the duration.
    Yields a duplicate of the caller's original stderr, for progress lines."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    target = None
    try:
        if verbose or log_path is None:
            os.dup2(2, 1)
        else:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            target = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)  # umask applies
            os.dup2(target, 1)
            os.dup2(target, 2)
        yield saved[1]
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        if target is not None:
            os.close(target)


class _JobCollector(logging.Handler):
    def __init__(self, progress=None) -> None:
        super().__init__(level=logging.DEBUG)
        self.failed_logs: list[str] = []
        self.failed_rules: list[str] = []
        self.jobs: list[str] = []
        self.rule_of: dict = {}
        self.progress = progress  # callable(rule_name, write) on each finished job
        self.stderr_fd: int | None = None

    def _write(self, text: str) -> None:
        if self.stderr_fd is not None:
            try:
                os.write(self.stderr_fd, text.encode())
            except OSError:
                pass

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        name = str(getattr(event, "value", event) or "")
        if name == "job_error":
            self.failed_rules.append(str(getattr(record, "rule_name", "")))
            self.failed_logs.extend(str(p) for p in (getattr(record, "log", None) or []))
        elif name == "job_info":
            rule = str(getattr(record, "rule_name", ""))
            self.jobs.append(rule)
            self.rule_of[getattr(record, "jobid", None)] = rule
        elif name == "job_finished" and self.progress is not None:
            try:
                self.progress(self.rule_of.get(getattr(record, "job_id", getattr(record, "jobid", None)), ""),
                              self._write)
            except Exception:  # progress is cosmetic
                pass


def execute(*, config: dict, workdir: Path, targets: list[str] | None = None, cores: int = 2,
            dry_run: bool = False, log_path: Path | None = None, verbose: bool = False,
            keep_going: bool = False, progress=None, force: bool = False) -> WorkflowOutcome:
    """Run (or dry-run) the workflow for ``config`` in ``workdir``; never raises for job failures.
    ``force`` reruns every job the targets need (Snakemake's ``forceall``), overwriting outputs."""
    with first_import_kept():
        from snakemake.api import SnakemakeApi
        from snakemake.logging import logger as smk_logger

        from quantlab.snakemake_sources import install as read_local_sources_directly

        read_local_sources_directly()  # no smart_open import for our own rule files (~35 ms)
    from snakemake.scheduling.greedy import SchedulerSettings as GreedySettings
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        ExecutionSettings,
        OutputSettings,
        ResourceSettings,
        SchedulingSettings,
        StorageSettings,
        WorkflowSettings,
    )

    workdir.mkdir(parents=True, exist_ok=True)
    # The request goes in as a dict with exactly the types a JSON configfile would give (the
    # steps run in this process or the worker, never as spawned jobs): no configfile to write,
    # and no YAML import, which Snakemake's configfile loader pays first (~10 ms).
    request_config = json.loads(json.dumps(config))
    collector = _JobCollector(progress)
    source_cache = Path(tempfile.mkdtemp(prefix="source-cache.", dir=workdir))
    outcome = WorkflowOutcome(ok=False)
    updated: list[str] = []
    cwd = os.getcwd()
    try:
        with _graceful_termination(), redirect_fds(log_path, verbose) as caller_stderr:
            collector.stderr_fd = caller_stderr
            quiet: set = set()  # everything goes to the log file (or stderr with --verbose)
            with SnakemakeApi(OutputSettings(quiet=quiet, enable_file_logging=False,
                                             show_failed_logs=False)) as api:
                smk_logger.addHandler(collector)
                try:
                    wf = api.workflow(
                        snakefile=SNAKEFILE,
                        workdir=workdir,
                        config_settings=ConfigSettings(config=request_config),
                        resource_settings=ResourceSettings(cores=cores),
                        storage_settings=StorageSettings(),
                        # a fresh source cache per call: Snakemake never refreshes a cached copy of a
                        # rule file, so a shared one would run stale rules after an upgrade
                        workflow_settings=WorkflowSettings(runtime_source_cache_path=source_cache),
                    )
                    # Every step writes its outputs atomically, so an output that exists is complete:
                    # Snakemake's own incomplete markers (left behind by a SIGKILL between our
                    # final rename and its bookkeeping) are ignored rather than trusted.
                    dag = wf.dag(DAGSettings(targets=frozenset(targets or ()), forceall=force,
                                             rerun_triggers=frozenset({"mtime"})))
                    dag.execute_workflow(
                        executor="local",
                        pseudo_executor="dryrun" if dry_run else None,
                        # keep_metadata=False: no per-output records under .snakemake/metadata (rerun
                        # decisions use mtimes only; the records cost each job writes and input
                        # checksums, and would pile up one file per store output, forever)
                        execution_settings=ExecutionSettings(lock=False, use_threads=True, ignore_incomplete=True,
                                                             keep_going=keep_going, keep_metadata=False),
                        scheduling_settings=SchedulingSettings(scheduler="greedy"),
                        scheduler_settings=GreedySettings(),
                        updated_files=updated,
                    )
                    outcome.ok = True
                except Exception as exc:  # job failures, parse errors, missing inputs
                    outcome.error = " ".join(f"{type(exc).__name__}: {exc}".split())[:2000]
                finally:
                    smk_logger.removeHandler(collector)
    finally:
        os.chdir(cwd)  # api.workflow(workdir=...) chdirs the whole process
        import shutil

        shutil.rmtree(source_cache, ignore_errors=True)
    outcome.updated_files = updated
    outcome.failed_logs = [str(workdir / p) if not os.path.isabs(p) else p for p in collector.failed_logs]
    outcome.failed_rules = collector.failed_rules
    outcome.jobs = collector.jobs
    return outcome


def first_import_kept():
    """The process's first Snakemake import (~1,400 modules' functions, classes and constants)
    with the cyclic collector off, then everything alive frozen into its permanent generation
    (``commands.imports_ahead.kept_for_good``). They live until exit anyway: the collections
    during the import (~20-40 ms of a cold request's CPU), during the workflow and at exit
    (``contract/exit.py``, ~30-50 ms) never walk them. Once per process: the request's files
    are all opened later, and a long-lived process (the Python API) keeps collecting what its
    requests create. Later calls: nothing to do."""
    if "snakemake.api" in sys.modules:
        return contextlib.nullcontext()
    from quantlab.commands.imports_ahead import kept_for_good

    return kept_for_good()


@contextlib.contextmanager
def _graceful_termination() -> Iterator[None]:
    """SIGTERM/SIGINT while Snakemake runs: let the running jobs finish, then report the signal.

    Snakemake's scheduler replaces the SIGTERM handler with its own "finish the running jobs, then
    stop" and never restores it; SIGINT would raise in the scheduler while job threads still use
    the step worker. So SIGINT goes to Snakemake's handler too once it is installed, and on the way
    out the caller's handlers come back and the first signal received is delivered again: the
    caller sees the termination (its handler raises), not a failed workflow."""
    try:
        previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
        received: list[int] = []

        def on_signal(signum, frame):
            received.append(signum)
            snakemake_handler = signal.getsignal(signal.SIGTERM)
            if snakemake_handler is not on_signal and callable(snakemake_handler):
                snakemake_handler(signum, frame)
            elif callable(previous[signum]):
                previous[signum](signum, frame)

        for signum in previous:
            signal.signal(signum, on_signal)
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    try:
        yield
    finally:
        snakemake_handler = signal.getsignal(signal.SIGTERM)
        if not received and getattr(getattr(snakemake_handler, "__self__", None), "_user_kill", None):
            received.append(signal.SIGTERM)  # Snakemake's own handler caught it
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if received:
            signal.raise_signal(received[0])


def read_failure(outcome: WorkflowOutcome) -> tuple[int, str, str]:
    """(exit_code, error_type, message) of the first failed job that left an error record."""
    for path in outcome.failed_logs:
        try:
            with open(path, encoding="utf-8") as fh:
                rec = json.load(fh)
            return int(rec.get("exit_code", 1)), str(rec.get("error_type", "WorkflowError")), str(rec["message"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    rules = ", ".join(outcome.failed_rules) or "workflow"
    return 1, "WorkflowError", f"{rules} failed: {outcome.error or 'see the Snakemake log'}"


def execute_cli(*, config: dict, workdir: Path, targets: list[str], executor: str | None, profile: str | None,
                jobs: int, log_path: Path, extra_args: list[str] | None = None) -> WorkflowOutcome:
    """Run the workflow through the ``snakemake`` CLI, for executor plugins and profiles (SLURM,
    Kubernetes, cluster-generic ...). One second slower than the API, which does not matter there.

    The child writes only to ``log_path``, dies with this process (PR_SET_PDEATHSIG), and is
    handed the request as a JSON configfile (a ``--config`` dict loses types in cluster jobs).
    """
    import subprocess

    workdir.mkdir(parents=True, exist_ok=True)
    fd, config_file = tempfile.mkstemp(prefix="request.", suffix=".json", dir=workdir)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh)
    cmd = [str(Path(sys.executable).with_name("snakemake")), "-s", str(SNAKEFILE), "-d", str(workdir),
           "--nolock", "--ignore-incomplete", "--rerun-triggers", "mtime", "--drop-metadata", "--jobs", str(jobs),
           "--configfile", config_file]
    if executor:
        cmd += ["--executor", executor]
    if profile:
        cmd += ["--profile", profile]
    cmd += plugin_args(executor, profile, workdir / config.get("log_dir", "logs"))
    cmd += list(extra_args or []) + ["--", *targets]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "QUANTLAB_PROJECT_ROOT": str(PROJECT_ROOT),
           "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "src"), os.environ.get("PYTHONPATH", "")])}

    def die_with_parent() -> None:
        try:
            import ctypes
            import signal

            ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))
        except (OSError, AttributeError):
            pass

    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    cwd=str(workdir), preexec_fn=die_with_parent)
            try:
                proc.wait()
            except BaseException:  # this request is terminated (SIGTERM/SIGINT -> Terminated)
                cancel_jobs(proc)
                raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(config_file)
    outcome = WorkflowOutcome(ok=proc.returncode == 0)
    if not outcome.ok:
        outcome.error = f"snakemake exited {proc.returncode} (see {log_path})"
        # the jobs' error records (the CLI does not say which job failed), oldest first. The log dir
        # belongs to this request alone, so no time filter: on a cluster the files' mtimes come
        # from the shared filesystem's clock, not this machine's
        outcome.failed_logs = [str(p) for p in sorted((workdir / config.get("log_dir", "logs")).rglob("*.log"),
                                                      key=lambda p: p.stat().st_mtime)]
    return outcome


CANCEL_WAIT_S = 30  # how long a terminated request lets its snakemake cancel the cluster jobs


def cancel_jobs(proc) -> None:
    """Stop the snakemake CLI child of a terminated request together with its cluster jobs.
    SIGINT, not SIGTERM: on SIGTERM snakemake waits for the running jobs to finish; on SIGINT it
    cancels them (the SLURM plugin runs ``scancel``) and exits. SIGKILL after CANCEL_WAIT_S."""
    import signal
    import subprocess

    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=CANCEL_WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def plugin_args(executor: str | None, profile: str | None, job_log_dir: Path) -> list[str]:
    """Per-request options for the executor plugin that will run (``executor``, else the profile's).

    SLURM: every request shares the workdir, and the plugin's default log directory is
    ``<workdir>/.snakemake/slurm_logs``, which each snakemake cleans at exit (it deletes the
    empty directories, among them those of another request's jobs still pending, whose
    ``sbatch --output`` then cannot be opened: the job fails). So each request gets its own, under
    its job logs: dropped with them after success, kept with them after a failure."""
    name = executor
    if not name and profile:
        import yaml
        from snakemake.cli import get_profile_dir

        found = get_profile_dir(profile)
        if found is not None:
            with open(found[1], encoding="utf-8") as fh:
                name = (yaml.safe_load(fh) or {}).get("executor")
    if name == "slurm":
        return ["--slurm-logdir", str(job_log_dir / "slurm")]
    return []
