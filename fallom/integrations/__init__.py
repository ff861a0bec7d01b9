"""Framework integrations: LangChain, any model object, the OpenTelemetry SDK.

Each is imported only when used, since it may import its framework. They may
import ``fallom.providers``, ``fallom.tracing``, ``fallom.protocol`` and
``fallom.infra``.
"""

__all__: list[str] = []
