"""Runs under the published ``fallom==0.2.7``: answer a list of queries, as JSON.

Usage: python _answer_027.py URL JOB.json OUT.json. Each query is
``["model", key, session_id, customer_id, context, version]``,
``["prompt", key, variables, version]`` or ``["ab", key, session_id, variables]``;
each answer is the result, or ``{"error": ExceptionType}``. Not imported by the suite.
"""

import json
import sys

import fallom
from fallom import models, prompts

url, job, out = sys.argv[1], sys.argv[2], sys.argv[3]
fallom.init(api_key="parity-key", traces_url=url, configs_url=url, prompts_url=url)
models._record_session = lambda *args: None  # assignments only: no report per call


def answer(query):
    kind = query[0]
    if kind == "model":
        _, key, session_id, customer_id, context, version = query
        return models.get(key, session_id, version=version, customer_id=customer_id,
                          context=context)
    if kind == "prompt":
        _, key, variables, version = query
        found = prompts.get(key, variables=variables, version=version)
        return [found.key, found.version, found.system, found.user]
    _, key, session_id, variables = query
    found = prompts.get_ab(key, session_id, variables=variables)
    return [found.key, found.version, found.system, found.user, found.ab_test_key,
            found.variant_index]


answers = []
for query in json.load(open(job)):
    try:
        answers.append(answer(query))
    except Exception as exc:  # an answer too: the reference raises here
        answers.append({"error": type(exc).__name__})
with open(out, "w") as handle:
    json.dump(answers, handle)
