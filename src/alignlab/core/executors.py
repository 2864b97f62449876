"""Where runs execute: in this process, a local process pool (default), or a Ray cluster."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from alignlab.core.errors import AlignlabError
from alignlab.core.execute import ProgressFn, RunOutcome, RunSpec, execute

EXECUTORS = ("local", "ray", "inprocess")


class Executor(Protocol):
    """Runs specs and yields their outcomes as they complete."""

    def map(self, specs: Sequence[RunSpec], progress: ProgressFn | None) -> Iterator[RunOutcome]:
        """Execute every spec, yielding each outcome when it is ready."""
        ...


def default_workers() -> int:
    """One worker per available core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class InProcessExecutor:
    """Runs specs one after another in this process (notebooks, one worker, verify)."""

    def map(self, specs: Sequence[RunSpec], progress: ProgressFn | None) -> Iterator[RunOutcome]:
        """Execute specs sequentially."""
        for spec in specs:
            yield execute(spec, progress)


_WORKER_QUEUE: Any = None


def _init_worker(progress_queue: Any) -> None:
    global _WORKER_QUEUE
    _WORKER_QUEUE = progress_queue
    # Ctrl-C reaches the whole process group; the driver alone handles it and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _queue_progress(run_id: str, frac: float, desc: str) -> None:
    if _WORKER_QUEUE is not None:
        _WORKER_QUEUE.put((run_id, frac, desc))


def _pool_execute(spec: RunSpec) -> RunOutcome:
    return execute(spec, _queue_progress if _WORKER_QUEUE is not None else None)


class LocalExecutor:
    """A local process pool, one worker per core by default."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or default_workers()
        if self.workers < 1:
            raise AlignlabError(f"--workers must be >= 1, got {self.workers}")

    def map(self, specs: Sequence[RunSpec], progress: ProgressFn | None) -> Iterator[RunOutcome]:
        """Execute specs on the pool; a single worker or a single run stays in-process."""
        if self.workers == 1 or len(specs) <= 1:
            yield from InProcessExecutor().map(specs, progress)
            return
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(method)
        progress_queue = ctx.Queue() if progress is not None else None
        stop = threading.Event()
        drain = None
        if progress is not None:
            drain = threading.Thread(target=_drain, args=(progress_queue, progress, stop), daemon=True)
            drain.start()
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(specs)),
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(progress_queue,),
        )
        pending: set[Future[RunOutcome]] = {pool.submit(_pool_execute, s) for s in specs}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        except BaseException:
            for fut in pending:
                fut.cancel()
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            stop.set()
            if drain is not None:
                drain.join(timeout=1)


def _drain(q: Any, progress: ProgressFn, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            run_id, frac, desc = q.get(timeout=0.1)
        except queue.Empty:
            continue
        except (EOFError, OSError):
            return
        progress(run_id, frac, desc)


class RayExecutor:
    """Runs each spec as a Ray task: on the cluster at `address`, or a local Ray instance."""

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise AlignlabError("--executor ray needs Ray: pip install 'alignlab[ray]'") from None
        self.ray = ray
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.workers = workers

    def map(self, specs: Sequence[RunSpec], progress: ProgressFn | None) -> Iterator[RunOutcome]:
        """Submit all specs as Ray tasks and yield outcomes as they finish."""
        ray = self.ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
            if self.address:
                kwargs["address"] = self.address
            else:
                kwargs["include_dashboard"] = False
                if self.workers:
                    kwargs["num_cpus"] = self.workers
            ray.init(**kwargs)
        task = ray.remote(num_cpus=1)(execute)
        refs = [task.remote(spec) for spec in specs]
        try:
            while refs:
                done, refs = ray.wait(refs, num_returns=1)
                yield ray.get(done[0])
        except BaseException:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise


def make_executor(name: str, workers: int | None = None, address: str | None = None) -> Executor:
    """The executor called `name` ('local' or 'ray')."""
    if name == "local":
        return LocalExecutor(workers)
    if name == "inprocess":
        return InProcessExecutor()
    if name == "ray":
        return RayExecutor(address, workers)
    raise AlignlabError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
