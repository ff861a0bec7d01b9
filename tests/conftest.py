"""Shared fixtures: internal errors raise here, and every test starts clean."""

from __future__ import annotations

import os

os.environ["FALLOM_RAISE_INTERNAL_ERRORS"] = "1"
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # never fetch the price list
for _name in [k for k in os.environ if k.startswith(("FALLOM_", "OTEL_"))]:
    if _name not in ("FALLOM_RAISE_INTERNAL_ERRORS", "FALLOM_REFERENCE_PYTHON",
                     "FALLOM_EXPECT_NO_PROVIDERS", "FALLOM_TEST_POSTGRES_URL"):
        del os.environ[_name]

import tempfile  # noqa: E402
from typing import Iterator  # noqa: E402

import pytest  # noqa: E402

import fallom  # noqa: E402
from fallom.testing import CapturedSpans, capture_spans, reset  # noqa: E402

from . import _postgres  # noqa: E402
from ._config_server import ConfigServer  # noqa: E402
from ._provider_server import ProviderServer  # noqa: E402
from ._traces_server import TracesServer  # noqa: E402


@pytest.fixture(autouse=True)
def _clean_fallom() -> Iterator[None]:
    yield
    reset()


@pytest.fixture
def spans() -> Iterator[CapturedSpans]:
    """Records of the spans finished in the test, after a local-mode init."""
    fallom.init()
    with capture_spans() as records:
        yield records


@pytest.fixture
def traces_server() -> Iterator[TracesServer]:

    server = TracesServer()
    yield server
    server.close()


@pytest.fixture
def provider_server() -> Iterator[ProviderServer]:
    server = ProviderServer()
    yield server
    server.close()


@pytest.fixture
def config_server() -> Iterator[ConfigServer]:
    server = ConfigServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL: the one CI started ($FALLOM_TEST_POSTGRES_URL), else one started
    here for the session; skipped only where PostgreSQL is not installed."""
    given = os.environ.get(_postgres.ENV)
    if given:
        yield given
        return
    if _postgres.find_bin() is None:
        pytest.skip("PostgreSQL is not installed here (no initdb): apt-get install postgresql")
    with tempfile.TemporaryDirectory(prefix="fallom-pg-") as directory:
        url, data = _postgres.start(directory)
        try:
            yield url
        finally:
            _postgres.stop(data)
