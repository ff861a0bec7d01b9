"""Datasets: from Fallom (``GET /api/datasets/{key}``), from traces, or built by hand.

A stored dataset answers ``{"dataset": {"name"}, "version": {"version"},
"entries": [{"input", "output", "systemMessage", "metadata"}]}``, as the Fallom
cloud and ``fallom serve`` do; both references read it so.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import quote

from fallom.evals import _settings
from fallom.evals._http import RequestFailed, request_json
from fallom.evals._models import messages_for
from fallom.evals._report import say
from fallom.evals._types import DatasetItem, Golden, LLMTestCase, ModelCallable
from fallom.protocol._chat import last_turn
from fallom.protocol._wire import RecordView

__all__ = ["EvaluationDataset", "dataset_from_fallom", "dataset_from_traces", "fetch_dataset"]

_NOT_INITIALIZED = "Fallom evals not initialized. Call evals.init() first."
_FETCH_TIMEOUT_S = 30.0  # 0.2.7's


def fetch_dataset(key: str, version: Optional[int], api_key: Optional[str],
                  base_url: str) -> Dict[str, Any]:
    """The stored dataset ``key`` (its latest version, or ``version``), with its entries.

    Raises:
        ValueError: not found, or the key may not read it (0.2.7's messages).
        RequestFailed: Fallom gave no usable answer.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"a dataset key must be a non-empty string, got {key!r}")
    params = {"include_entries": "true"}
    if version is not None:
        params["version"] = str(version)
    try:
        data = request_json("GET", f"{base_url}/api/datasets/{quote(key, safe='')}",
                            what="Fallom", headers={"Authorization": f"Bearer {api_key}",
                                                   "Content-Type": "application/json"},
                            params=params, timeout=_FETCH_TIMEOUT_S, own_endpoint=True)
    except RequestFailed as exc:
        if exc.status == 404:
            raise ValueError(f"Dataset '{key}' not found") from None
        if exc.status in (401, 403):
            raise ValueError(f"Access denied to dataset '{key}'") from None
        raise
    return data if isinstance(data, dict) else {}


def _entries(data: Mapping[str, Any]) -> List[Dict[str, Any]]:
    entries = data.get("entries")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _system(entry: Mapping[str, Any]) -> Optional[str]:
    """An entry's system message, as the references name it (or in snake case)."""
    found = entry.get("systemMessage", entry.get("system_message"))
    return found if isinstance(found, str) else None


def _label(data: Mapping[str, Any], key: str) -> tuple[str, Any]:
    """The dataset's name and version number, for the line that says what was loaded."""
    dataset, version = data.get("dataset"), data.get("version")
    name = dataset.get("name") if isinstance(dataset, dict) else None
    number = version.get("version") if isinstance(version, dict) else None
    return (name or key), number


def dataset_from_fallom(dataset_key: str, version: Optional[int] = None, *,
                        _api_key: Optional[str] = None, _base_url: Optional[str] = None,
                        _initialized: bool = False) -> List[DatasetItem]:
    """Fetch a dataset stored in Fallom, as items to evaluate.

    Args:
        dataset_key: its key (``"customer-support-qa"``).
        version: the version to fetch; None: the latest.
        _api_key: 0.2.7's internal override of the key ``init`` set.
        _base_url: 0.2.7's internal override of the base URL ``init`` set.
        _initialized: 0.2.7's internal override of whether ``init`` was called.

    Returns:
        One :class:`DatasetItem` per entry, in the dataset's order.

    Raises:
        RuntimeError: ``init`` was not called.
        ValueError: the dataset is not found, or the key may not read it.
    """
    current = _settings.config()
    if not (_initialized or current.initialized):
        raise RuntimeError(_NOT_INITIALIZED)
    data = fetch_dataset(dataset_key, version, _api_key or current.api_key,
                         _base_url or current.base_url)
    items = [DatasetItem(input=str(e.get("input") or ""), output=str(e.get("output") or ""),
                         system_message=_system(e), metadata=e.get("metadata"))
             for e in _entries(data)]
    name, number = _label(data, dataset_key)
    say(f"✓ Loaded dataset '{name}' (version {number or 'latest'}) with {len(items)} entries")
    return items


def dataset_from_traces(traces: List[Dict[str, Any]]) -> List[DatasetItem]:
    """Items from LLM trace records: the last user message, the answer, the system message.

    Reads 0.2.x's ``gen_ai.prompt.N.role`` / ``.content`` and
    ``gen_ai.completion.0.content`` attributes, and this SDK's records (as
    ``fallom.testing.capture_spans`` or ``fallom traces`` give them).

    Args:
        traces: trace records, each with its ``attributes``.

    Returns:
        One item per record that has both an input and an output; others are skipped.
    """
    items = []
    for trace in traces:
        attrs = trace.get("attributes") if isinstance(trace, Mapping) else None
        if not isinstance(attrs, Mapping) or not attrs:
            continue
        found = _from_indexed(attrs) if "gen_ai.prompt.0.role" in attrs else _from_view(trace)
        if found is not None:
            items.append(found)
    return items


def _from_indexed(attrs: Mapping[str, Any]) -> Optional[DatasetItem]:
    """0.2.x's attributes: the last user message of ``gen_ai.prompt.N``."""
    messages = []
    for index in range(100):
        role = attrs.get(f"gen_ai.prompt.{index}.role")
        if role is None:
            break
        messages.append({"role": role, "content": attrs.get(f"gen_ai.prompt.{index}.content")})
    return _item(messages, attrs.get("gen_ai.completion.0.content"))


