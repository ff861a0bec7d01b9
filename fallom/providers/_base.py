"""What a provider module answers: its endpoints, and how to read a call.

Each provider module (``openai``, ``anthropic``, ``google``) builds one
:class:`Provider`; the shared wrapper in ``_call`` does the rest, sync,
async and streaming alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, Mapping, Optional, Tuple

import wrapt

from fallom.protocol import _names as attr
from fallom.providers._read import get

__all__ = ["Accumulator", "Endpoint", "ObjectProxy", "Provider", "request_attributes"]

if TYPE_CHECKING:
    ObjectProxy = wrapt.ObjectProxy[Any]
else:  # wrapt before 2.0 has no subscriptable proxy
    ObjectProxy = wrapt.ObjectProxy

Path = Tuple[str, ...]


class Accumulator:
    """Collects a stream's chunks into record fields."""

    def add(self, chunk: Any) -> bool:
        """Take one chunk; True when it carried content (for time to first token)."""
        raise NotImplementedError

    def hidden(self, chunk: Any) -> bool:
        """True for a chunk fallom asked for and the user did not (never shown)."""
        return False

    def fields(self) -> Dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Endpoint:
    """One traced SDK method."""

    operation: str  # gen_ai.operation.name: chat, text_completion, embeddings, ...
    method: str  # fallom.method, as the other Fallom SDKs name it
    request_keys: Tuple[str, ...]  # fallom.raw.request: the first may come positionally
    read: Callable[[Any], Dict[str, Any]]  # response -> record fields
    accumulator: Optional[Callable[[], Accumulator]] = None
    always_streams: bool = False  # generate_content_stream, messages.stream
    kind: str = "llm"

    def streams(self, kwargs: Mapping[str, Any]) -> bool:
        return self.always_streams or kwargs.get("stream") is True


@dataclass(frozen=True)
class Provider:
    """A provider's endpoints, keyed by attribute path from the client."""

    name: str
    endpoints: Mapping[Path, Endpoint]
    # (endpoint, kwargs, the SDK resource called) -> (kwargs to send, hide fallom's extra chunk)
    prepare_stream: Callable[[Endpoint, Dict[str, Any], Any], Tuple[Dict[str, Any], bool]] = (
        lambda endpoint, kwargs, resource: (kwargs, False))
    request_attributes: Callable[[Mapping[str, Any]], Dict[str, Any]] = (
        lambda kwargs: request_attributes(kwargs))
    prefixes: FrozenSet[Path] = field(default=frozenset())

    def __post_init__(self) -> None:
        prefixes = {path[:i] for path in self.endpoints for i in range(1, len(path))}
        object.__setattr__(self, "prefixes", frozenset(prefixes))


def request_attributes(kwargs: Mapping[str, Any], config: Any = None) -> Dict[str, Any]:
    """Sampling parameters under their gen_ai names, from kwargs or a config object."""
    def pick(*names: str) -> Any:
        for name in names:
            value = kwargs.get(name)
            if value is None and config is not None:
                value = get(config, name)
            if value is not None and not callable(value):
                return value
        return None

    return {
        attr.TEMPERATURE: pick("temperature"),
        attr.MAX_TOKENS: pick("max_tokens", "max_completion_tokens", "max_output_tokens"),
        attr.TOP_P: pick("top_p"),
    }
