#!/usr/bin/env python
"""Mutation check: remove each guarded mechanism in turn and make sure its tests notice.

    .venv/bin/python scripts/mutation_check.py [--only NAME] [--list] [--jobs 2]

For every entry of ``MUTANTS`` (a mechanism docs/reliability.md promises, the exact code that
implements it, and the tests that claim to prove it) the script copies the working tree to a
temporary directory, replaces that code with its removal, runs those tests there and expects
them to FAIL ("caught"). A mutant whose tests still pass ("SURVIVED") means a guarantee without
a real test: the script exits 1. A mutant whose code is no longer found ("stale") also exits 1,
so the list follows the code. The tests are run once unmutated first: they must pass.
``--jobs N`` checks N mutants at once, each worker in its own copy of the tree (the tests use
their own temporary outputs roots and watch only their own processes, as under xdist).

Curated on purpose (a whole-tree mutation tool is far too slow for this suite): add an entry
with every new guarantee. Run by ``make test`` (hence CI).
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str          # file, relative to the repository root
    old: str           # code that implements the mechanism (must occur exactly once)
    new: str           # the same place with the mechanism removed
    tests: tuple[str, ...]


MUTANTS = [
    Mutant("paper-session heartbeat",
           "src/quantlab/commands/paper.py",
           "    def _beat(self) -> None:\n",
           "    def _beat(self) -> None:\n        return\n",
           ("tests/cli/test_paper.py::test_heartbeat_beats_while_a_step_runs_and_stops_with_a_kill",)),
    Mutant("runs-index lock",
           "src/quantlab/artifacts/catalog.py",
           "with FileLock(str(Path(root) / LOCK_NAME), timeout=LOCK_TIMEOUT_S):",
           "if True:",
           ("tests/unit/test_artifacts.py::test_concurrent_index_refreshes_lose_no_row",)),
    Mutant("step worker dies with its parent (PR_SET_PDEATHSIG)",
           "src/quantlab/commands/worker.py",
           "libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG",
           "pass",
           ("tests/cli/test_kill_safety.py::test_the_step_worker_dies_with_a_killed_request",)),
    Mutant("the snakemake CLI child (executor plugins, profiles) dies with its parent",
           "src/quantlab/snakemake_runner.py",
           "ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))",
           "pass",
           ("tests/cli/test_kill_safety.py::test_the_snakemake_cli_child_dies_with_a_killed_request",)),
    Mutant("speculative run steps never download (issue #15)",
           "src/quantlab/commands/speculate.py",
           "    loader._load_yfinance = refuse  # only the chain loads data while the worker prefetches\n",
           "",
           ("tests/unit/test_speculate.py::test_speculation_never_downloads",)),
    Mutant("a speculated file is taken as written now: the mtime order Snakemake reads (issue #15)",
           "src/quantlab/commands/speculate.py",
           "            os.replace(src, dst)\n            os.utime(dst)\n",
           "            os.replace(src, dst)\n",
           ("tests/unit/test_speculate.py::test_speculated_files_are_the_steps_files",)),
    Mutant("a sweep shard takes the files computed ahead for its spec (issue #15)",
           "src/quantlab/commands/sweep/steps.py",
           '    if take_speculated("sweep.step_sweep_shard", spec, (out_parquet, out_sidecar, summary_path(out_parquet))):\n'
           "        return\n",
           "",
           ("tests/unit/test_speculate_sweep.py::test_speculated_shards_are_the_steps_files",)),
    Mutant("a merge wanting part of a shard summarises those combinations again (issue #15)",
           "src/quantlab/commands/robust_sweep.py",
           ' if have == wanted else None\n',
           "\n",
           ("tests/unit/test_shard_summary.py::test_a_request_using_part_of_a_shard_summarises_its_combinations_again",)),
    Mutant("the shards' correlation sums are added group by group, in order: one pass's numbers (issue #15)",
           "src/quantlab/commands/robust_sweep.py",
           '        for zpart in part["zparts"]:\n            z += zpart\n',
           '        z += part["zparts"].sum(axis=0)\n',
           ("tests/unit/test_shard_summary.py::test_summaries_give_the_numbers_of_one_pass_over_the_returns",)),
    Mutant("a shard writes its summary only once every chunk is evaluated (issue #15)",
           "src/quantlab/commands/robust_sweep.py",
           '    ppy = _chunks(bars, spec, spec["combos"], threads, on_chunk)\n',
           '    summary.write(out_path, [], spec)\n    ppy = _chunks(bars, spec, spec["combos"], threads, on_chunk)\n',
           ("tests/unit/test_shard_summary.py::test_a_failing_shard_leaves_no_file",)),
    Mutant("a speculated shard is taken only by the job with the same spec (issue #15)",
           "src/quantlab/commands/speculate.py",
           "    return step, canonical_hash(spec)\n",
           '    return step, canonical_hash(spec.get("family"))\n',
           ("tests/unit/test_speculate_sweep.py::test_a_shard_is_taken_once_and_only_by_its_own_spec",)),
    Mutant("numba is imported without scipy.linalg (issue #15)",
           "src/quantlab/engine/jit.py",
           '    stubs = [name for name in (blas, "cffi") if name not in sys.modules]\n',
           '    stubs = [name for name in ("cffi",) if name not in sys.modules]\n',
           ("tests/unit/test_jit_import.py::test_grid_kernels_run_under_numba_without_scipy_linalg",)),
    Mutant("speculation does not fire the test pause points (issue #15)",
           "src/quantlab/commands/speculate.py",
           "    from quantlab.commands.worker import resolve_step\n",
           "    from quantlab.commands.worker import step_function as resolve_step\n",
           ("tests/unit/test_speculate_sweep.py::test_speculation_does_not_fire_the_test_pause_points",)),
    Mutant("a sweep stops computing shards ahead once Snakemake asks for a job (issue #15)",
           "src/quantlab/commands/speculate.py",
           "                break  # Snakemake is asking: the remaining steps run as its jobs\n",
           "                pass\n",
           ("tests/unit/test_speculate_sweep.py::test_shards_stop_being_computed_ahead_once_snakemake_asks",)),
    Mutant("per-key locks (compute once)",
           "src/quantlab/orchestrate/execute.py",
           "        locks.acquire(key, exclusive=True)\n        if all(p.exists() and intact(p) for p in paths):",
           "        if False:",
           ("tests/cli/test_locks.py::test_identical_concurrent_requests_simulate_once",)),
    Mutant("output path guard",
           "src/quantlab/contract/paths.py",
           "        if real == root or root in real.parents:\n            return real\n",
           "        return real\n",
           ("tests/cli/test_run_errors.py::test_escaping_output_paths_are_refused",
            "tests/cli/test_reliability.py::test_hostile_requests_end_in_a_contract_exit_code")),
    Mutant("sweep shards declare their threads",
           "workflow/rules/sweep.smk",
           "    threads: shard_threads()\n",
           "",
           ("tests/cli/test_workflow_edges.py::test_sweep_shards_declare_their_threads_and_the_scheduler_caps_them_at_cores",)),
    Mutant("configs outside the planner are validated against the schema",
           "workflow/Snakefile",
           'validate(config, "schemas/config.schema.yaml")',
           "pass",
           ("tests/cli/test_workflow_edges.py::test_plain_snakemake_rejects_a_config_outside_the_schema",)),
    Mutant("back-adjustment by the adjusted close (data, issue #16)",
           "src/quantlab/data/adjust.py",
           '    if mode == "auto":\n        return ratio\n',
           '    if mode == "auto":\n        return None\n',
           ("tests/cli/test_data_trust.py::test_bundled_stocks_are_served_adjusted_by_default",
            "tests/cli/test_data_trust.py::test_adjusted_and_unadjusted_copies_give_the_same_backtest")),
    Mutant("split-like jumps on unadjusted prices are warned (data, issue #16)",
           "src/quantlab/data/adjust.py",
           '    if not bars.adjustment.startswith("none"):\n        return bars\n',
           "    return bars\n",
           ("tests/cli/test_data_trust.py::test_split_warning_names_the_date_on_raw_aapl_2005",)),
    Mutant("a file window must be covered (data, issue #16)",
           "src/quantlab/data/loader.py",
           "    if req.require_coverage:\n",
           "    if False:\n",
           ("tests/cli/test_data_trust.py::test_window_not_covered_by_the_file_names_its_coverage",)),
    Mutant("registry report: a zero-trade result is never ranked best",
           "src/quantlab/registry/html_board.py",
           "return finite(row.get(\"sharpe_simple\")) is not None and not no_trades",
           "return finite(row.get(\"sharpe_simple\")) is not None",
           ("tests/unit/test_html_board.py",)),
    Mutant("static PNG: dated ticks along the time axis",
           "src/quantlab/artifacts/plots.py",
           "idx = sorted({int(round(i)) for i in np.linspace(0, n - 1, min(n_ticks, n))})",
           "idx = [0, n - 1]",
           ("tests/unit/test_plots.py",)),
    Mutant("SLURM jobs of a request log to its own directory (issue #15)",
           "src/quantlab/snakemake_runner.py",
           'return ["--slurm-logdir", str(job_log_dir / "slurm")]',
           "return []",
           ("tests/unit/test_executor_args.py::test_slurm_gets_a_log_dir_of_its_own_from_the_flag_or_the_profile",)),
    Mutant("a sweep's board computed ahead is taken by its merge job (issue #15)",
           "src/quantlab/commands/sweep/steps.py",
           '    if take_dir("sweep.step_merge_leaderboard", board_ident(record), out_dir, BOARD_FILES[0]):\n'
           "        return\n",
           "",
           ("tests/unit/test_speculate_sweep.py::test_a_short_grid_is_computed_ahead_whole_board_included",)),
    Mutant("an early worker is ended when its request fails planning (issue #15)",
           "src/quantlab/orchestrate/early.py",
           "    except BaseException:\n        if worker is not None:\n            worker.abandon()\n        raise\n",
           "    except BaseException:\n        raise\n",
           ("tests/unit/test_orchestrate.py::test_a_big_run_that_fails_planning_abandons_its_early_worker",
            "tests/unit/test_orchestrate.py::test_a_sweep_that_fails_validation_abandons_its_early_worker")),
    Mutant("a sweep's merge declares the bars it reads (Snakemake rebuilds them)",
           "workflow/rules/sweep.smk",
           "        shards=board_shards,\n        bars=board_bars,\n",
           "        shards=board_shards,\n",
           ("tests/cli/test_sweep_robustness.py::test_the_merge_declares_the_bars_it_reads",)),
    Mutant("a write withdraws its promised table: a failed one is not read back (issue #15)",
           "src/quantlab/columnar.py",
           "    finally:\n        _PROMISED.pop(os.fspath(path), None)\n",
           "    finally:\n        pass\n",
           ("tests/unit/test_sim_tables.py::test_a_promised_table_is_read_back_before_its_file_exists",)),
    Mutant("trades.csv kernel: a near-tie cell goes to Python's %.10g (same bytes, issue #15)",
           "src/quantlab/artifacts/trades_csv_kernel.py",
           "    if abs(frac - 0.5) < TIE_GUARD:\n        return -1\n",
           "",
           ("tests/unit/test_trades_csv_kernel.py::test_exact_ties_always_go_to_python",
            "tests/unit/test_trades_csv_kernel.py::test_g10_is_percent_10g_or_hands_the_cell_to_python")),
    Mutant("a plugin strategy gets copies of the bars the run chain keeps (issue #15)",
           "src/quantlab/commands/run/steps.py",
           'own = type(strategy).__module__.startswith("quantlab.")',
           "own = True",
           ("tests/unit/test_run_store.py::test_a_plugin_that_writes_into_its_inputs_leaves_the_chains_bars_as_read",)),
    Mutant("a speculated step whose late write failed is not counted as done (issue #15)",
           "src/quantlab/commands/speculate.py",
           "            except Exception:  # noqa: BLE001 - not done: the step computes when it really runs\n"
           "                continue\n",
           "            except Exception:  # noqa: BLE001 - not done: the step computes when it really runs\n"
           "                pass\n",
           ("tests/unit/test_speculate.py::test_trades_csv_is_written_beside_the_next_steps_and_a_failure_undoes_only_simulate",)),
]


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                         capture_output=True).stdout.decode()
    return [p for p in out.split("\0") if p and (ROOT / p).is_file()]


def copy_tree(dest: Path) -> None:
    for rel in tracked_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    # The caches of the unmutated code (bytecode, numba's compiled kernels) come along: both are
    # checked against their source's mtime and size, which copy2 keeps; a mutated file gets
    # another mtime (``check_mutant``), so its stale caches are never used.
    for cache in (ROOT / "src").rglob("__pycache__"):
        shutil.copytree(cache, dest / cache.relative_to(ROOT), dirs_exist_ok=True)


def run_tests(tree: Path, tests: tuple[str, ...]) -> tuple[bool, float, str]:
    # a mutant makes its tests wait out every "must happen at once" deadline: 5 s is still ample
    env = {**os.environ, "QUANTLAB_TEST_PAUSE_TIMEOUT": "20", "QUANTLAB_TEST_EVENT_WAIT": "5"}
    env.pop("QUANTLAB_OUTPUTS_DIR", None)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           "-p", "no:randomly", *tests], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=900)
    tail = (proc.stdout.strip().splitlines() or [""])[-1]
    return proc.returncode == 0, time.monotonic() - t0, tail


def check_mutant(tree: Path, m: Mutant) -> tuple[int, str]:
    """Apply ``m`` in ``tree``, run its tests, restore the file: (1 if it survived or is stale, line)."""
    source = tree / m.path
    original = source.read_text()
    if original.count(m.old) != 1:
        return 1, f"stale     {m.name}: the mechanism's code is not found once in {m.path}; update MUTANTS"
    stamp = source.stat()
    source.write_text(original.replace(m.old, m.new))
    os.utime(source, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10 ** 10))  # 10 s on: no cache matches
    try:
        passed, secs, tail = run_tests(tree, m.tests)
    finally:
        source.write_text(original)
        os.utime(source, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # the mutant's caches now mismatch
    return int(passed), f"{'SURVIVED' if passed else 'caught':<9} {m.name} ({secs:.0f} s: {tail})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="run only the mutant whose name contains this")
    ap.add_argument("--list", action="store_true", help="list the mutants and their tests")
    ap.add_argument("--jobs", type=int, default=2,
                    help="mutants checked at once, each in its own copy of the tree (default 2)")
    args = ap.parse_args()
    mutants = [m for m in MUTANTS if not args.only or args.only in m.name]
    if args.list:
        for m in mutants:
            print(f"{m.name}: {m.path}\n  " + "\n  ".join(m.tests))
        return 0
    jobs = max(1, min(args.jobs, len(mutants)))
    with tempfile.TemporaryDirectory(prefix="quantlab-mutation-") as tmp:
        # One tree per worker: a worker mutates only its own copy, one mutant at a time.
        trees: queue.Queue[Path] = queue.Queue()
        for i in range(jobs):
            copy_tree(Path(tmp) / f"tree{i}")
            trees.put(Path(tmp) / f"tree{i}")
        all_tests = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
        # The unmutated run is split across the copies (each runs a share, at the same time): every
        # listed test must pass, and every copy must pass its share, before any verdict counts, or a
        # "caught" could be a test broken by the copy itself.
        t0 = time.monotonic()
        shares = [(Path(tmp) / f"tree{i}", all_tests[i::jobs]) for i in range(jobs)]
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(lambda share: run_tests(*share), [s for s in shares if s[1]]))
        if not all(ok for ok, _, _ in results):
            tails = "; ".join(tail for ok, _, tail in results if not ok)
            print(f"baseline: the listed tests fail without any mutation ({tails}); fix them first")
            return 1
        print(f"baseline: {len(all_tests)} test targets pass unmutated in {len(results)} copies "
              f"({time.monotonic() - t0:.0f} s)", flush=True)

        def one(m: Mutant) -> tuple[int, str]:
            tree = trees.get()
            try:
                return check_mutant(tree, m)
            finally:
                trees.put(tree)

        failed = 0
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for bad, line in pool.map(one, mutants):   # printed in MUTANTS order
                failed += bad
                print(line, flush=True)
    print(f"{len(mutants) - failed} of {len(mutants)} mechanisms caught by their tests "
          f"({time.monotonic() - t0:.0f} s, {jobs} at a time)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
