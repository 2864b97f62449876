"""The run store: one folder per run plus a SQLite index (WAL) over them.

Layout::

    <root>/store.json            format marker and version
    <root>/store.lock            fcntl lock: index rebuilds and --resume planning are exclusive
    <root>/index.db              SQLite index (rebuildable from the run folders: `alignlab reindex`)
    <root>/runs/<run_id>/run.json       the run's record (source of truth for the index)
                 config.json, metrics.json, manifest.json, timeseries.jsonl, artifacts/...
    <root>/batches/<batch>.json         a batch's spec, run ids and judged claims
    <root>/reports/<batch>.html

Every file is written atomically (temp file + rename). Several processes may write one store
at once: SQLite serialises the index, run folders never collide, and every access to the index
holds a shared lock on ``store.lock`` that a rebuild takes exclusively, so no reader ever sees a
half-built index. A run whose owning process died shows as ``interrupted``.

The store is data, never code: every id read from it is checked by :func:`check_id` before it
becomes a path, and nothing it names is imported.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import secrets
import socket
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from alignlab.core.errors import StoreError, UnknownNameError
from alignlab.core.fsutil import atomic_write_json
from alignlab.core.records import ClaimResult, RunRecord
from alignlab.core.registry import Claim
from alignlab.core.verdict import Verdict

STORE_FORMAT = "alignlab-store"
STORE_VERSION = 1
DEFAULT_STORE = "alignlab-runs"
HOST = socket.gethostname()
_ID = re.compile(r"\w[\w.-]{0,199}")  # word characters (experiment names are identifiers), dot, dash

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, batch_id TEXT NOT NULL, experiment TEXT NOT NULL,
    seed INTEGER NOT NULL, status TEXT NOT NULL, config TEXT NOT NULL,
    config_hash TEXT NOT NULL, preset TEXT, device TEXT, metrics TEXT, error TEXT,
    started TEXT NOT NULL, ended TEXT, pid INTEGER, host TEXT, control TEXT, not_observed TEXT
);
CREATE INDEX IF NOT EXISTS runs_experiment ON runs(experiment);
CREATE INDEX IF NOT EXISTS runs_key ON runs(experiment, config_hash, seed);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, target TEXT NOT NULL, created TEXT NOT NULL, spec TEXT
);
CREATE TABLE IF NOT EXISTS batch_runs (
    batch_id TEXT NOT NULL, run_id TEXT NOT NULL, PRIMARY KEY (batch_id, run_id)
);
CREATE TABLE IF NOT EXISTS claims (
    batch_id TEXT NOT NULL, experiment TEXT NOT NULL, idx INTEGER NOT NULL,
    claim TEXT NOT NULL, verdict TEXT NOT NULL, mean REAL, lo REAL, hi REAL, n INTEGER,
    reason TEXT, created TEXT NOT NULL, control TEXT, PRIMARY KEY (batch_id, experiment, idx)
);
"""
_RUN_COLUMNS = (
    "run_id", "batch_id", "experiment", "seed", "status", "config", "config_hash", "preset",
    "device", "metrics", "error", "started", "ended", "pid", "host", "control", "not_observed",
)  # fmt: skip
_CLAIM_COLUMNS = (
    "batch_id", "experiment", "idx", "claim", "verdict", "mean", "lo", "hi", "n", "reason",
    "created", "control",
)  # fmt: skip
_ADDED_COLUMNS = {"runs": ("control", "not_observed"), "claims": ("control",)}
_TABLES = ("runs", "batches", "batch_runs", "claims")


def now_iso() -> str:
    """The current UTC time as an ISO-8601 string with seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def default_root() -> Path:
    """The store used when none is given: ``$ALIGNLAB_HOME`` (``~`` expanded) or ``./alignlab-runs``."""
    return Path(os.environ.get("ALIGNLAB_HOME") or DEFAULT_STORE).expanduser()


def is_valid_id(value: Any) -> bool:
    """Whether `value` is a safe run or batch id: letters, digits, ``_``, ``.``, ``-``; no ``..`` or ``/``."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None and ".." not in value


def check_id(value: Any, what: str = "run") -> str:
    """`value` if it is a safe id (see :func:`is_valid_id`), else a StoreError naming it."""
    if not is_valid_id(value):
        raise StoreError(
            f"invalid {what} id {value!r}: ids are letters, digits, '.', '_' and '-' "
            "(no path separators, no '..'); the store may have been edited — `alignlab reindex` rebuilds it"
        )
    return value


def _pid_alive(pid: int | None, host: str | None) -> bool:
    if pid is None or host != HOST:
        return host != HOST  # another machine's run: assume alive, we cannot tell
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return isinstance(pid, int) and pid > 0
    return True


