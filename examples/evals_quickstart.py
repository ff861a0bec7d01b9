"""Score an assistant's answers with an LLM judge, and store the run in fallom serve.

Offline: `fallom serve` (its exports give FALLOM_BASE_URL and FALLOM_API_KEY) and
examples/judge_standin.py (FALLOM_JUDGE_BASE_URL). With a real judge, set
OPENROUTER_API_KEY instead of FALLOM_JUDGE_BASE_URL (or point FALLOM_JUDGE_BASE_URL and
FALLOM_JUDGE_API_KEY at OpenAI, vLLM or Ollama).
"""

from __future__ import annotations

from fallom import evals

ANSWERS = [
    evals.DatasetItem(input="What does fallom trace for each LLM call?",
                      output="fallom traces the model, latency, tokens and errors of each "
                             "LLM call."),
    evals.DatasetItem(input="Can a Python and a Node service share an A/B config?",
                      output="Yes: a Python and a Node service assign every session the same "
                             "variant of a shared config."),
    evals.DatasetItem(input="Where do traces go without an API key?",
                      output="Nowhere; it stays quiet."),
]


def main() -> None:
    evals.init()  # FALLOM_API_KEY, FALLOM_BASE_URL and the judge from the environment
    results = evals.evaluate(ANSWERS, metrics=["answer_relevancy", "completeness"],
                             name="quickstart answers")
    for result in results:
        print(f"{result.answer_relevancy:.2f}  {result.input}")


if __name__ == "__main__":
    main()
