"""Fuzzing a real store: random files corrupted, truncated, deleted, renamed or locked, then every
read command run through the CLI. Each must end with a correct answer or a one-line error: never a
traceback, never a write outside the store, never a run lost that a manifest still describes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from alignlab.cli import main
from alignlab.core.runner import run_batch
from alignlab.core.store import Store, is_valid_id

MUTATIONS = ("corrupt", "truncate", "delete", "rename", *(("lock",) if os.geteuid() != 0 else ()))
"""`lock` (chmod 000) is left out as root, whom permission bits do not stop."""


@pytest.fixture(scope="module")
def template() -> Iterator[Path]:
    """A small real store: 3 runs of toy.mean and 2 of toy.artifacts (figures, arrays), judged."""
    root = Path(tempfile.mkdtemp(prefix="alignlab-fuzz-template-"))
    st_ = Store(root / "store")
    run_batch("toy.mean", seeds=3, store=st_, executor="inprocess")
    run_batch("toy.artifacts", seeds=2, store=st_, executor="inprocess")
    yield root / "store"
    shutil.rmtree(root, ignore_errors=True)


def cli(*args: str) -> tuple[int, str, str]:
    """`alignlab ARGS` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def snapshot(folder: Path, skip: Path) -> dict[str, bytes]:
    """Every file under `folder` outside `skip`, with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and skip not in p.parents
    }


def intact_manifests(store: Path) -> set[str]:
    """Run folders whose manifest.json still describes them (parseable, naming its own folder)."""
    out = set()
    for path in (store / "runs").glob("*/manifest.json"):
        with contextlib.suppress(OSError, ValueError):
            m = json.loads(path.read_bytes())
            folder = path.parent.name
            if (
                isinstance(m, dict) and m.get("run_id") == folder and is_valid_id(folder)
                and isinstance(m.get("seed"), int) and isinstance(m.get("config"), dict)
                and is_valid_id(m.get("batch_id")) and isinstance(m.get("experiment"), str)
                and isinstance(m.get("config_hash"), str) and isinstance(m.get("status"), str)
            ):  # fmt: skip
                out.add(folder)
    return out


def mutate(store: Path, kind: str, pick: int, data: bytes, rng_len: int) -> str:
    """Apply one mutation to the `pick`-th path of the store; returns what was done."""
    paths = sorted(p for p in store.rglob("*") if not p.name.endswith(".lock"))
    if not paths:
        return "nothing to mutate"
    target = paths[pick % len(paths)]
    rel = target.relative_to(store)
    if target.is_dir():
        if kind in ("delete", "corrupt", "truncate"):
            shutil.rmtree(target)
            return f"rmtree {rel}"
        if kind == "rename":
            target.rename(target.with_name(target.name + ".moved"))
            return f"rename {rel}"
        target.chmod(0)
        return f"chmod 000 {rel}"
    if kind == "corrupt":
        raw = bytearray(target.read_bytes())
        at = rng_len % max(1, len(raw))
        raw[at : at + len(data)] = data
        target.write_bytes(bytes(raw))
        return f"corrupt {rel} at {at}"
    if kind == "truncate":
        size = target.stat().st_size
        with target.open("r+b") as fh:
            fh.truncate(rng_len % max(1, size))
        return f"truncate {rel}"
    if kind == "delete":
        target.unlink()
        return f"delete {rel}"
    if kind == "rename":
        target.rename(target.with_name(target.name + ".moved"))
        return f"rename {rel}"
    target.chmod(0)
    return f"chmod 000 {rel}"


def changed_evidence(before: dict[str, bytes], store: Path) -> list[str]:
    """What verify must notice: a manifest-covered file changed or gone, or a run record, manifest
    or batch file gone or no longer a JSON object (edits inside fields verify does not display,
    such as a timestamp or the host name, are not evidence of anything)."""
    after = snapshot(store, store / "reports")
    covered = set()
    for rel, data in before.items():
        if rel.endswith("/manifest.json"):
            folder = rel.rsplit("/", 1)[0]
            covered |= {f"{folder}/{f}" for f in json.loads(data)["files"]}
    out = []
    for rel, data in before.items():
        now = after.get(rel)
        if now == data:
            continue
        if rel in covered:
            out.append(rel)
        elif rel.endswith(("/run.json", "/manifest.json")) or rel.startswith("batches/"):
            try:
                ok = now is not None and isinstance(json.loads(now), dict)
            except ValueError:
                ok = False
            if not ok:
                out.append(rel)
    return out


def check_answer(name: str, code: int, out: str, err: str) -> None:
    """A correct answer or a one-line error; never a traceback or an internal error."""
    text = out + err
    assert "Traceback" not in text, (name, text)
    assert "internal error" not in text, (name, text)
    assert code in (0, 1, 2), (name, code, text)
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), (name, err)


mutation = st.tuples(
    st.sampled_from(MUTATIONS),
    st.integers(0, 10_000),
    st.binary(min_size=1, max_size=16),
    st.integers(0, 10_000),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(mutations=st.lists(mutation, min_size=1, max_size=3))
def test_damaged_store_never_crashes_writes_outside_or_loses_a_run(
    template: Path, mutations: list[tuple[str, int, bytes, int]]
) -> None:
    sandbox = Path(tempfile.mkdtemp(prefix="alignlab-fuzz-"))
    try:
        (sandbox / "outside.txt").write_text("must not change")
        store = sandbox / "store"
        shutil.copytree(template, store)
        pristine = snapshot(store, store / "reports")
        for kind, pick, data, n in mutations:
            note(mutate(store, kind, pick, data, n))
        described = intact_manifests(store)
        evidence = changed_evidence(pristine, store)
        outside = snapshot(sandbox, store)
        s = str(store)
        code, out, err = cli("verify", "--all", "--no-rerun", "--store", s)
        check_answer("verify", code, out, err)
        if evidence:
            assert code != 0, f"verify passed although {evidence} changed: {out}"
        commands = [
            ("runs", "runs", "--json", "--limit", "0", "--store", s),
            ("claims", "claims", "--json", "--store", s),
            ("report", "report", "--store", s, "-o", str(sandbox / "report.html")),
            ("show", "show", "toy.mean-s0", "--store", s),
            ("reindex", "reindex", "--store", s),
            ("runs after reindex", "runs", "--json", "--limit", "0", "--store", s),
            (
                "resume",
                "run",
                "toy.mean",
                "--seeds",
                "3",
                "--resume",
                "--workers",
                "1",
                "--no-report",
                "--store",
                s,
            ),
            ("verify after resume", "verify", "--all", "--no-rerun", "--store", s),
        ]
        for name, *args in commands:
            code, out, err = cli(*args)
            check_answer(name, code, out, err)
            if name == "runs after reindex" and code == 0:
                listed = {r["run_id"] for r in json.loads(out)}
                assert described <= listed, f"runs described by a manifest were lost: {described - listed}"
        now = snapshot(sandbox, store)
        now.pop("report.html", None)
        assert now == outside, "something was written outside the store"
        assert not (sandbox.parent / "victim").exists()
    finally:
        for p in [sandbox, *sandbox.rglob("*")]:
            with contextlib.suppress(OSError):
                p.chmod(0o755)
        shutil.rmtree(sandbox, ignore_errors=True)
