"""Reading records in tests."""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Mapping


def own_attributes(record: Mapping[str, Any]) -> Dict[str, Any]:
    """A record's attributes without the ``fallom.*`` ones every record carries."""
    return {k: v for k, v in record.get("attributes", {}).items() if not k.startswith("fallom.")}


def run_in_threads(work: Callable[[int], object], count: int) -> None:
    """``work(0)`` .. ``work(count - 1)``, each in a thread of its own; returns when all end."""
    threads = [threading.Thread(target=work, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
