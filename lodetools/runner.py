"""The work runner every data pipeline uses.

A pipeline turns its inputs into :class:`WorkItem` objects with stable keys
and hands them, with a function that processes one item, to :func:`run_items`.
The runner

- keeps only the items of this shard (``--shard K/N``: a deterministic
  partition by a hash of the key, so SLURM array tasks split the work),
- skips items already done (their manifest records present and their files
  intact by SHA-256),
- seeds each item's random generator from ``(seed, key)`` so serial,
  ``--workers N`` and sharded runs give byte-identical outputs,
- runs items serially or in a process pool, appends each item's records to
  the manifest (fsynced) as they finish, shows a progress bar on stderr,
- on a failing item stops (``--on-error stop``) or records the failure and
  goes on (``--on-error skip``), ending with a summary of failed items, and
- calls the pipeline's ``finish`` (which writes ``dataset.json`` and other
  summary files) with the union of every shard's records, under a lock of
  the output folder, so concurrent shards leave the summaries of all of them.

An operating-system error on a named path (permission denied, a full disk,
a file where a folder should be) fails its item like a bad input, with a
one-line message naming the path. Worker processes ignore Ctrl-C (the parent
stops them) and die with their parent, even when it is killed.

The item function must be picklable (a module-level function, or a
:func:`functools.partial` of one) and has the signature
``fn(item, rng) -> record | list[record]``; it writes its files atomically
(see :mod:`lodetools.io.layout`) and returns their manifest records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lodetools.errors import BadConfig, BadInput, LodeError, OutputConflict, from_os_error
from lodetools.io.atomic import remove_stale_temporaries
from lodetools.io.manifest import (
    DATASET_JSON, MANIFEST, SHARD_DIR, ManifestWriter, _read_jsonl, output_lock, read_manifest,
    record_intact, rewrite_sorted,
)

#: A sharded run removes temporary files older than this (seconds): younger
#: ones may belong to a shard that is running now.
STALE_TEMPORARY_AGE = 3600.0


@dataclass(frozen=True)
class WorkItem:
    """One unit of work.

    Attributes
    ----------
    key : str
        Stable unique id (for one-record items, the manifest key of its record).
    payload : Any
        Picklable data the item function needs (paths, parameters).
    source : str or os.PathLike, optional
        The input the item comes from, named when two inputs map to one key
        (else a path payload, or the payload's ``path`` or ``folder``).
    """

    key: str
    payload: Any = None
    source: Any = None


@dataclass
class RunOptions:
    """How to run a pipeline (not what it computes).

    Attributes
    ----------
    out : pathlib.Path
        Output folder (or file, for a pipeline that writes one file).
    seed : int
        Every item's randomness comes from ``(seed, item key)``; recorded with
        the parameters, since it changes the outputs.
    workers : int
        Local worker processes.
    shard : tuple of int, optional
        ``(K, N)``: process only shard K of N (1-based).
    on_error : {'stop', 'skip'}
        On a bad item: stop, or record it and go on.
    overwrite : bool
        Redo every item even if ``out`` holds results (made with other parameters too).
    quiet : bool
        No progress bar.
    desc : str
        Label of the progress bar.
    device : str, optional
        torch device of pipelines that use one (None: their default); not
        recorded, where a computation runs does not change what it computes.
    recipe : str, optional
        The recipe file the parameters came from (recorded in ``dataset.json``).
    png_compression : {None, 'fast', 0, ..., 9}
        PNG encoding effort of the written images
        (:func:`lodetools.io.images.encode_image`; None: ``'fast'``). Recorded
        in ``dataset.json`` but not compared on resume: PNG is lossless, the
        pixels are the same at every level.
    """

    out: Path
    seed: int = 0
    workers: int = 1
    shard: tuple[int, int] | None = None
    on_error: str = "stop"
    overwrite: bool = False
    quiet: bool = False
    desc: str = ""
    device: str | None = None
    recipe: str | None = None
    png_compression: int | str | None = None


@dataclass
class RunSummary:
    """What a run did.

    Attributes
    ----------
    done : list of str
        Keys of items processed in this run.
    skipped : list of str
        Keys of items already done before this run.
    failed : dict
        key -> one-line error, for items that failed with a bad input.
    bugs : dict
        key -> traceback, for items that failed with an internal error.
    records : dict
        Every manifest record of the output after the run (the union of all
        shards' manifests), by key.
    out : pathlib.Path or None
        Where the pipeline wrote its outputs.
    info : dict
        What a pipeline reports beyond the items (inputs it left out and why,
        statistics, curves); its docstring lists the keys.
    """

    done: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    bugs: dict = field(default_factory=dict)
    records: dict = field(default_factory=dict)
    out: Path | None = None
    info: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.bugs


def key_hash(key: str) -> int:
    """A stable 64-bit integer from a key (SHA-256; independent of PYTHONHASHSEED)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "little")


def item_rng(seed: int, key: str) -> np.random.Generator:
    """The random generator of one item, seeded by ``(seed, key)``."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF, key_hash(key)])


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """Parse ``K/N`` (1-based) into ``(K, N)``.

    Raises
    ------
    BadConfig
        If it is not two integers with ``1 <= K <= N``.
    """
    if text is None or text == "":
        return None
    try:
        k, n = (int(t) for t in str(text).split("/"))
    except ValueError:
        raise BadConfig(f"bad --shard {text!r}: expected K/N, e.g. 1/4") from None
    if not (n >= 1 and 1 <= k <= n):
        raise BadConfig(f"bad --shard {text!r}: need 1 <= K <= N")
    return k, n


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    """True if ``key`` belongs to shard ``(K, N)`` (all keys when no shard)."""
    if shard is None:
        return True
    k, n = shard
    return key_hash("shard:" + key) % n == k - 1


def manifest_file(out, shard) -> Path:
    """The manifest this run writes: ``manifest.jsonl`` or ``manifests/shard-K-of-N.jsonl``."""
    out = Path(out)
    if shard is None:
        return out / MANIFEST
    return out / SHARD_DIR / f"shard-{shard[0]:03d}-of-{shard[1]:03d}.jsonl"


def jsonable(obj):
    """``obj`` with paths as strings and tuples as lists, recursively (for JSON files)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def recorded_parameters(params, opts: RunOptions | None = None, **inputs) -> dict:
    """The effective parameters a pipeline writes into ``dataset.json`` and compares on resume.

    Parameters
    ----------
    params : dataclass instance
        The pipeline's typed parameters (:func:`dataclasses.asdict` of them).
    opts : RunOptions, optional
        Adds its ``seed`` (it changes the outputs; how the run runs does not).
    **inputs
        What the pipeline read (paths), recorded beside the parameters as
        absolute paths, so a rerun from another working directory is the same run.

    Returns
    -------
    dict
        JSON-friendly (paths as strings, tuples as lists).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class P:
    ...     size: tuple = (2, 3)
    >>> doc = recorded_parameters(P(), RunOptions(out=Path("o"), seed=5), data=Path("d"))
    >>> doc["size"], doc["seed"], doc["data"] == str(Path("d").resolve())
    ([2, 3], 5, True)
    """
    doc = {**{k: _absolute(v) for k, v in inputs.items()}, **dataclasses.asdict(params)}
    if opts is not None:
        doc["seed"] = int(opts.seed)
    return jsonable(doc)


def _absolute(value):
    """Paths (also in lists and tuples) made absolute; anything else unchanged."""
    if isinstance(value, os.PathLike):
        return Path(value).resolve()
    if isinstance(value, (list, tuple)):
        return [_absolute(v) for v in value]
    return value


def _same_parameter(old, new) -> bool:
    """Equal, or (recorded before paths were absolute) a relative path naming the same file."""
    if old == new:
        return True
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return all(_same_parameter(a, b) for a, b in zip(old, new))
    if isinstance(old, str) and isinstance(new, str) and os.path.isabs(new) and not os.path.isabs(old):
        return Path(old).resolve() == Path(new)
    return False


def png_setting(opts: RunOptions):
    """``opts.png_compression`` as ``dataset.json`` records it (beside the parameters, not among them).

    ``'fast'`` or the zlib level: how the PNGs were encoded. Not compared on
    resume, since PNG is lossless: another level gives the same pixels.
    """
    return "fast" if opts.png_compression in (None, "fast") else int(opts.png_compression)


def check_output(out, command: str, params: dict, *, overwrite: bool) -> None:
    """Refuse to mix results of different parameters in one output folder.

    An existing ``dataset.json`` written by ``command`` with the same effective
    parameters means "resume"; different ones need ``--overwrite`` (which
    redoes every item) or another ``--out``.

    Raises
    ------
    OutputConflict
    """
    p = Path(out) / DATASET_JSON
    if overwrite or not p.is_file():
        return
    try:
        old = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise OutputConflict("output folder has an unreadable dataset.json; use --overwrite", p) from None
    new = json.loads(json.dumps(params, sort_keys=True, default=str))
    old_params = old.get("parameters")
    old_params = old_params if isinstance(old_params, dict) else {}
    changed = sorted(k for k in set(new) | set(old_params) if not _same_parameter(old_params.get(k), new.get(k)))
    if old.get("command") != command or changed:
        what = f"command {old.get('command')!r}" if old.get("command") != command else \
            "parameters " + ", ".join(changed[:5])
        raise OutputConflict(f"output folder holds a run with different {what}; "
                             "use --overwrite or another --out", Path(out))


def _worker_init() -> None:  # pragma: no cover - runs in child processes
    # one compute thread per worker process: the workers already share the cores
    from lodetools.parallel import single_thread_process

    single_thread_process()


def _die_with_parent() -> None:  # pragma: no cover - runs in child processes
    """Make this worker process exit when its parent dies, even by ``kill -9``.

    Linux: the parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``,
    see prctl(2)). Everywhere: a daemon thread that exits the process when the
    parent process id changes (the orphan is re-parented).
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the signal was set
        os._exit(1)

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="lodetools-parent-watch", daemon=True).start()


def _worker_start() -> None:  # pragma: no cover - runs in child processes
    # Ctrl-C reaches the whole process group: the parent stops the workers, they print nothing
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    _worker_init()


def _call(fn: Callable, item: WorkItem, seed: int):
    """Run one item; never raises (so serial and pool runs behave the same).

    A :class:`LodeError`, or an operating-system error naming a path, fails
    the item with its one-line message; anything else is an internal error.
    """
    try:
        result = fn(item, item_rng(seed, item.key))
        records = result if isinstance(result, list) else [result]
        return ("ok", records)
    except LodeError as exc:
        return ("failed", exc.message, exc)
    except Exception as exc:  # an internal bug in the item function, or a system error
        err = from_os_error(exc)
        if err is not None:
            return ("failed", err.message, err)
        return ("bug", f"{type(exc).__name__}: {exc}", traceback.format_exc())


def _done_items(out, items, existing: dict) -> set:
    groups: dict[str, list] = {}
    for rec in existing.values():
        groups.setdefault(rec.get("item", rec["key"]), []).append(rec)
    done = set()
    for item in items:
        recs = groups.get(item.key)
        if not recs:
            continue
        expected = recs[0].get("item_records", 1)
        if len(recs) == expected and all(record_intact(out, r) for r in recs):
            done.add(item.key)
    return done


def _source(item: WorkItem) -> str:
    """The input an item comes from, for messages."""
    src = item.source
    if src is None:
        pl = item.payload
        src = pl if isinstance(pl, (str, os.PathLike)) else getattr(pl, "path", None) or getattr(pl, "folder", None)
    return os.fspath(src) if isinstance(src, (str, os.PathLike)) else repr(item.payload)[:80]


def _check_unique(items: list) -> None:
    seen: dict[str, WorkItem] = {}
    for it in items:
        if it.key in seen:
            a, b = _source(seen[it.key]), _source(it)
            raise BadInput(f"two inputs map to the same output {it.key!r} (names made safe for the layout "
                           f"collide): {a} and {b}; rename one", b)
        seen[it.key] = it


class _NoBar:
    """The progress bar's methods, doing nothing (quiet, or stderr not a terminal)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _terminate(pool) -> None:
    """Stop a process pool now: cancel what waits, kill the workers (Ctrl-C)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # no public handle on them
    for proc in procs:
        try:
            proc.terminate()
        except (OSError, ValueError):
            pass
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.join(5)


def _final_records(mpath: Path, before: set, written: set, *, complete: bool) -> dict:
    """The records a run's manifest file keeps, by key.

    A later record of a key replaces an earlier one. After a complete
    ``--overwrite`` run only what this run wrote is kept; an interrupted one
    keeps the old records it did not replace (they still describe their files).
    """
    recs = {r["key"]: r for r in _read_jsonl(mpath)} if mpath.is_file() else {}
    if complete:
        recs = {k: r for k, r in recs.items() if k in written or k not in before}
    return recs


def run_items(items, fn: Callable, opts: RunOptions, *, finish: Callable | None = None) -> RunSummary:
    """Run ``fn`` on every item of this shard that is not done yet.

    Parameters
    ----------
    items : iterable of WorkItem
        Keys must be unique.
    fn : callable
        ``fn(item, rng) -> dict | list[dict]``: processes one item, writes its
        files atomically, returns its manifest record(s), each with a ``key``.
        It raises :class:`LodeError` for bad input.
    opts : RunOptions
        With ``overwrite``, every item is redone; the old records stay in the
        manifest until their items are rewritten (a run stopped by a bad
        input leaves a manifest that still describes every file).
    finish : callable, optional
        ``finish(summary)``: writes the run's summary files (``dataset.json``,
        ...) from ``summary.records``. Called with the union of every shard's
        records under :func:`~lodetools.io.manifest.output_lock`, so
        concurrent shards write their summaries one after the other and the
        last one to finish leaves the summary of all. Not called when the
        run stops on an error.

    Returns
    -------
    RunSummary

    Raises
    ------
    LodeError
        With ``on_error='stop'``, the first item's error (items finished
        before it stay recorded); :class:`BadInput` when two items have one key.
    RuntimeError
        With ``on_error='stop'``, an internal error in an item.
    """
    started = time.time()
    if opts.on_error not in ("stop", "skip"):
        raise BadConfig(f"bad --on-error {opts.on_error!r}: expected stop or skip")
    if opts.workers < 1:
        raise BadConfig(f"bad --workers {opts.workers}: must be at least 1")
    items = [it for it in items if in_shard(it.key, opts.shard)]
    _check_unique(items)
    keys = [it.key for it in items]
    out = Path(opts.out)
    ours = (out / DATASET_JSON).is_file() or (out / MANIFEST).is_file() or (out / SHARD_DIR).is_dir()
    out.mkdir(parents=True, exist_ok=True)
    if ours:  # temporary files of killed writers (younger ones may be another shard's, writing now)
        remove_stale_temporaries(out, older_than=started - (STALE_TEMPORARY_AGE if opts.shard else 0.0))
    mpath = manifest_file(out, opts.shard)
    existing = read_manifest(out)
    before = {r["key"] for r in _read_jsonl(mpath)} if mpath.is_file() else set()
    done = set() if opts.overwrite else _done_items(out, items, existing)
    summary = RunSummary(skipped=[k for k in keys if k in done])
    todo = [it for it in items if it.key not in done]
    written: set = set()

    if opts.quiet or not sys.stderr.isatty():
        bar = _NoBar()  # tqdm's import (about 25 ms: importlib.metadata) only for a bar that shows
    else:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=opts.desc or "items", unit="item", file=sys.stderr)
    first_error = None
    try:
        with ManifestWriter(mpath) as writer:

            def handle(item, res):
                nonlocal first_error
                bar.update(1)
                if res[0] == "ok":
                    recs = res[1]
                    for rec in recs:
                        rec.setdefault("item", item.key)
                        rec.setdefault("item_records", len(recs))
                        writer.append(rec)
                        written.add(rec["key"])
                    summary.done.append(item.key)
                    return
                if res[0] == "failed":
                    summary.failed[item.key] = res[1]
                else:
                    summary.bugs[item.key] = res[2]
                if first_error is None:
                    first_error = res

            if opts.workers == 1 or len(todo) <= 1:
                for item in todo:
                    handle(item, _call(fn, item, opts.seed))
                    if first_error is not None and opts.on_error == "stop":
                        break
            else:
                _run_pool(todo, fn, opts, handle, lambda: first_error is not None and opts.on_error == "stop")
    finally:
        bar.close()
    stopped = first_error is not None and opts.on_error == "stop"
    if opts.shard is None or opts.overwrite:
        recs = _final_records(mpath, before if opts.overwrite else set(), written, complete=not stopped)
        if opts.shard is None or recs or mpath.is_file():
            rewrite_sorted(mpath, recs)
    if stopped:
        summary.records = read_manifest(out)
        if first_error[0] == "failed":
            raise first_error[2]
        raise RuntimeError(f"internal error while processing an item: {first_error[1]}\n{first_error[2]}")
    with output_lock(out):
        summary.records = read_manifest(out)
        if finish is not None:
            finish(summary)
    return summary


def _run_pool(todo: list, fn: Callable, opts: RunOptions, handle: Callable, stop: Callable) -> None:
    """Run items in ``opts.workers`` spawned processes, at most two waiting per worker."""
    import multiprocessing as mp  # here: importing the process pool costs a one-process run 7-22 ms
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    pool = ProcessPoolExecutor(opts.workers, mp_context=ctx, initializer=_worker_start)
    try:
        pending = {}
        queue = list(reversed(todo))
        while queue or pending:
            while queue and len(pending) < 2 * opts.workers and not stop():
                it = queue.pop()
                pending[pool.submit(_call, fn, it, opts.seed)] = it
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                handle(pending.pop(fut), fut.result())
    except BaseException:  # Ctrl-C (or an error in the parent): no worker goes on alone
        _terminate(pool)
        raise
    pool.shutdown(wait=True)


def report(summary: RunSummary, *, what: str = "items", file=None) -> int:
    """Print a run's summary (and its failed items) to stderr; return the exit code.

    Returns
    -------
    int
        0 when everything succeeded, :data:`~lodetools.errors.EXIT_PARTIAL` if
        some items failed with bad input, :data:`~lodetools.errors.EXIT_BUG` if
        any failed with an internal error.
    """
    from lodetools.errors import EXIT_BUG, EXIT_PARTIAL

    file = file or sys.stderr
    n_fail = len(summary.failed) + len(summary.bugs)
    print(f"{what}: {len(summary.done)} done, {len(summary.skipped)} already done, "
          f"{n_fail} failed", file=file)
    for key, msg in summary.failed.items():
        print(f"  failed {key}: {msg}", file=file)
    for key, tb in summary.bugs.items():
        last = tb.strip().splitlines()[-1] if tb.strip() else "internal error"
        print(f"  internal error {key}: {last}", file=file)
    if summary.bugs:
        return EXIT_BUG
    return EXIT_PARTIAL if summary.failed else 0
