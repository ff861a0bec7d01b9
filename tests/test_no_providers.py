"""fallom imports and traces with no provider SDK and no OpenTelemetry installed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

OPTIONAL = ["openai", "anthropic", "google.genai", "langchain_core", "litellm", "opentelemetry"]


def test_import_and_trace_without_optional_packages() -> None:
    code = (
        "import sys, fallom\n"
        "from fallom.testing import capture_spans, view\n"
        "@fallom.trace_llm\n"
        "def ask(q): return q\n"
        "with capture_spans() as spans: ask('x')\n"
        "assert view(spans[0]).output == 'x'\n"
        f"loaded = [m for m in {OPTIONAL!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(not os.environ.get("FALLOM_EXPECT_NO_PROVIDERS"),
                    reason="only in the `noproviders` tox environment")
def test_the_environment_really_has_no_optional_package() -> None:
    present = [m for m in OPTIONAL if importlib.util.find_spec(m.split(".")[0]) is not None]
    assert present == []


@pytest.mark.skipif(not os.environ.get("FALLOM_EXPECT_NO_PROVIDERS"),
                    reason="only in the `noproviders` tox environment")
def test_otel_features_name_the_extra_to_install() -> None:
    import fallom

    with pytest.raises(ImportError, match=r"pip install -e '\.\[otel\]'"):
        fallom.init(otlp_endpoint="http://127.0.0.1:4318/v1/traces")
    with pytest.raises(ImportError, match=r"pip install -e '\.\[otel\]'"):
        fallom.init(otel_context=True)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[otel\]'"):
        fallom.FallomExporter


@pytest.mark.skipif(not os.environ.get("FALLOM_EXPECT_NO_PROVIDERS"),
                    reason="only in the `noproviders` tox environment")
def test_otlp_protobuf_without_the_extra_is_a_415_naming_it() -> None:
    import tempfile

    import requests

    from fallom.server import serve

    with tempfile.TemporaryDirectory() as directory:
        server = serve(port=0, db=os.path.join(directory, "t.db"))
        try:
            reply = requests.post(server.url + "/v1/traces", data=b"\x0a\x00", timeout=10,
                                  headers={"Content-Type": "application/x-protobuf",
                                           "Authorization": "Bearer k"})
            json_reply = requests.post(server.url + "/v1/traces", json={"resourceSpans": []},
                                       timeout=10, headers={"Authorization": "Bearer k"})
        finally:
            server.close()
    assert reply.status_code == 415
    assert "pip install -e '.[otel]'" in reply.json()["error"]
    assert json_reply.status_code == 200  # OTLP/JSON needs nothing extra
