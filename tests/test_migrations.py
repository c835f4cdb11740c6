"""Migrations one at a time: replicas started together on a fresh or an old database, and a
database migrated by a newer kb refused with a French message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import POSTGRES_ADMIN_URL, ROOT, _postgres_reachable
from test_mail import free_port

from kb import db
from kb.config import Settings

ROUNDS = 12

# Each process imports kb first, then migrates database i at the same instant as the other one.
RACER = """
import json, sys, time
from kb import db
from kb.config import Settings
urls, start = json.loads(sys.argv[1]), float(sys.argv[2])
results = []
for i, url in enumerate(urls):
    engine = db.make_engine(Settings.from_env({}, database_url=url))
    while time.time() < start + i * 0.3:
        pass
    try:
        db.upgrade(engine)
        results.append("ok")
    except Exception as exc:
        results.append(f"{type(exc).__name__}: {exc}"[:300])
    engine.dispose()
print(json.dumps(results))
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    if request.param == "sqlite":
        yield [f"sqlite:///{tmp_path / f'kb{n}.sqlite3'}" for n in range(ROUNDS)]
        return
    if not _postgres_reachable():
        if os.environ.get("KB_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL injoignable : {POSTGRES_ADMIN_URL}")
        pytest.skip("PostgreSQL injoignable")
    names = [f"kb_test_{uuid.uuid4().hex[:12]}" for _ in range(ROUNDS)]
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for name in names:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield [POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}" for name in names]
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _stamp_old(url: str) -> None:
    """A database as the previous release left it: migrated up to 0004."""
    from alembic import command

    engine = db.make_engine(Settings.from_env({}, database_url=url))
    config = db._alembic_config(engine)
    command.upgrade(config, "0004")
    engine.dispose()


def test_two_replicas_migrating_at_once_both_start(fresh_databases: list[str]) -> None:
    """Half the databases are new, half at the previous release: both processes migrate each
    at the same instant; both succeed, and each database ends at head exactly once."""
    for url in fresh_databases[ROUNDS // 2 :]:
        _stamp_old(url)
    plan = json.dumps(fresh_databases)
    start = time.time() + 4  # both have imported kb by then
    racers = [
        subprocess.Popen([sys.executable, "-c", RACER, plan, str(start)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [racer.communicate(timeout=180) for racer in racers]
    for (out, err), racer in zip(outputs, racers, strict=True):
        assert racer.returncode == 0, err
        assert json.loads(out) == ["ok"] * ROUNDS, err
    head = db.head_revision()
    for url in fresh_databases:
        engine = db.make_engine(Settings.from_env({}, database_url=url))
        with engine.connect() as connection:
            versions = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert versions.scalars().all() == [head]
            assert sa.inspect(connection).has_table("mail_outbox")
        engine.dispose()


def test_serve_refuses_a_database_migrated_by_a_newer_kb(database_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(Settings.from_env({}, database_url=database_url))
    db.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(KB_DATABASE_URL=database_url, KB_DATA_DIR=str(tmp_path / "var"),
               KB_INDEX_DIR=str(tmp_path / "index"), KB_PORT=str(free_port()))  # fmt: skip
    expected = (
        "kb: La base de données est à la révision 0099, plus récente que cette version de "
        f"kb (dernière révision connue : {db.head_revision()})"
    )
    for command in (("db", "upgrade"), ("serve",)):
        result = subprocess.run([sys.executable, "-m", "kb.cli", *command], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert result.returncode == 1, result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "index").exists()  # refused before building anything
