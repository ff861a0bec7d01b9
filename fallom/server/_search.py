"""Full-text search of spans: the words of each span kept in a text index, and the
listing's ``q`` answered from it.

Each span's words (its name, model, error, input, output and attribute values: the
strings, not the JSON keys or punctuation) are made here, in Python, the same way for
both engines: Unicode-normalised, accents dropped, case folded, each word once, at most
32 KB a span. SQLite keeps them in an FTS5 table (``span_fts``, its text in
``span_search``); PostgreSQL as a ``tsvector`` of those very words with a GIN index. A
query is words too, each matched as a prefix, all of them required; what a person types
is never handed to FTS5's MATCH or to ``tsquery`` as syntax: each word is quoted.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any, Dict, Iterable, List, Mapping, Sequence

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    MetaData,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSQUERY

from fallom.protocol._wire import RecordView
from fallom.server._tables import chunks

__all__ = ["COMMON", "MATCHED", "index_spans", "insert_words", "matched_ids",
           "matched_traces", "query_words",
           "sample_matches", "span_words", "trace_matches", "unindex_traces"]

TEXT_CHARS = 32 * 1024  # a span's words kept, at most: a huge output does not bloat the index
_WORD_CHARS = 64  # a longer word (a base64 blob...) is kept as its prefix
_QUERY_WORDS = 16  # words of a query used; more only narrow what the first ones found
SAMPLE = 2000  # the spans indexed last, whose share of matches says whether a word is common
COMMON = 20  # matches among them from which the listing reads traces in order, each checked
MATCHED = 5000  # PostgreSQL: matching traces read first, at most (more: read as if common)
_WORD = re.compile(r"[^\W_]+")  # letters and digits, as FTS5's unicode61 tokenizer splits
_RAW = "fallom.raw."  # the SDK's raw request/response: read as input/output, not twice

_meta = MetaData()
span_search = Table("span_search", _meta, Column("id", BigInteger, primary_key=True),
                    Column("trace_id", Text, nullable=False), Column("body", Text))
span_fts = Table("span_fts", _meta, Column("rowid", BigInteger), Column("body", Text))


def words(value: str) -> List[str]:
    """The words of ``value`` as the index keeps them: accents dropped, case folded."""
    if value.isascii():  # most text: nothing to normalise (and ~10 times quicker)
        plain = value.lower()
    else:
        folded = unicodedata.normalize("NFKD", value).casefold()
        plain = "".join(char for char in folded if not unicodedata.combining(char))
    return [word[:_WORD_CHARS] for word in _WORD.findall(plain)]


def query_words(query: str) -> List[str]:
    """A query's words (each once, at most 16); none: no filter."""
    return list(dict.fromkeys(words(query[:4 * TEXT_CHARS])))[:_QUERY_WORDS]


def _strings(value: Any) -> Iterable[str]:
    """The strings and numbers in a JSON value, depth first; keys left out."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            yield str(item)
        elif isinstance(item, Mapping):
            pending.extend(reversed(list(item.values())))
        elif isinstance(item, (list, tuple)):
            pending.extend(reversed(item))


def _sources(row: Mapping[str, Any]) -> Iterable[Any]:
    """What of a stored span is searched: only what its record carries (no input or
    output when it was sent with capture off)."""
    yield row.get("name"), row.get("model"), row.get("error_message")
    try:
        record = json.loads(row["record"])
    except (ValueError, RecursionError):
        return
    if not isinstance(record, dict):
        return
    view = RecordView(record)
    try:
        yield view.input if view.has_input else None
        yield view.output if view.has_output else None
    except RecursionError:  # stored before ingest refused such nesting
        pass
    yield [value for key, value in view.attributes.items() if not str(key).startswith(_RAW)]


def span_words(row: Mapping[str, Any]) -> List[str]:
    """A span's words (a ``spans`` row with its record), each once, at most 32 KB of them."""
    kept: Dict[str, None] = {}
    size = 0
    for source in _sources(row):
        for value in _strings(source):
            for word in words(value[:TEXT_CHARS]):
                if word not in kept:
                    size += len(word) + 1
                    if size > TEXT_CHARS:
                        return list(kept)
                    kept[word] = None
    return list(kept)


