"""Framework integrations (LangChain, LiteLLM), each imported only when used."""

__all__: list[str] = []
