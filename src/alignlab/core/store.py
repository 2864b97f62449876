"""The run store: one folder per run plus a SQLite index (WAL) over them.

Layout::

    <root>/store.json            format marker and version
    <root>/index.db              SQLite index (rebuildable from the run folders: `alignlab reindex`)
    <root>/runs/<run_id>/run.json       the run's record (source of truth for the index)
                 config.json, metrics.json, manifest.json, timeseries.jsonl, artifacts/...
    <root>/batches/<batch>.json         a batch's spec and judged claims
    <root>/reports/<batch>.html

Every file is written atomically (temp file + rename). Several processes may write one store
at once: SQLite serialises the index, run folders never collide. A run whose owning process
died shows as ``interrupted``.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, batch_id TEXT NOT NULL, experiment TEXT NOT NULL,
    seed INTEGER NOT NULL, status TEXT NOT NULL, config TEXT NOT NULL,
    config_hash TEXT NOT NULL, preset TEXT, device TEXT, metrics TEXT, error TEXT,
    started TEXT NOT NULL, ended TEXT, pid INTEGER, host TEXT
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
    reason TEXT, created TEXT NOT NULL, PRIMARY KEY (batch_id, experiment, idx)
);
"""


def now_iso() -> str:
    """The current UTC time as an ISO-8601 string with seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def default_root() -> Path:
    """The store used when none is given: ``$ALIGNLAB_HOME`` or ``./alignlab-runs``."""
    return Path(os.environ.get("ALIGNLAB_HOME") or DEFAULT_STORE)


def _pid_alive(pid: int | None, host: str | None) -> bool:
    if pid is None or host != HOST:
        return host != HOST  # another machine's run: assume alive, we cannot tell
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _finite_or_none(x: float) -> float | None:
    return x if isinstance(x, int | float) and math.isfinite(x) else None


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


class Store:
    """A run store at `root`: run folders and the SQLite index over them."""

    def __init__(self, root: Path | str | None = None, *, create: bool = True) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.runs_dir = self.root / "runs"
        self.index_path = self.root / "index.db"
        self._check_or_create(create)

    # -- opening ---------------------------------------------------------------
    def _check_or_create(self, create: bool) -> None:
        marker = self.root / "store.json"
        if not marker.exists():
            if not create:
                raise StoreError(
                    f"no alignlab store at {self.root} (run `alignlab run ...` first, "
                    "or pass --store / set ALIGNLAB_HOME)"
                )
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(marker, {"format": STORE_FORMAT, "version": STORE_VERSION})
        try:
            meta = json.loads(marker.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreError(f"{marker} is corrupt ({exc}); it should hold the store format") from None
        if meta.get("format") != STORE_FORMAT:
            raise StoreError(f"{self.root} is not an alignlab store ({marker} has no store format)")
        version = meta.get("version")
        if not isinstance(version, int) or version > STORE_VERSION:
            raise StoreError(
                f"store {self.root} has format version {version!r}, newer than this alignlab "
                f"understands ({STORE_VERSION}); upgrade alignlab (pip install -U alignlab)"
            )
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        fresh = not self.index_path.exists()
        try:
            self._create_schema()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"index {self.index_path} is unreadable ({exc}); the run folders are intact — "
                "rebuild it with `alignlab reindex`"
            ) from None
        if fresh and any(self.runs_dir.iterdir()):
            self.reindex()

    def _create_schema(self) -> None:
        con = sqlite3.connect(self.index_path, timeout=60.0, isolation_level=None)
        try:
            con.execute("PRAGMA busy_timeout=60000")
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)
        finally:
            con.close()

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in WAL mode with a generous busy timeout; commits on success."""
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
        finally:
            con.close()

    def run_dir(self, run_id: str) -> Path:
        """The folder of run `run_id`."""
        return self.runs_dir / run_id

    # -- writing ---------------------------------------------------------------
    def batch_file(self, batch_id: str) -> Path:
        """The JSON file holding a batch's spec and judged claims (so reindex loses nothing)."""
        return self.root / "batches" / f"{batch_id}.json"

    def new_batch(self, batch_id: str, target: str, spec: dict[str, Any]) -> None:
        """Record one `alignlab run` invocation (its runs are judged together)."""
        created = now_iso()
        record = {"batch_id": batch_id, "target": target, "created": created, "spec": spec, "claims": []}
        atomic_write_json(self.batch_file(batch_id), record)
        with self.connect() as con:
            con.execute(
                "INSERT INTO batches VALUES (?, ?, ?, ?)",
                (batch_id, target, created, json.dumps(spec, default=str)),
            )

    def begin_runs(self, rows: Sequence[RunRow]) -> None:
        """Register runs as ``running`` (owned by this process) and write their run.json."""
        started = now_iso()
        pid = os.getpid()
        for row in rows:
            d = self.run_dir(row.run_id)
            d.mkdir(parents=True, exist_ok=True)
            atomic_write_json(d / "run.json", self._record_json(row, "running", started))
        with self.connect() as con:
            con.executemany(
                "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (r.run_id, r.batch_id, r.experiment, r.seed, "running",
                     json.dumps(r.config), r.config_hash, r.preset, r.device, None, None,
                     started, None, pid, HOST)
                    for r in rows
                ],
            )  # fmt: skip
            con.executemany(
                "INSERT OR IGNORE INTO batch_runs VALUES (?, ?)",
                [(r.batch_id, r.run_id) for r in rows],
            )

    def link_runs(self, batch_id: str, run_ids: Sequence[str]) -> None:
        """Count already finished runs (reused by --resume) as part of batch `batch_id`."""
        with self.connect() as con:
            con.executemany(
                "INSERT OR IGNORE INTO batch_runs VALUES (?, ?)", [(batch_id, r) for r in run_ids]
            )

    def finish_run(
        self,
        run_id: str,
        status: str,
        metrics: dict[str, float] | None = None,
        error: str | None = None,
    ) -> None:
        """Mark a run finished (``done``/``failed``/``interrupted``) in run.json and the index."""
        ended = now_iso()
        path = self.run_dir(run_id) / "run.json"
        record = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        clean = {k: _finite_or_none(float(v)) for k, v in (metrics or {}).items()}
        record.update(status=status, ended=ended, metrics=clean, error=error)
        if record:
            atomic_write_json(path, record)
        with self.connect() as con:
            con.execute(
                "UPDATE runs SET status=?, metrics=?, error=?, ended=?, pid=NULL WHERE run_id=?",
                (status, json.dumps(clean), error, ended, run_id),
            )

    def save_claims(self, batch_id: str, results: Sequence[ClaimResult]) -> None:
        """Store judged claims for a batch (replacing earlier ones for the same claims)."""
        created = now_iso()
        path = self.batch_file(batch_id)
        if path.exists():
            record = json.loads(path.read_text(encoding="utf-8"))
            record["claims"] = [
                {"experiment": r.experiment, "claim": _claim_json(r.claim), "verdict": r.verdict.label,
                 "mean": _finite_or_none(r.verdict.mean), "lo": _finite_or_none(r.verdict.lo),
                 "hi": _finite_or_none(r.verdict.hi), "n": r.verdict.n, "reason": r.verdict.reason,
                 "created": created}
                for r in results
            ]  # fmt: skip
            atomic_write_json(path, record)
        with self.connect() as con:
            con.executemany(
                "INSERT OR REPLACE INTO claims VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (batch_id, r.experiment, i, json.dumps(_claim_json(r.claim)), r.verdict.label,
                     _finite_or_none(r.verdict.mean), _finite_or_none(r.verdict.lo),
                     _finite_or_none(r.verdict.hi), r.verdict.n, r.verdict.reason, created)
                    for i, r in enumerate(results)
                ],
            )  # fmt: skip

    def _record_json(self, row: RunRow, status: str, started: str) -> dict[str, Any]:
        return {
            "run_id": row.run_id, "batch_id": row.batch_id, "experiment": row.experiment,
            "seed": row.seed, "config": row.config, "config_hash": row.config_hash,
            "preset": row.preset, "device": row.device, "status": status, "started": started,
            "ended": None, "metrics": {}, "error": None, "pid": os.getpid(), "host": HOST,
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
            where.append("(r.experiment = ? OR r.experiment LIKE ?)")
            args += [experiment, experiment + ".%"]
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
        con = self._reader()
        try:
            rows = con.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"index {self.index_path} is unreadable ({exc}); rebuild it with `alignlab reindex`"
            ) from None
        finally:
            con.close()
        out = []
        for row in rows:
            rec = self._to_record(row)
            if status and rec.status != status:
                continue
            out.append(rec)
            if limit and len(out) >= limit:
                break
        return out

    def _reader(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.index_path, timeout=60.0)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA busy_timeout=60000")
        return con

    def _to_record(self, row: sqlite3.Row) -> RunRecord:
        status = row["status"]
        if status == "running" and not _pid_alive(row["pid"], row["host"]):
            status = "interrupted"
        metrics = json.loads(row["metrics"]) if row["metrics"] else {}
        return RunRecord(
            run_id=row["run_id"],
            batch_id=row["batch_id"],
            experiment=row["experiment"],
            seed=row["seed"],
            status=status,
            config=json.loads(row["config"]),
            config_hash=row["config_hash"],
            metrics={k: (math.nan if v is None else float(v)) for k, v in metrics.items()},
            started=row["started"],
            ended=row["ended"],
            run_dir=self.run_dir(row["run_id"]),
            preset=row["preset"],
            error=row["error"],
            device=row["device"] or "cpu",
        )

    def get_run(self, run_id: str) -> RunRecord:
        """The run with id `run_id` (a unique prefix is enough)."""
        con = self._reader()
        try:
            rows = con.execute(
                "SELECT * FROM runs WHERE run_id = ? OR run_id LIKE ? LIMIT 3",
                (run_id, run_id.replace("%", "") + "%"),
            ).fetchall()
        finally:
            con.close()
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
        con = self._reader()
        try:
            rows = con.execute(
                "SELECT * FROM runs WHERE experiment=? AND config_hash=? AND seed=? ORDER BY started DESC",
                (experiment, config_hash, seed),
            ).fetchall()
        finally:
            con.close()
        for row in rows:
            rec = self._to_record(row)
            if rec.status == status:
                return rec
        return None

    def batches(self, target: str | None = None) -> list[dict[str, Any]]:
        """Batches (one per `alignlab run`), newest first."""
        con = self._reader()
        try:
            sql = "SELECT * FROM batches"
            args: list[Any] = []
            if target:
                sql += " WHERE target = ?"
                args.append(target)
            rows = con.execute(sql + " ORDER BY created DESC, batch_id DESC", args).fetchall()
        finally:
            con.close()
        return [dict(r) for r in rows]

    def claims_all(self) -> list[ClaimResult]:
        """Every judged claim of every batch."""
        return self.claims(batch_id="*")

    def claims(self, batch_id: str | None = None, experiment: str | None = None) -> list[ClaimResult]:
        """Judged claims: of one batch, or the latest judgement of each experiment's claims."""
        con = self._reader()
        try:
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
        finally:
            con.close()
        out = []
        for r in rows:
            if experiment and r["experiment"] != experiment:
                continue
            c = json.loads(r["claim"])
            verdict = Verdict(
                r["verdict"],
                _nan(r["mean"]),
                _nan(r["lo"]),
                _nan(r["hi"]),
                r["n"] or 0,
                r["reason"] or "",
            )
            out.append(ClaimResult(r["batch_id"], r["experiment"], Claim(**c), verdict))
        return out

    # -- repair ----------------------------------------------------------------
    def mark_interrupted(self, run_ids: Sequence[str], reason: str) -> None:
        """Mark runs that were stopped before finishing."""
        for run_id in run_ids:
            self.finish_run(run_id, "interrupted", error=reason)

    def reindex(self) -> int:
        """Rebuild index.db from the run folders' run.json files; returns the number of runs."""
        if self.index_path.exists():
            stamp = time.strftime("%Y%m%d-%H%M%S")
            os.replace(self.index_path, self.root / f"index.db.broken-{stamp}")
            for suffix in ("-wal", "-shm"):
                Path(str(self.index_path) + suffix).unlink(missing_ok=True)
        self._create_schema()
        count = 0
        with self.connect() as con:
            for run_json in sorted(self.runs_dir.glob("*/run.json")):
                try:
                    r = json.loads(run_json.read_text(encoding="utf-8"))
                    con.execute(
                        "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (r["run_id"], r["batch_id"], r["experiment"], int(r["seed"]), r["status"],
                         json.dumps(r["config"]), r["config_hash"], r.get("preset"),
                         r.get("device"), json.dumps(r.get("metrics") or {}), r.get("error"),
                         r["started"], r.get("ended"), r.get("pid"), r.get("host")),
                    )  # fmt: skip
                    con.execute(
                        "INSERT OR IGNORE INTO batch_runs VALUES (?, ?)",
                        (r["batch_id"], r["run_id"]),
                    )
                    con.execute(
                        "INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?)",
                        (r["batch_id"], r["experiment"], r["started"], None),
                    )
                    count += 1
                except (json.JSONDecodeError, KeyError, ValueError, TypeError):
                    continue  # a folder without a readable record cannot be indexed
            for batch_json in sorted((self.root / "batches").glob("*.json")):
                try:
                    b = json.loads(batch_json.read_text(encoding="utf-8"))
                    con.execute(
                        "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?)",
                        (b["batch_id"], b["target"], b["created"], json.dumps(b.get("spec"))),
                    )
                    for idx, c in enumerate(b.get("claims", [])):
                        con.execute(
                            "INSERT OR REPLACE INTO claims VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                            (b["batch_id"], c["experiment"], idx, json.dumps(c["claim"]), c["verdict"],
                             c["mean"], c["lo"], c["hi"], c["n"], c["reason"], c["created"]),
                        )  # fmt: skip
                except (json.JSONDecodeError, KeyError, ValueError, TypeError):
                    continue
        return count


def _claim_json(claim: Claim) -> dict[str, Any]:
    return {
        "metric": claim.metric, "op": claim.op, "value": claim.value,
        "source": claim.source, "tol": claim.tol, "note": claim.note,
    }  # fmt: skip


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)
