"""The Fallom wire protocol: what a record is and how values become one.

Owns the v2 record (``_wire``: field names, the view servers and tools read
it through), attribute names (``_names``), JSON encoding (``_json``), turning
any Python value into a bounded JSON value (``_capture``), the record's
encoded fields (``_fields``) and the OpenTelemetry GenAI conventions that map
a foreign span onto a record (``_genai``). It may import ``fallom.infra``
only: the SDK, the exporters and ``fallom serve`` all speak through it.
See docs/design.md §3.
"""
