"""fallom 0.3.0 is the successor of the published 0.2.7: its calls, as 0.2.7 makes them."""

from __future__ import annotations

import asyncio
import inspect
import logging
import subprocess
import sys

import pytest

import fallom
from fallom import models, prompts

from ._config_server import ConfigServer

KEY = "successor-key"
AB = [{"model": "gpt-4o", "weight": 50}, {"model": "claude", "weight": 50}]


@pytest.fixture
def served(config_server: ConfigServer) -> ConfigServer:
    config_server.add_config("agent", AB)
    config_server.add_prompt("greet", "You are {{tone}}.", "Hello {{name}}")
    return config_server


def _init(server: ConfigServer) -> None:
    fallom.init(KEY, server.url, server.url, server.url, cold_start_timeout=30.0)


@pytest.mark.parametrize("command", [["-m", "fallom", "--version"],
                                     ["-c", "from fallom.cli import main; main()", "--version"]])
def test_version_is_0_3_0_everywhere(command: list) -> None:
    import importlib.metadata

    assert fallom.__version__ == "0.3.0"
    done = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "fallom 0.3.0")
    assert importlib.metadata.version("fallom") in ("0.3.0", "0.1.0")  # an editable install
    # made before the bump keeps its old metadata until reinstalled; a fresh one says 0.3.0


def test_init_takes_0_2_7s_six_arguments_by_position(served: ConfigServer) -> None:
    parameters = list(inspect.signature(fallom.init).parameters.values())[:6]
    assert [p.name for p in parameters] == ["api_key", "traces_url", "configs_url",
                                            "prompts_url", "capture_content", "debug"]
    fallom.init(KEY, served.url, served.url, served.url, False, False)
    assert fallom.tracing._runtime.STATE.settings.capture_content is False
    assert models.get("agent", "s-1") in ("gpt-4o", "claude")


def test_models_get_takes_0_2_7s_positional_order(served: ConfigServer,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    _init(served)
    by_position = models.get("agent", "s-1", None, "fallback-model", None, None, False)
    assert by_position == models.get("agent", "s-1")
    assert models.get("missing", "s-1", None, "fallback-model") == "fallback-model"
    with pytest.raises(ValueError, match="missing"):
        models.get("missing", "s-1")  # 0.2.7 raises ValueError too
    with caplog.at_level(logging.INFO, logger="fallom"):
        models.get("agent", "s-1", debug=True)
    assert any("models.get('agent', 's-1')" in r.getMessage() for r in caplog.records)


def test_models_init_and_prompts_init_start_their_part_and_keep_the_rest(
        served: ConfigServer) -> None:
    models.init(KEY, served.url)
    assert models.get("agent", "s-1") in ("gpt-4o", "claude")
    fallom.init(KEY, configs_url=served.url, sample_rate=0.5)
    prompts.init(base_url=served.url)
    settings = fallom.tracing._runtime.STATE.settings
    assert (settings.sample_rate, settings.prompts_url) == (0.5, served.url)
    assert prompts.get("greet", {"tone": "kind", "name": "Ada"}).user == "Hello Ada"


def test_prompts_take_0_2_7s_positional_order_and_show_their_context(
        served: ConfigServer) -> None:
    _init(served)
    prompts.clear_prompt_context()  # what an earlier test in this thread fetched
    assert prompts.get_prompt_context() is None
    prompt = prompts.get("greet", {"tone": "terse", "name": "Bo"}, None)
    assert isinstance(prompt, prompts.PromptResult)
    assert (prompt.system, prompt.user) == ("You are terse.", "Hello Bo")
    assert prompts.get_prompt_context() == {"prompt_key": "greet", "prompt_version": 1,
                                            "ab_test_key": None, "variant_index": None}
    prompts.clear_prompt_context()
    assert prompts.get_prompt_context() is None


def test_session_get_model_is_awaitable_with_0_2_7s_parameters(served: ConfigServer) -> None:
    served.add_config("other", [{"model": "only-one", "weight": 100}])
    _init(served)
    session = fallom.session("agent", "s-1", customer_id="u-1")
    assert list(inspect.signature(session.get_model).parameters)[:3] == [
        "config_key", "fallback", "version"]

    async def ask() -> tuple:
        return (await session.get_model(), await session.get_model("other"),
                await session.get_model("missing", "fb"))

    assert asyncio.run(ask()) == (models.get("agent", "s-1", customer_id="u-1"),
                                  "only-one", "fb")


def test_a_cold_get_model_never_blocks_the_event_loop(served: ConfigServer) -> None:
    served.failure = ("hang", None)  # the first configs fetch is held until released
    fallom.init(KEY, served.url, served.url, served.url, cold_start_timeout=30.0)
    session = fallom.session("agent", "s-1")

    async def ask() -> str:
        waiting = asyncio.ensure_future(session.get_model(fallback="fb"))
        await asyncio.sleep(0)  # the loop runs other work while the fetch is held
        assert not waiting.done()
        served.failure = None
        served.released.set()
        return await asyncio.wait_for(waiting, 30.0)

    assert asyncio.run(ask()) in ("gpt-4o", "claude", "fb")
