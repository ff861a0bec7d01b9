"""Runs under the published ``fallom==0.2.7``: the calls whose records become fixtures.

Usage: python _drive_027.py PROVIDER_URL TRACES_URL. Not imported by the suite.
"""

import sys
import threading
import time

import anthropic
import openai

import fallom

provider, traces = sys.argv[1], sys.argv[2]
fallom.init(api_key="fixture-key", traces_url=traces, configs_url=traces, prompts_url=traces)
messages = [{"role": "user", "content": "Say hello"}]

session = fallom.session(config_key="ref-bot", session_id="ref-s-1", customer_id="ref-u-1")
client = session.wrap_openai(openai.OpenAI(api_key="sk", base_url=provider + "/v1",
                                           max_retries=0))
client.chat.completions.create(model="gpt-4o-mini", messages=messages)
client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[
    {"type": "function", "function": {"name": "get_weather", "parameters": {}}}])
client.responses.create(model="gpt-4o", input="Say hello")
broken = session.wrap_openai(openai.OpenAI(api_key="sk", base_url=provider + "/missing/v1",
                                           max_retries=0))
try:
    broken.chat.completions.create(model="gpt-4o-mini", messages=messages)
except openai.OpenAIError:  # the fake provider answers 404: a record with status ERROR
    pass

claude = session.wrap_anthropic(anthropic.Anthropic(api_key="k", base_url=provider,
                                                    max_retries=0))
claude.messages.create(model="claude-x", max_tokens=5, messages=messages, system="Be brief")

try:
    import google.generativeai as legacy

    legacy.configure(api_key="k", transport="rest", client_options={"api_endpoint": provider})
    model = session.wrap_google_ai(legacy.GenerativeModel("gemini-1.5-flash"))
    model.generate_content("Say hello")
except ImportError:
    pass

deadline = time.time() + 10  # 0.2.7 sends each record from a thread of its own
while time.time() < deadline and threading.active_count() > 1:
    time.sleep(0.05)
