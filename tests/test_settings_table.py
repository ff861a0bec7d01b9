"""One declaration per setting: init()'s parameters and the reference derive from it.

Run this file as a script to rewrite the table in docs/configuration.md after
changing a setting: ``python tests/test_settings_table.py``.
"""

from __future__ import annotations

import inspect
import pathlib
import re

import pytest

import fallom
from fallom.infra._config import SETTINGS, resolve_settings, settings_table

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
START = "<!-- settings table: generated from fallom/infra/_config.py; do not edit by hand -->\n"
END = "<!-- end of settings table -->"


def _documented() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index(START) + len(START):text.index(END)]


def test_init_takes_exactly_the_declared_settings_in_their_order() -> None:
    parameters = inspect.signature(fallom.init).parameters
    assert list(parameters) == [setting.name for setting in SETTINGS]
    assert all(p.default is None for p in parameters.values())


def test_help_on_init_documents_every_setting() -> None:
    doc = fallom.init.__doc__ or ""
    for setting in SETTINGS:  # indented as the docstring is (3.13 strips it when compiling)
        assert re.search(rf"^ *{setting.name}: \S", doc, re.M), setting.name


def test_the_reference_in_the_docs_is_the_declaration() -> None:
    assert _documented() == settings_table(), "run: python tests/test_settings_table.py"


def test_the_reference_has_one_row_per_setting() -> None:
    rows = [line for line in _documented().splitlines()[2:] if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [s.name for s in SETTINGS]


# a value each check refuses, by the setting's documented type
_WRONG = {"bool": "maybe", "URL": "ftp://nowhere", "str": "a key with spaces"}


@pytest.mark.parametrize("setting", [s for s in SETTINGS if (s.metadata["env"] or "")
                                     .startswith("FALLOM_")], ids=lambda s: s.name)
def test_each_declared_variable_is_read_and_checked(setting: object) -> None:
    meta = setting.metadata  # type: ignore[attr-defined]
    kind = meta["check"].text.split()[0]
    wrong = _WRONG.get(kind, "-5" if kind in ("int", "float") else None)
    if wrong is None or setting.name == "config_key":  # type: ignore[attr-defined]
        pytest.skip(f"{kind}: every non-blank value is one")
    with pytest.raises(ValueError, match=meta["env"]):
        resolve_settings({}, {meta["env"]: wrong})


def _write() -> None:
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(START)
    DOC.write_text(head + START + settings_table() + END + rest.split(END, 1)[1],
                   encoding="utf-8")


if __name__ == "__main__":
    _write()