def _finite_or_none(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def claim_to_json(claim: Claim) -> dict[str, Any]:
    """A claim as JSON-ready data (kind and control included)."""
    to_dict = getattr(claim, "to_dict", None)
    if to_dict is not None:
        return to_dict()
    return {"metric": claim.metric, "op": claim.op, "value": claim.value, "source": claim.source,
            "tol": claim.tol, "note": claim.note}  # fmt: skip


def claim_from_json(data: Mapping[str, Any]) -> Claim:
    """A claim from :func:`claim_to_json` output."""
    from_dict = getattr(Claim, "from_dict", None)
    if from_dict is not None:
        return from_dict(data)
    return Claim(**{k: data[k] for k in ("metric", "op", "value", "source", "tol", "note") if k in data})


def verdict_to_json(v: Verdict) -> dict[str, Any]:
    """A verdict as JSON (non-finite numbers as null)."""
    return {"label": v.label, "mean": _finite_or_none(v.mean), "lo": _finite_or_none(v.lo),
            "hi": _finite_or_none(v.hi), "n": v.n, "reason": v.reason}  # fmt: skip


def verdict_from_json(d: Mapping[str, Any]) -> Verdict:
    """A verdict from :func:`verdict_to_json` output."""
    return Verdict(d.get("label") or d["verdict"], _nan(d.get("mean")), _nan(d.get("lo")), _nan(d.get("hi")),
                   int(d.get("n") or 0), d.get("reason") or "")  # fmt: skip


# -- locking --------------------------------------------------------------------------------
_HELD: dict[str, list[Any]] = {}  # lock path -> [fd, exclusive, depth], per process
_HELD_GUARD = threading.Lock()


@contextmanager
def _flock(path: Path, exclusive: bool) -> Iterator[None]:
    """An fcntl lock on `path`, re-entrant within this process (an exclusive hold covers a shared one)."""
    key = str(path)
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None and (held[1] or not exclusive):
            held[2] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _HELD_GUARD:
                _HELD[key][2] -= 1
        return
    if held is not None:  # shared held, exclusive wanted: a caller bug that would deadlock
        raise RuntimeError(f"cannot upgrade a shared lock on {path} to exclusive")
    fd = _open_lock(path)
    if fd is None:  # a read-only store without a lock file: nobody can write it, nothing to lock
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        with _HELD_GUARD:
            _HELD[key] = [fd, exclusive, 1]
        try:
            yield
        finally:
            with _HELD_GUARD:
                del _HELD[key]
    finally:
        os.close(fd)


def _open_lock(path: Path) -> int | None:
    flags = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o644)
    except OSError:
        try:
            return os.open(path, os.O_RDONLY | flags)
        except OSError:
            return None


@dataclass(frozen=True)
class RunRow:
    """What a runner registers when a run starts."""

    run_id: str
    batch_id: str
    experiment: str
    seed: int
    config: dict[str, Any]
    config_hash: str
    preset: str | None
    device: str
    control: str | None = None


@dataclass
class ReindexReport:
    """What `reindex` found: runs indexed, runs rebuilt from their manifest, things skipped."""

    runs: int = 0
    from_manifest: list[str] = field(default_factory=list)
    """Runs whose run.json was unreadable or missing, rebuilt from manifest.json (and run.json rewritten)."""
    skipped: list[str] = field(default_factory=list)
    """One line per run folder or batch file that could not be indexed, with the reason."""
    unjudged: list[str] = field(default_factory=list)
    """Batches with runs but no readable batch file: their claims must be judged again."""
    backup: Path | None = None
    """Where the previous index was moved (None when there was none)."""


