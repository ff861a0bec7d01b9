"""Client proxies: ``session.wrap_openai(client)`` and friends.

The proxy passes for the client (``isinstance`` holds, every attribute is
the client's) and traces only the endpoint methods its provider names. It
never changes the client itself: the original stays untraced, and wrapping a
proxy again rebinds the underlying client, so no call is recorded twice.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple, TypeVar

import wrapt

from fallom.providers._base import ObjectProxy, Provider
from fallom.providers._call import Binding, traced_call

if TYPE_CHECKING:
    from fallom.tracing._session import SessionContext

__all__ = ["ClientProxy", "wrap_client"]

C = TypeVar("C")
_CLIENT_FACTORIES = ("with_options", "copy")


class ClientProxy(ObjectProxy):
    """A client or one of its resources (``client.chat``, ``client.chat.completions``)."""

    def __init__(self, wrapped: Any, binding: Binding, path: Tuple[str, ...] = ()) -> None:
        super().__init__(wrapped)
        self._self_binding = binding
        self._self_path = path
        self._self_cache: Dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_self_"):
            raise AttributeError(name)
        cached = self._self_cache.get(name)
        if cached is not None:
            return cached
        value = getattr(self.__wrapped__, name)
        binding, path = self._self_binding, (*self._self_path, name)
        endpoint = binding.provider.endpoints.get(path)
        traced: Any
        if endpoint is not None and callable(value):
            traced = wrapt.FunctionWrapper(
                value, functools.partial(_call_endpoint, binding, path, endpoint))
        elif path in binding.provider.prefixes:
            traced = ClientProxy(value, binding, path)
        elif not self._self_path and name in _CLIENT_FACTORIES and callable(value):
            traced = wrapt.FunctionWrapper(value, functools.partial(_rewrap, binding))
        else:
            return value
        self._self_cache[name] = traced
        return traced

    def __repr__(self) -> str:
        return repr(self.__wrapped__)


def _call_endpoint(binding: Binding, path: Tuple[str, ...], endpoint: Any, wrapped: Any,
                   instance: Any, args: Any, kwargs: Any) -> Any:
    return traced_call(binding, path, endpoint, wrapped, args, kwargs, instance)


def _rewrap(binding: Binding, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``client.with_options(...)`` returns a new client: traced the same way."""
    return ClientProxy(wrapped(*args, **kwargs), binding)


def wrap_client(client: C, provider: Provider, session: Optional[SessionContext],
                default_model: Optional[str] = None, *, check: bool = True) -> C:
    """A traced view of ``client`` for ``session``; a proxy is unwrapped first.

    Unless ``check`` is off, a client without the provider's first method
    (None, another provider's client) is refused here: wrapped, it would run
    untraced without a word. Only the first: providers share other names
    (Anthropic's client has ``completions.create`` too).
    """
    while isinstance(client, ClientProxy):
        client = client.__wrapped__
    first = next(iter(provider.endpoints))
    if check and not _has(client, first):
        raise TypeError(f"cannot trace {type(client).__name__!r} as a client of {provider.name}: "
                        f"it has no {'.'.join(first)}")
    return ClientProxy(client, Binding(provider, session, default_model))  # type: ignore[return-value]


def _has(client: Any, path: Tuple[str, ...]) -> bool:
    target = client
    for name in path:
        try:
            target = getattr(target, name)
        except Exception:  # AttributeError, or a property that fails
            return False
    return callable(target)