# -- keeping the index ---------------------------------------------------------------------
def _postgres(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def index_spans(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Index spans just stored (each once: the caller passes only those it inserted)."""
    made = [{"trace_id": row["trace_id"], "words": found} for row in rows
            if (found := span_words(row))]
    insert_words(connection, made)


def insert_words(connection: Connection, made: Sequence[Mapping[str, Any]]) -> None:
    """Rows of ``{"trace_id", "words"}`` into the index (the migration fills it so too)."""
    if not made:
        return
    if _postgres(connection):
        connection.execute(text(
            "INSERT INTO span_search (trace_id, body) VALUES "
            "(:trace_id, array_to_tsvector(:words))").bindparams(
                bindparam("words", type_=ARRAY(Text))), list(made))
    else:  # span_fts follows by trigger
        connection.execute(span_search.insert(), [
            {"trace_id": row["trace_id"], "body": " ".join(row["words"])} for row in made])


def unindex_traces(connection: Connection, trace_ids: Sequence[str]) -> None:
    """Forget the words of these traces' spans (retention deleted them)."""
    for part in chunks(list(trace_ids)):
        connection.execute(delete(span_search).where(span_search.c.trace_id.in_(part)))


# -- reading it ----------------------------------------------------------------------------
def _fts_query(found: Sequence[str]) -> str:
    """FTS5: each word quoted (a word has no quote in it), a prefix; all required."""
    return " ".join(f'"{word}"*' for word in found)


def _ts_query(found: Sequence[str]) -> ColumnElement[Any]:
    """PostgreSQL: each word a quoted lexeme, a prefix; all required."""
    return cast(literal(" & ".join(f"'{word}':*" for word in found), Text), TSQUERY)


def _has_words(postgres: bool, body: ColumnElement[Any],
               found: Sequence[str]) -> ColumnElement[bool]:
    """One span's words (``body``) hold each of ``found`` as a prefix, read row by row (no
    index): SQLite's body is the words, one space between each."""
    if postgres:
        return body.op("@@")(_ts_query(found))
    spaced = literal(" ", Text) + body
    return and_(*(func.instr(spaced, f" {word}") > 0 for word in found))


def _matching(postgres: bool, found: Sequence[str]) -> Select[Any]:
    """The spans (``span_search`` rows) whose words hold each of ``found`` as a prefix,
    found by the text index."""
    s = span_search
    if postgres:
        return select(s.c.trace_id).where(s.c.body.op("@@")(_ts_query(found)))
    return (select(s.c.trace_id).select_from(span_fts.join(s, s.c.id == span_fts.c.rowid))
            .where(span_fts.c.body.match(_fts_query(found))))


def sample_matches(postgres: bool, found: Sequence[str]) -> Select[Any]:
    """How many of the 2,000 spans indexed last match: a common word's share, read in a
    millisecond. (Counting the index's matches is not: a prefix of a word in most spans,
    FTS5 and GIN alike, gathers all of them first.)"""
    recent = select(span_search.c.body).order_by(span_search.c.id.desc()).limit(SAMPLE) \
        .subquery()
    return select(func.count()).select_from(recent).where(
        _has_words(postgres, recent.c.body, found))


def matched_ids(found: Sequence[str], cap: int = MATCHED) -> Select[Any]:
    """PostgreSQL: the traces of the matching spans, at most ``cap``: read first (by the GIN
    index) and given to the listing as ids, for words in few spans."""
    return select(span_search.c.trace_id).distinct() \
        .where(span_search.c.body.op("@@")(_ts_query(found))).limit(cap)


def matched_traces(postgres: bool, trace_id: ColumnElement[Any],
                   found: Sequence[str]) -> ColumnElement[bool]:
    """``trace_id`` is among the matching spans' traces, read from the text index: for
    words in few spans."""
    return trace_id.in_(_matching(postgres, found))


def trace_matches(postgres: bool, trace_id: ColumnElement[Any],
                  found: Sequence[str]) -> ColumnElement[bool]:
    """Some span of the trace ``trace_id`` matches, its spans read by ``span_search_trace``
    and checked one by one: for common words, as the listing reads traces in order and
    stops at a page's worth."""
    probe = select(span_search.c.id).where(span_search.c.trace_id == trace_id,
                                           _has_words(postgres, span_search.c.body, found))
    if postgres:  # OFFSET 0 keeps it per trace: not made one join over every match
        probe = probe.offset(0)
    return exists(probe)