def _from_view(record: Mapping[str, Any]) -> Optional[DatasetItem]:
    """This SDK's record: the provider request's messages and the response's text."""
    view = RecordView(record)
    messages = view.input
    return _item(messages if isinstance(messages, list) else [], view.output)


def _item(messages: List[Any], output: Any) -> Optional[DatasetItem]:
    input_text, system = last_turn(messages)
    if not input_text or not isinstance(output, str) or not output:
        return None
    return DatasetItem(input=input_text, output=output, system_message=system)


class EvaluationDataset:
    """Goldens pulled from Fallom (or added), and the test cases your pipeline made of them.

    The workflow: ``pull`` a dataset, run your pipeline on each golden
    (``generate_test_cases``, or ``add_test_case`` yourself), then
    ``evals.evaluate(test_cases=dataset.test_cases)``.
    """

    def __init__(self) -> None:
        self._goldens: List[Golden] = []
        self._test_cases: List[LLMTestCase] = []
        self._dataset_key: Optional[str] = None
        self._dataset_name: Optional[str] = None
        self._version: Optional[int] = None

    @property
    def goldens(self) -> List[Golden]:
        """The golden records: inputs with their expected outputs."""
        return self._goldens

    @property
    def test_cases(self) -> List[LLMTestCase]:
        """The test cases: inputs with your pipeline's actual outputs."""
        return self._test_cases

    @property
    def dataset_key(self) -> Optional[str]:
        """The key of the dataset pulled from Fallom, if any."""
        return self._dataset_key

    def pull(self, alias: str, version: Optional[int] = None) -> EvaluationDataset:
        """Replace the goldens with a dataset stored in Fallom.

        Args:
            alias: the dataset's key.
            version: the version to pull; None: the latest.

        Returns:
            This dataset, for chaining.

        Raises:
            RuntimeError: ``evals.init`` was not called.
            ValueError: the dataset is not found, or the key may not read it.
        """
        current = _settings.config()
        if not current.initialized:
            raise RuntimeError(_NOT_INITIALIZED)
        data = fetch_dataset(alias, version, current.api_key, current.base_url)
        self._dataset_key = alias
        self._dataset_name, self._version = _label(data, alias)
        self._goldens = [Golden(input=str(e.get("input") or ""), expected_output=e.get("output"),
                                system_message=_system(e), metadata=e.get("metadata"))
                         for e in _entries(data)]
        say(f"✓ Pulled dataset '{self._dataset_name}' (version {self._version}) with "
              f"{len(self._goldens)} goldens")
        return self

    def add_golden(self, golden: Golden) -> EvaluationDataset:
        """Add one golden record.

        Args:
            golden: the record.

        Returns:
            This dataset, for chaining.
        """
        self._goldens.append(golden)
        return self

    def add_goldens(self, goldens: List[Golden]) -> EvaluationDataset:
        """Add golden records.

        Args:
            goldens: the records, in order.

        Returns:
            This dataset, for chaining.
        """
        self._goldens.extend(goldens)
        return self

    def add_test_case(self, test_case: LLMTestCase) -> EvaluationDataset:
        """Add one test case.

        Args:
            test_case: an input with your pipeline's output.

        Returns:
            This dataset, for chaining.
        """
        self._test_cases.append(test_case)
        return self

    def add_test_cases(self, test_cases: List[LLMTestCase]) -> EvaluationDataset:
        """Add test cases.

        Args:
            test_cases: inputs with your pipeline's outputs, in order.

        Returns:
            This dataset, for chaining.
        """
        self._test_cases.extend(test_cases)
        return self

    def generate_test_cases(self, llm_app: ModelCallable,
                            include_context: bool = False) -> EvaluationDataset:
        """Run your pipeline on every golden, one after another, adding a test case each.

        Args:
            llm_app: takes the messages (system message, then the input) and returns
                ``{"content": str, "context"?: [str]}``; what it raises propagates.
            include_context: take each test case's context from the answer's
                ``context`` rather than the golden's.

        Returns:
            This dataset, for chaining.
        """
        total = len(self._goldens)
        say(f"Generating test cases for {total} goldens...")
        for number, golden in enumerate(self._goldens, 1):
            response = llm_app(messages_for(golden.system_message, golden.input))
            self._test_cases.append(LLMTestCase(
                input=golden.input, actual_output=response.get("content", ""),
                expected_output=golden.expected_output, system_message=golden.system_message,
                context=response.get("context") if include_context else golden.context,
                metadata=golden.metadata))
            say(f"  [{number}/{total}] Generated output for: {golden.input[:50]}...")
        say(f"✓ Generated {len(self._test_cases)} test cases")
        return self

    def clear_test_cases(self) -> EvaluationDataset:
        """Drop every test case, to run the goldens through another pipeline.

        Returns:
            This dataset, for chaining.
        """
        self._test_cases = []
        return self

    def __len__(self) -> int:
        return len(self._goldens)

    def __repr__(self) -> str:
        return (f"EvaluationDataset(goldens={len(self._goldens)}, "
                f"test_cases={len(self._test_cases)}, key={self._dataset_key})")
