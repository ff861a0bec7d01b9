"""Assignment: bit-exact with an independent implementation, every operator."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any, List, Optional

import pytest

from fallom._assign import ConfigError, bucket, choose, js_object_values, parse_config


def reference(session_id: str, weights: List[float], salt: Optional[str] = None) -> int:
    """Written from DESIGN §3 alone, independently of fallom._assign."""
    seed = (salt + ":" + session_id) if salt else session_id
    point = int(hashlib.md5(seed.encode()).hexdigest()[:8], 16) % 1000000
    running = 0.0
    for i, w in enumerate(weights):
        running += w * 10000
        if running > point:
            return i
    return len(weights) - 1


WEIGHTS = [[50, 50], [10, 20, 70], [33.3, 33.3, 33.4], [1, 99], [100], [25, 25, 25, 25]]


@pytest.mark.parametrize("weights", WEIGHTS)
def test_10000_sessions_match_the_reference(weights: List[float]) -> None:
    config = parse_config({"key": "k", "version": 1,
                           "variants": [{"model": f"m{i}", "weight": w}
                                        for i, w in enumerate(weights)]})
    rng = random.Random(7)
    for n in range(10_000):
        sid = f"session-{n}-{rng.random()}"
        assert choose(config, sid).model == f"m{reference(sid, weights)}", sid


def test_known_buckets() -> None:
    # Fixed points (md5 -> first 4 bytes, big-endian -> mod 1e6): changing any of
    # these breaks agreement with every other Fallom SDK.
    assert [bucket(s) for s in ["s-1", "user-42", "", "😀"]] == [527682, 970887, 706393, 834243]
    assert bucket("s-1", "exp") == 304014


def test_salt_changes_the_bucket() -> None:
    config = parse_config({"key": "k", "version": 1, "salt": "exp-7", "variants": [
        {"model": "a", "weight": 50}, {"model": "b", "weight": 50}]})
    for n in range(2_000):
        sid = f"s{n}"
        assert choose(config, sid).model == "ab"[reference(sid, [50, 50], "exp-7")]


def test_object_variants_follow_javascript_object_values_order() -> None:
    raw = json.loads('{"b": {"model": "B", "weight": 10}, "10": {"model": "TEN", "weight": 10},'
                     ' "2": {"model": "TWO", "weight": 10}, "a": {"model": "A", "weight": 70}}')
    assert [v["model"] for v in js_object_values(raw)] == ["TWO", "TEN", "B", "A"]
    config = parse_config({"key": "k", "version": 1, "variants": raw})
    assert [v.model for v in config.variants] == ["TWO", "TEN", "B", "A"]
    for n in range(2_000):
        sid = f"o{n}"
        assert choose(config, sid).model == ["TWO", "TEN", "B", "A"][
            reference(sid, [10, 10, 10, 70])]


def targeted(rules: Any = None, individual: Any = None, enabled: bool = True) -> Any:
    return parse_config({"key": "k", "version": 1,
                         "variants": [{"model": "base", "weight": 100},
                                      {"model": "special", "weight": 0}],
                         "targeting": {"enabled": enabled, "individualTargets": individual or [],
                                       "rules": rules or []}})


def rule(field: str, operator: str, value: Any) -> Any:
    return [{"conditions": [{"field": field, "operator": operator, "value": value}],
             "variantIndex": 1}]


@pytest.mark.parametrize(("operator", "expected", "actual", "hit"), [
    ("eq", "pro", "pro", True), ("eq", "pro", "free", False), ("eq", 5, "5", False),
    ("eq", 5, 5.0, True), ("eq", True, 1, False),
    ("neq", "pro", "free", True), ("neq", "pro", "pro", False),
    ("in", ["a", "b"], "b", True), ("in", ["a", "b"], "c", False), ("in", [1, 2], "1", False),
    ("nin", ["a", "b"], "c", True), ("nin", ["a"], "a", False),
    ("contains", "corp", "acme-corp-eu", True), ("contains", "corp", "acme", False),
    ("startsWith", "acme", "acme-corp", True), ("startsWith", "corp", "acme-corp", False),
    ("endsWith", ".edu", "mit.edu", True), ("endsWith", ".edu", "mit.com", False),
    ("contains", "5", 12345, False), ("regex", ".*", "anything", False),
])
def test_every_operator(operator: str, expected: Any, actual: Any, hit: bool) -> None:
    config = targeted(rules=rule("plan", operator, expected))
    model = choose(config, "s", context={"plan": actual}).model
    assert model == ("special" if hit else "base")


def test_absent_fields_fail_whatever_the_operator() -> None:
    for operator in ("eq", "neq", "nin", "in"):
        assert choose(targeted(rules=rule("plan", operator, "x")), "s").model == "base"


def test_customer_targets_and_rule_order() -> None:
    config = targeted(individual=[{"field": "customerId", "value": "vip", "variantIndex": 1}])
    assert choose(config, "s", customer_id="vip").model == "special"
    assert choose(config, "s", customer_id="other").model == "base"
    assert choose(targeted(individual=[{"field": "customerId", "value": "vip",
                                        "variantIndex": 1}], enabled=False),
                  "s", customer_id="vip").model == "base"


def test_conditions_are_anded_and_bad_indexes_ignored() -> None:
    both = [{"conditions": [{"field": "a", "operator": "eq", "value": 1},
                            {"field": "b", "operator": "eq", "value": 2}], "variantIndex": 1}]
    assert choose(targeted(rules=both), "s", context={"a": 1, "b": 2}).model == "special"
    assert choose(targeted(rules=both), "s", context={"a": 1, "b": 3}).model == "base"
    out_of_range = [{"conditions": [{"field": "a", "operator": "eq", "value": 1}],
                     "variantIndex": 7}]
    config = targeted(rules=out_of_range)
    assert choose(config, "s", context={"a": 1}).model == "base"
    assert any("out of range" in w for w in config.warnings)


def test_tolerated_oddities_warn() -> None:
    config = parse_config({"key": "k", "version": 2, "variants": [
        {"model": "a", "weight": 30}, {"model": "b", "weight": -10}, {"model": "c", "weight": 20}]})
    assert any("negative" in w for w in config.warnings)
    assert any("add up to 40" in w for w in config.warnings)
    assert choose(config, "x").model in ("a", "c")


@pytest.mark.parametrize("raw", [
    {"key": "k", "version": 1},
    {"key": "k", "version": 1, "variants": []},
    {"key": "k", "version": 1, "variants": [{"model": "a", "weight": "50"}]},
    {"key": "k", "version": 1, "variants": [{"model": 5, "weight": 50}]},
    {"key": "k", "version": 1, "variants": [{"model": "a", "weight": float("nan")}]},
    {"version": 1, "variants": [{"model": "a", "weight": 100}]},
    ["not", "an", "object"],
])
def test_unusable_configs_are_rejected(raw: Any) -> None:
    with pytest.raises(ConfigError):
        parse_config(raw)