class Store:
    """A run store at `root`: run folders and the SQLite index over them.

    `create` makes a missing store; `check_index` (default) makes sure the index exists, is
    complete (an emptied or missing index is rebuilt from the run folders) and readable.
    """

    def __init__(
        self, root: Path | str | None = None, *, create: bool = True, check_index: bool = True
    ) -> None:
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.runs_dir = self.root / "runs"
        self.index_path = self.root / "index.db"
        self.lock_path = self.root / "store.lock"
        self.readonly = False
        self._open(create)
        if check_index:
            self._ensure_index()

    # -- opening ---------------------------------------------------------------
    def _open(self, create: bool) -> None:
        marker = self.root / "store.json"
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"store path {self.root} is a file, not a folder; pass --store a folder")
        if not marker.exists():
            if not create:
                raise StoreError(
                    f"no alignlab store at {self.root} (run `alignlab run ...` first, "
                    "or pass --store / set ALIGNLAB_HOME)"
                )
            try:
                self.runs_dir.mkdir(parents=True, exist_ok=True)
                atomic_write_json(marker, {"format": STORE_FORMAT, "version": STORE_VERSION})
            except OSError as exc:
                raise StoreError(f"cannot create a store at {self.root}: {exc.strerror or exc}") from None
        try:
            meta = json.loads(marker.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreError(f"{marker} is corrupt ({exc}); it should hold the store format") from None
        except OSError as exc:
            raise StoreError(f"cannot read {marker}: {exc.strerror or exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT:
            raise StoreError(f"{self.root} is not an alignlab store ({marker} has no store format)")
        version = meta.get("version")
        if not isinstance(version, int) or version > STORE_VERSION:
            raise StoreError(
                f"store {self.root} has format version {version!r}, newer than this alignlab "
                f"understands ({STORE_VERSION}); upgrade alignlab (pip install -U alignlab)"
            )
        self.readonly = not _writable(self.root) or (
            self.index_path.exists() and not _writable(self.index_path)
        )
        if not self.readonly and not self.runs_dir.is_dir():
            try:
                self.runs_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create {self.runs_dir}: {exc.strerror or exc}") from None

    def _ensure_index(self) -> None:
        """Make sure the index exists and covers every run folder; rebuild or fill it if not."""
        if self.readonly:
            if not self.index_path.exists():
                raise StoreError(
                    f"store {self.root} is read-only and has no index; make it writable and run "
                    "`alignlab reindex`"
                )
            return
        with self.lock(exclusive=False):
            state = self._index_state()
        if state == "ok":
            return
        with self.lock(exclusive=True):
            state = self._index_state()  # another process may have repaired it meanwhile
            if state == "rebuild":
                self._rebuild()
            elif state == "fill":
                self._fill_missing()

    def _index_state(self) -> str:
        """'ok', 'rebuild' (missing, emptied or old schema), or 'fill' (run folders not indexed)."""
        if not self.index_path.exists():
            return "rebuild"
        try:
            con = sqlite3.connect(self.index_path, timeout=60.0)
            try:
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if not set(_TABLES) <= tables:
                    return "rebuild"
                cols = {r[1] for r in con.execute("PRAGMA table_info(runs)")}
                ccols = {r[1] for r in con.execute("PRAGMA table_info(claims)")}
                if not (set(_RUN_COLUMNS) <= cols and set(_CLAIM_COLUMNS) <= ccols):
                    return "fill"  # an older schema: _fill_missing migrates it
                indexed = {r[0] for r in con.execute("SELECT run_id FROM runs")}
            finally:
                con.close()
        except sqlite3.DatabaseError:
            return "ok"  # a damaged index is reported when read; `alignlab reindex` rebuilds it
        folders = self._run_folders()
        if not indexed and folders:
            return "rebuild"
        return "fill" if set(folders) - indexed else "ok"

    def _run_folders(self) -> list[str]:
        try:
            return sorted(p.name for p in self.runs_dir.iterdir() if p.is_dir() and is_valid_id(p.name))
        except OSError:
            return []

    @contextmanager
    def lock(self, exclusive: bool = True) -> Iterator[None]:
        """The store-wide fcntl lock (re-entrant within a process): shared for index access,
        exclusive for rebuilds and for --resume planning (so two resumes never claim one run)."""
        with _flock(self.lock_path, exclusive):
            yield

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A write transaction in WAL mode with a generous busy timeout; commits on success."""
        if self.readonly:
            raise StoreError(f"store {self.root} is read-only; it can be read but not written")
        with self.lock(exclusive=False):
            con = sqlite3.connect(self.index_path, timeout=60.0, isolation_level=None)
            try:
                con.execute("PRAGMA busy_timeout=60000")
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=NORMAL")
                con.execute("BEGIN IMMEDIATE")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                raise self._index_error(exc) from None
            finally:
                con.close()

    def _index_error(self, exc: Exception) -> StoreError:
        if isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc):
            return StoreError(f"store {self.root} is read-only; it can be read but not written")
        return StoreError(
            f"index {self.index_path} is unreadable ({exc}); the run folders are intact — "
            "rebuild it with `alignlab reindex`"
        )

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read connection (read-only mode on a read-only store) under the shared lock."""
        with self.lock(exclusive=False):
            try:
                if self.readonly:
                    con = _connect_readonly(self.index_path)
                else:
                    con = sqlite3.connect(self.index_path, timeout=60.0)
                    con.execute("PRAGMA busy_timeout=60000")
                con.row_factory = sqlite3.Row
            except sqlite3.DatabaseError as exc:
                raise self._index_error(exc) from None
            try:
                yield con
            except sqlite3.DatabaseError as exc:
                raise self._index_error(exc) from None
            finally:
                con.close()

    def run_dir(self, run_id: str) -> Path:
        """The folder of run `run_id` (a StoreError if the id is not a safe name)."""
        return self.runs_dir / check_id(run_id, "run")

    def batch_file(self, batch_id: str) -> Path:
        """The JSON file holding a batch's spec, run ids and judged claims (so reindex loses nothing)."""
        return self.root / "batches" / f"{check_id(batch_id, 'batch')}.json"

    # -- writing ---------------------------------------------------------------
    def new_batch(self, batch_id: str, target: str, spec: dict[str, Any]) -> None:
        """Record one `alignlab run` invocation (its runs are judged together)."""
        created = now_iso()
        record = {"batch_id": batch_id, "target": target, "created": created, "spec": spec,
                  "run_ids": [], "claims": []}  # fmt: skip
        atomic_write_json(self.batch_file(batch_id), record)
        with self.connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?)",
                (batch_id, target, created, json.dumps(spec, default=str)),
            )

    def _add_batch_runs(self, batch_id: str, run_ids: Sequence[str]) -> None:
        record = self._batch_record(batch_id)
        if record is not None:
            record["run_ids"] = list(dict.fromkeys([*record.get("run_ids", []), *run_ids]))
            atomic_write_json(self.batch_file(batch_id), record)

    def _batch_record(self, batch_id: str) -> dict[str, Any] | None:
        """The batch file's content, or None when it is missing or unreadable."""
        try:
            record = json.loads(self.batch_file(batch_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def begin_runs(self, rows: Sequence[RunRow]) -> None:
        """Register runs as ``running`` (owned by this process) and write their run.json."""
        started = now_iso()
        pid = os.getpid()
        with self.lock(exclusive=False):
            for row in rows:
                d = self.run_dir(row.run_id)
                if d.is_symlink():
                    d.unlink()  # never write through a link out of the store
                d.mkdir(parents=True, exist_ok=True)
                atomic_write_json(d / "run.json", self._record_json(row, "running", started))
            for batch_id in {r.batch_id for r in rows}:
                self._add_batch_runs(batch_id, [r.run_id for r in rows if r.batch_id == batch_id])
            with self.connect() as con:
                con.executemany(
                    f"INSERT OR REPLACE INTO runs ({','.join(_RUN_COLUMNS)}) VALUES ({','.join('?' * 17)})",
                    [
                        (r.run_id, r.batch_id, r.experiment, r.seed, "running",
                         json.dumps(r.config), r.config_hash, r.preset, r.device, None, None,
                         started, None, pid, HOST, r.control, None)
                        for r in rows
                    ],
                )  # fmt: skip
                con.executemany(
                    "INSERT OR IGNORE INTO batch_runs VALUES (?, ?)",
                    [(r.batch_id, r.run_id) for r in rows],
                )

    def link_runs(self, batch_id: str, run_ids: Sequence[str]) -> None:
        """Count already finished runs (reused by --resume) as part of batch `batch_id`."""
        self._add_batch_runs(batch_id, run_ids)
        for run_id in run_ids:  # so that reindex knows the batch counts them too
            path = self.run_dir(run_id) / "run.json"
            with contextlib.suppress(OSError, ValueError):
                record = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(record, dict) and record.get("run_id") == run_id:
                    linked = record.get("linked_batches")
                    linked = linked if isinstance(linked, list) else []
                    record["linked_batches"] = [*dict.fromkeys([*linked, batch_id])]
                    atomic_write_json(path, record)
        with self.connect() as con:
            con.executemany(
                "INSERT OR IGNORE INTO batch_runs VALUES (?, ?)", [(batch_id, r) for r in run_ids]
            )

    def finish_run(
        self,
        run_id: str,
        status: str,
        metrics: Mapping[str, float] | None = None,
        error: str | None = None,
        *,
        not_observed: Mapping[str, str] | None = None,
        inputs: Mapping[str, str] | None = None,
    ) -> None:
        """Mark a run finished (``done``/``failed``/``interrupted``) in run.json and the index."""
        ended = now_iso()
        path = self.run_dir(run_id) / "run.json"
        record = self._run_json_or_row(run_id)
        clean = {k: _finite_or_none(v) for k, v in (metrics or {}).items()}
        unseen = dict(not_observed or {})
        record.update(status=status, ended=ended, metrics=clean, error=error, not_observed=unseen)
        if inputs:
            record["inputs"] = dict(inputs)
        if path.parent.is_dir() and "run_id" in record:
            atomic_write_json(path, record)
        with self.connect() as con:
            con.execute(
                "UPDATE runs SET status=?, metrics=?, error=?, ended=?, pid=NULL, not_observed=? "
                "WHERE run_id=?",
                (status, json.dumps(clean), error, ended, json.dumps(unseen), run_id),
            )

    def _run_json_or_row(self, run_id: str) -> dict[str, Any]:
        """run.json's record; when it is unreadable, the same record rebuilt from the index row."""
        path = self.run_dir(run_id) / "run.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(record, dict) and record.get("run_id") == run_id:
                return record
        except (OSError, ValueError):
            pass
        try:
            with self._read() as con:
                row = con.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        except StoreError:
            row = None
        if row is None:
            return {}
        out = dict(row)
        out["config"] = json.loads(out["config"])
        out["metrics"] = json.loads(out["metrics"] or "{}")
        out["not_observed"] = json.loads(out.get("not_observed") or "{}")
        return out

    def save_claims(self, batch_id: str, results: Sequence[ClaimResult]) -> None:
        """Store judged claims for a batch (replacing earlier ones for the same claims)."""
        created = now_iso()
        record = self._batch_record(batch_id)
        if record is None:  # missing or unreadable: rebuild the file from the index
            info = next((b for b in self.batches() if b["batch_id"] == batch_id), None)
            spec = json.loads(info["spec"]) if info and info.get("spec") else None
            record = {"batch_id": batch_id, "target": info["target"] if info else batch_id,
                      "created": info["created"] if info else created, "spec": spec,
                      "run_ids": sorted({rid for r in results for rid in r.run_ids})}  # fmt: skip
        record["claims"] = [_claim_record(r, created) for r in results]
        atomic_write_json(self.batch_file(batch_id), record)
        with self.connect() as con:
            con.execute("DELETE FROM claims WHERE batch_id = ?", (batch_id,))
            con.executemany(
                f"INSERT OR REPLACE INTO claims ({','.join(_CLAIM_COLUMNS)}) VALUES ({','.join('?' * 12)})",
                [_claim_row(batch_id, i, c) for i, c in enumerate(record["claims"])],
            )

    def _record_json(self, row: RunRow, status: str, started: str) -> dict[str, Any]:
        return {
            "run_id": row.run_id, "batch_id": row.batch_id, "experiment": row.experiment,
            "seed": row.seed, "config": row.config, "config_hash": row.config_hash,
            "preset": row.preset, "device": row.device, "control": row.control, "status": status,
            "started": started, "ended": None, "metrics": {}, "not_observed": {}, "error": None,
            "pid": os.getpid(), "host": HOST,
        }  # fmt: skip

    # -- reading ---------------------------------------------------------------
    def runs(
        self,
        *,
        experiment: str | None = None,
        status: str | None = None,
        batch_id: str | None = None,
        run_ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Runs matching the filters, newest first; dead ``running`` runs read as ``interrupted``."""
        where, args = [], []
        if experiment:
            where.append("(r.experiment = ? OR r.experiment LIKE ? ESCAPE '\\')")
            args += [experiment, _like_escape(experiment) + ".%"]
        if batch_id:
            where.append("r.run_id IN (SELECT run_id FROM batch_runs WHERE batch_id = ?)")
            args.append(batch_id)
        if run_ids is not None:
            where.append(f"r.run_id IN ({','.join('?' * len(run_ids))})")
            args += list(run_ids)
        sql = "SELECT * FROM runs r"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.started DESC, r.run_id"
        if limit and not status:  # a status filter is applied after liveness checks, in Python
            sql += f" LIMIT {int(limit)}"
        with self._read() as con:
            rows = con.execute(sql, args).fetchall()
        out = []
        for row in rows:
            rec = self._to_record(row)
            if status and rec.status != status:
                continue
            out.append(rec)
            if limit and len(out) >= limit:
                break
        return out

    def _to_record(self, row: sqlite3.Row) -> RunRecord:
        status = row["status"]
        if status == "running" and not _pid_alive(row["pid"], row["host"]):
            status = "interrupted"
        try:
            metrics = json.loads(row["metrics"]) if row["metrics"] else {}
            config = json.loads(row["config"])
            unseen = json.loads(row["not_observed"] or "{}") if "not_observed" in row.keys() else {}  # noqa: SIM118
            kwargs: dict[str, Any] = dict(
                run_id=row["run_id"], batch_id=row["batch_id"], experiment=row["experiment"],
                seed=int(row["seed"]), status=status, config=config, config_hash=row["config_hash"],
                metrics={k: (math.nan if v is None else float(v)) for k, v in metrics.items()},
                started=row["started"], ended=row["ended"], run_dir=self.run_dir(row["run_id"]),
                preset=row["preset"], error=row["error"], device=row["device"] or "cpu",
                control=row["control"] if "control" in row.keys() else None,  # noqa: SIM118
                not_observed=dict(unseen),
            )  # fmt: skip
        except (ValueError, TypeError, AttributeError) as exc:
            raise StoreError(
                f"index {self.index_path} has a bad row for run {row['run_id']!r} ({exc}); "
                "rebuild it with `alignlab reindex`"
            ) from None
        known = {f.name for f in fields(RunRecord)}
        return RunRecord(**{k: v for k, v in kwargs.items() if k in known})

    def get_run(self, run_id: str) -> RunRecord:
        """The run with id `run_id` (a unique prefix is enough; no wildcards)."""
        if not run_id:
            raise UnknownNameError("empty run id; `alignlab runs` lists them")
        with self._read() as con:
            rows = con.execute(
                "SELECT * FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY run_id LIMIT 3",
                (len(run_id), run_id),
            ).fetchall()
        exact = [r for r in rows if r["run_id"] == run_id]
        if exact:
            return self._to_record(exact[0])
        if len(rows) == 1:
            return self._to_record(rows[0])
        if not rows:
            raise UnknownNameError(f"no run {run_id!r} in store {self.root} (`alignlab runs` lists them)")
        raise UnknownNameError(f"run id prefix {run_id!r} is ambiguous: {[r['run_id'] for r in rows]}")

    def find_run(self, experiment: str, config_hash: str, seed: int, status: str) -> RunRecord | None:
        """The newest run of this experiment/config/seed with `status`, if any (for --resume)."""
        return next(iter(self.find_runs(experiment, config_hash, seed, status)), None)

    def find_runs(self, experiment: str, config_hash: str, seed: int, status: str) -> list[RunRecord]:
        """Every run of this experiment/config/seed with `status`, newest first."""
        with self._read() as con:
            rows = con.execute(
                "SELECT * FROM runs WHERE experiment=? AND config_hash=? AND seed=? ORDER BY started DESC",
                (experiment, config_hash, seed),
            ).fetchall()
        return [rec for rec in map(self._to_record, rows) if rec.status == status]

    def batches(self, target: str | None = None) -> list[dict[str, Any]]:
        """Batches (one per `alignlab run`), newest first."""
        sql = "SELECT * FROM batches"
        args: list[Any] = []
        if target:
            sql += " WHERE target = ?"
            args.append(target)
        with self._read() as con:
            rows = con.execute(sql + " ORDER BY created DESC, batch_id DESC", args).fetchall()
        return [dict(r) for r in rows]

    def batch_run_ids(self, batch_id: str) -> list[str]:
        """The ids of the runs counted in batch `batch_id` (its own and reused ones)."""
        with self._read() as con:
            rows = con.execute(
                "SELECT run_id FROM batch_runs WHERE batch_id = ? ORDER BY run_id", (batch_id,)
            ).fetchall()
        return [r[0] for r in rows]

    def claims_all(self) -> list[ClaimResult]:
        """Every judged claim of every batch."""
        return self.claims(batch_id="*")

    def claims(self, batch_id: str | None = None, experiment: str | None = None) -> list[ClaimResult]:
        """Judged claims: of one batch, or the latest judgement of each experiment's claims."""
        with self._read() as con:
            if batch_id == "*":
                rows = con.execute("SELECT * FROM claims ORDER BY batch_id, experiment, idx").fetchall()
            elif batch_id:
                rows = con.execute(
                    "SELECT * FROM claims WHERE batch_id = ? ORDER BY experiment, idx", (batch_id,)
                ).fetchall()
            else:
                rows = con.execute(
                    "SELECT c.* FROM claims c JOIN (SELECT experiment, MAX(created || batch_id) "
                    "AS k FROM claims GROUP BY experiment) l ON c.experiment = l.experiment "
                    "AND c.created || c.batch_id = l.k ORDER BY c.experiment, c.idx"
                ).fetchall()
        out = []
        for r in rows:
            if experiment and r["experiment"] != experiment:
                continue
            try:
                out.append(claim_result_from_row(dict(r)))
            except (ValueError, TypeError, KeyError) as exc:
                raise StoreError(
                    f"index {self.index_path} has a bad claim row in batch {r['batch_id']!r} ({exc}); "
                    "rebuild it with `alignlab reindex`"
                ) from None
        return out

    # -- repair ----------------------------------------------------------------
    def mark_interrupted(self, run_ids: Sequence[str], reason: str) -> None:
        """Mark runs that were stopped before finishing."""
        for run_id in run_ids:
            self.finish_run(run_id, "interrupted", error=reason)

    def reindex(self) -> ReindexReport:
        """Rebuild index.db from the run folders and batch files, keeping the old index as a backup.

        A run whose run.json is unreadable is rebuilt from its manifest (run.json is rewritten);
        a batch whose file is unreadable keeps its runs and is listed in ``unjudged``.
        """
        if self.readonly:
            raise StoreError(f"store {self.root} is read-only; make it writable to rebuild its index")
        with self.lock(exclusive=True):
            return self._rebuild()

    def _rebuild(self) -> ReindexReport:
        report = ReindexReport()
        tmp = self.root / f".index.db.new-{os.getpid()}-{secrets.token_hex(3)}"
        try:
            con = sqlite3.connect(tmp, isolation_level=None)
            try:
                con.executescript(_SCHEMA)
                con.execute("BEGIN")
                self._index_into(con, self._run_folders(), report, only_missing=False)
                con.execute("COMMIT")
            finally:
                con.close()
            if self.index_path.exists() or Path(f"{self.index_path}-wal").exists():
                report.backup = self._move_old_index()
            os.replace(tmp, self.index_path)
        finally:
            tmp.unlink(missing_ok=True)
        return report

    def _move_old_index(self) -> Path:
        try:
            con = sqlite3.connect(f"file:{urllib.parse.quote(str(self.index_path))}?mode=ro", uri=True)
            try:
                healthy = con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            finally:
                con.close()
        except sqlite3.DatabaseError:
            healthy = False
        stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{secrets.token_hex(2)}"
        backup = self.root / f"index.db.{'previous' if healthy else 'broken'}-{stamp}"
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.index_path}{suffix}")
            if src.exists():
                os.replace(src, Path(f"{backup}{suffix}"))
        return backup

    def _fill_missing(self) -> None:
        """Add run folders the index lacks (and migrate an older schema), without a rebuild."""
        con = sqlite3.connect(self.index_path, timeout=60.0, isolation_level=None)
        try:
            con.execute("PRAGMA busy_timeout=60000")
            con.execute("BEGIN IMMEDIATE")
            for table, cols in _ADDED_COLUMNS.items():
                have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
                for col in cols:
                    if col not in have:
                        con.execute(f"ALTER TABLE {table} ADD COLUMN {col} TEXT")
            indexed = {r[0] for r in con.execute("SELECT run_id FROM runs")}
            missing = [f for f in self._run_folders() if f not in indexed]
            self._index_into(con, missing, ReindexReport(), only_missing=True)
            con.execute("COMMIT")
        except sqlite3.DatabaseError:
            with contextlib.suppress(sqlite3.DatabaseError):
                con.execute("ROLLBACK")
        finally:
            con.close()

    def _index_into(
        self, con: sqlite3.Connection, folders: Sequence[str], report: ReindexReport, only_missing: bool
    ) -> None:
        """Insert the runs of `folders` and every batch file (or only batches the index lacks)."""
        batch_ids: set[str] = set()
        for name in folders:
            try:
                rec, source = self._read_run_folder(name)
            except StoreError as exc:
                report.skipped.append(str(exc))
                continue
            if source == "manifest":
                report.from_manifest.append(name)
            con.execute(
                f"INSERT OR REPLACE INTO runs ({','.join(_RUN_COLUMNS)}) VALUES ({','.join('?' * 17)})",
                tuple(_run_row_values(rec)),
            )
            linked = rec.get("linked_batches")
            for b in [rec["batch_id"], *(linked if isinstance(linked, list) else [])]:
                if is_valid_id(b):
                    con.execute("INSERT OR IGNORE INTO batch_runs VALUES (?, ?)", (b, name))
                    batch_ids.add(b)
            report.runs += 1
        known = {r[0] for r in con.execute("SELECT batch_id FROM batches")} if only_missing else set()
        batch_dir = self.root / "batches"
        files = sorted(batch_dir.glob("*.json")) if batch_dir.is_dir() else []
        readable: set[str] = set()
        for path in files:
            bid = path.name[: -len(".json")]
            if not is_valid_id(bid) or bid in known:
                continue
            try:
                b = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(b, dict) or b.get("batch_id") != bid:
                    raise ValueError(f"it names batch {b.get('batch_id') if isinstance(b, dict) else b!r}")
                claim_rows = [_claim_row(bid, i, c) for i, c in enumerate(b.get("claims") or [])]
                for row in claim_rows:  # every claim must parse before any is inserted
                    claim_result_from_row(dict(zip(_CLAIM_COLUMNS, row, strict=True)))
                con.execute(
                    "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?)",
                    (bid, str(b["target"]), str(b["created"]), json.dumps(b.get("spec"), default=str)),
                )
                con.executemany(
                    f"INSERT OR REPLACE INTO claims ({','.join(_CLAIM_COLUMNS)}) "
                    f"VALUES ({','.join('?' * 12)})",
                    claim_rows,
                )
                con.executemany(
                    "INSERT OR IGNORE INTO batch_runs VALUES (?, ?)",
                    [(bid, r) for r in b.get("run_ids") or [] if is_valid_id(r)],
                )
                readable.add(bid)
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                report.skipped.append(
                    f"batch file {path.name}: unreadable ({exc}); its claims will be re-judged"
                )
        for bid in sorted(batch_ids - readable - known):
            row = con.execute(
                "SELECT MIN(started), GROUP_CONCAT(DISTINCT experiment) FROM runs WHERE batch_id = ?",
                (bid,),
            ).fetchone()
            con.execute(
                "INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?)",
                (bid, row[1] or bid, row[0] or now_iso(), None),
            )
            if not only_missing or not (batch_dir / f"{bid}.json").exists():
                report.unjudged.append(bid)

    def _read_run_folder(self, name: str) -> tuple[dict[str, Any], str]:
        """A run's record from run.json, else rebuilt from manifest.json; ('run'|'manifest')."""
        d = self.runs_dir / check_id(name)
        problems = []
        for source in ("run", "manifest"):
            path = d / f"{source}.json"
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
                _check_record(rec, name)
            except FileNotFoundError:
                problems.append(f"no {path.name}")
                continue
            except (OSError, ValueError, TypeError, KeyError, StoreError) as exc:
                problems.append(f"{path.name} unreadable ({exc})")
                continue
            if source == "manifest":
                rec = _record_from_manifest(rec)
                if not self.readonly:
                    with contextlib.suppress(OSError):
                        if (d / "run.json").exists():
                            os.replace(d / "run.json", d / f".run.json.broken-{secrets.token_hex(3)}")
                        atomic_write_json(d / "run.json", rec)
            return rec, source
        raise StoreError(f"run folder {name}: not indexed: {'; '.join(problems)}")


def _check_record(rec: Any, folder: str) -> None:
    """Raise ValueError unless `rec` is a run record that belongs in run folder `folder`."""
    if not isinstance(rec, dict):
        raise ValueError("not a JSON object")
    if rec.get("run_id") != folder:
        raise ValueError(f"it names run_id {rec.get('run_id')!r}, not its folder {folder!r}")
    check_id(rec.get("batch_id"), "batch")
    for key, tp in (("experiment", str), ("config_hash", str), ("status", str), ("config", dict)):
        if not isinstance(rec.get(key), tp):
            raise ValueError(f"{key} is missing or not a {tp.__name__}")
    if isinstance(rec.get("seed"), bool) or not isinstance(rec.get("seed"), int):
        raise ValueError("seed is not an integer")
    if not isinstance(rec.get("metrics") or {}, dict) or not isinstance(rec.get("not_observed") or {}, dict):
        raise ValueError("metrics is not an object")
    if not isinstance(rec.get("started") or "", str):
        raise ValueError("started is not a string")


def _record_from_manifest(m: Mapping[str, Any]) -> dict[str, Any]:
    """A run.json record rebuilt from a manifest (what a finished run's run.json holds)."""
    keys = (
        "run_id", "batch_id", "experiment", "seed", "config", "config_hash", "preset", "device",
        "control", "status", "error", "metrics", "not_observed", "inputs", "started", "ended",
    )  # fmt: skip
    rec = {k: m.get(k) for k in keys}
    rec.update(pid=None, host=None, started=m.get("started") or now_iso())
    return rec


def _run_row_values(rec: Mapping[str, Any]) -> list[Any]:
    metrics = {k: _finite_or_none(v) for k, v in (rec.get("metrics") or {}).items()}
    pid = rec.get("pid")
    return [
        rec["run_id"], rec["batch_id"], rec["experiment"], int(rec["seed"]), rec["status"],
        json.dumps(rec["config"]), rec["config_hash"], rec.get("preset"), rec.get("device"),
        json.dumps(metrics), rec.get("error"), rec.get("started") or now_iso(), rec.get("ended"),
        pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        rec.get("host") if isinstance(rec.get("host"), str) else None,
        rec.get("control"), json.dumps(rec.get("not_observed") or {}),
    ]  # fmt: skip


def _claim_record(r: ClaimResult, created: str) -> dict[str, Any]:
    """One judged claim as the batch file keeps it."""
    control = getattr(r, "control_verdict", None)
    return {
        "experiment": r.experiment, "claim": claim_to_json(r.claim), "verdict": r.verdict.label,
        **{k: v for k, v in verdict_to_json(r.verdict).items() if k != "label"},
        "created": created, "run_ids": list(r.run_ids),
        "control": None if control is None else {
            **verdict_to_json(control), "run_ids": list(getattr(r, "control_run_ids", ())),
        },
    }  # fmt: skip


def _claim_row(batch_id: str, idx: int, c: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        batch_id, str(c["experiment"]), idx, json.dumps(c["claim"]), str(c["verdict"]),
        _finite_or_none(c.get("mean")), _finite_or_none(c.get("lo")), _finite_or_none(c.get("hi")),
        int(c.get("n") or 0), c.get("reason"), str(c.get("created") or now_iso()),
        None if c.get("control") is None else json.dumps(c["control"]),
    )  # fmt: skip


def claim_result_from_row(r: Mapping[str, Any]) -> ClaimResult:
    """A ClaimResult from a claims-table row (as a dict)."""
    claim = claim_from_json(json.loads(r["claim"]))
    verdict = verdict_from_json({**r, "verdict": r["verdict"]})
    extra: dict[str, Any] = {}
    control = json.loads(r["control"]) if r.get("control") else None
    if control is not None and "control_verdict" in {f.name for f in fields(ClaimResult)}:
        extra = {"control_verdict": verdict_from_json(control),
                 "control_run_ids": tuple(control.get("run_ids") or ())}  # fmt: skip
    return ClaimResult(r["batch_id"], r["experiment"], claim, verdict, **extra)


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection; falls back to immutable mode where WAL files cannot be created."""
    uri = f"file:{urllib.parse.quote(str(path))}"
    con = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=60.0)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.OperationalError:
        con.close()
    return sqlite3.connect(f"{uri}?immutable=1", uri=True)
