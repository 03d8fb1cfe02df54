"""Shared fixtures. Area-specific fixtures live in tests/<area>/conftest.py."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must precede the first torch import

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def ml100k():
    """The real MovieLens-100k dataset from the recbole wheel (loads in ~0.3 s)."""
    from retrieval.catalog.movielens import load_movielens_100k

    return load_movielens_100k()


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory) -> Path:
    """One MARQUEE_HOME per test session: expensive artefacts (converted model, full index) are built once."""
    home = Path(os.environ.get("MARQUEE_TEST_HOME") or tmp_path_factory.mktemp("marquee-home"))
    home.mkdir(parents=True, exist_ok=True)
    return home


@pytest.fixture
def tmp_home(tmp_path, monkeypatch) -> Path:
    """An empty MARQUEE_HOME for tests that must start from nothing."""
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A PostgreSQL server of our own on 127.0.0.1 (scripts/cluster.sh --only postgres), for the whole session."""
    from benchmarks.cluster_driver import MISSING_PACKAGE, Cluster, ClusterError

    cluster = Cluster(tmp_path_factory.mktemp("postgres-cluster"), only=("postgres",))
    try:
        cluster.__enter__()
    except ClusterError as exc:
        if exc.code == MISSING_PACKAGE:  # make test installs it (scripts/services_deps.sh); say what is missing
            pytest.skip(f"PostgreSQL is not installed here ({exc}); run: bash scripts/services_deps.sh")
        raise
    yield cluster.urls["postgres"]
    cluster.__exit__(None, None, None)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty database on the session's PostgreSQL server (dropped after the test)."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    base, _, _ = postgres_server.rpartition("/")
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield f"{base}/{name}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
