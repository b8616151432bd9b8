"""The PostgreSQL fixture itself: a real server that stops, restarts and survives a crash."""

from __future__ import annotations

import psycopg
import pytest

from tests.fixtures.postgres import PostgresServer


def test_fresh_database_per_test_and_restart(postgres_server: PostgresServer, postgres_db: str) -> None:
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1)")
    postgres_server.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres_db, connect_timeout=2)
    postgres_server.start()
    with psycopg.connect(postgres_db) as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]


def test_killed_server_recovers_committed_rows(postgres_server: PostgresServer, postgres_db: str) -> None:
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t SELECT generate_series(1, 100)")
    postgres_server.kill()
    assert not postgres_server.running
    postgres_server.start()
    with psycopg.connect(postgres_db) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (100,)
    assert postgres_server.url.startswith("postgresql://postgres@127.0.0.1:")
