"""Assignment: bit-exact with an independent implementation, every operator."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any, List, Optional

import pytest

from fallom.experiments._assign import ConfigError, bucket, choose, js_object_values, parse_config


def reference(session_id: str, weights: List[float], salt: Optional[str] = None) -> int:
    """Written from docs/design.md §6.2 alone, independently of fallom.experiments._assign."""
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
    {"key": "k", "version": 1, "variants": [{"model": "a", "weight": "fifty"}]},
    {"key": "k", "version": 1, "variants": [{"model": "a", "weight": None}]},
    {"key": "k", "version": 1, "variants": [{"model": "a"}]},
    {"key": "k", "version": 1, "variants": [{"model": "a", "weight": True}]},
    {"key": "k", "version": 1, "variants": {"x": "not an object"}},
    {"key": "k", "version": 1, "variants": [{"model": "a", "weight": 100}], "targeting": []},
    {"key": "k", "version": 1, "variants": [{"model": "a", "weight": 100}],
     "targeting": {"individualTargets": ["oops"]}},
    {"key": "k", "version": 1, "variants": [{"model": "a", "weight": 100}],
     "targeting": {"rules": [{"conditions": "x"}]}},
    {"key": "k", "version": 1, "variants": [{"model": "a", "weight": 100}],
     "targeting": {"rules": [{"conditions": [None]}]}},
    {"key": "k", "version": 1, "variants": [{"model": 5, "weight": 50}]},
    {"key": "k", "version": 1, "variants": [{"model": "a", "weight": float("nan")}]},
    {"version": 1, "variants": [{"model": "a", "weight": 100}]},
    ["not", "an", "object"],
])
def test_unusable_configs_are_rejected(raw: Any) -> None:
    with pytest.raises(ConfigError):
        parse_config(raw)


# -- the cases where the earlier rules differed from both references (issue 13) ----------
def config_with(targeting: Any) -> Any:
    return parse_config({"key": "k", "version": 1, "targeting": targeting,
                         "variants": [{"model": "base", "weight": 100},
                                      {"model": "special", "weight": 0}]})


def test_targeting_without_enabled_is_on() -> None:
    config = config_with({"rules": rule("plan", "eq", "pro")})
    assert choose(config, "s", context={"plan": "pro"}).model == "special"
    assert choose(config_with({"enabled": None, "rules": rule("plan", "eq", "pro")}), "s",
                  context={"plan": "pro"}).model == "special"
    assert choose(config_with({"enabled": 0, "rules": rule("plan", "eq", "pro")}), "s",
                  context={"plan": "pro"}).model == "special"  # only exactly false turns it off


def test_a_rule_without_conditions_matches() -> None:
    for rules in ([{"conditions": [], "variantIndex": 1}], [{"variantIndex": 1}]):
        assert choose(config_with({"rules": rules}), "anyone").model == "special"


def test_customer_id_joins_the_context_only_when_non_empty() -> None:
    config = config_with({"rules": rule("customerId", "eq", "from-context")})
    assert choose(config, "s", customer_id="", context={"customerId": "from-context"}
                  ).model == "special"
    assert choose(config, "s", customer_id=None, context={"customerId": "from-context"}
                  ).model == "special"
    assert choose(config, "s", customer_id="u-1", context={"customerId": "from-context"}
                  ).model == "base"  # a non-empty customer id wins over the context


def test_an_empty_or_odd_session_id_hashes_like_any_string() -> None:
    config = parse_config({"key": "k", "version": 1, "variants": [
        {"model": "a", "weight": 50}, {"model": "b", "weight": 50}]})
    assert choose(config, "").model == "ab"[reference("", [50, 50])]
    # a lone surrogate is hashed as JavaScript encodes it (U+FFFD); 0.2.7 raises
    assert bucket("x\ud800y") == bucket("x\ufffdy")


def test_individual_targets_on_absent_and_null_fields() -> None:
    without_value = config_with({"individualTargets": [{"field": "plan", "variantIndex": 1}]})
    assert choose(without_value, "s").model == "special"  # both references: absent == absent
    null_value = config_with({"individualTargets": [{"field": "plan", "value": None,
                                                     "variantIndex": 1}]})
    assert choose(null_value, "s", context={"plan": None}).model == "special"
    assert choose(null_value, "s").model == "base"  # as TypeScript: absent is not null


def test_the_first_match_decides_even_with_an_unusable_index() -> None:
    config = config_with({
        "individualTargets": [{"field": "plan", "value": "pro", "variantIndex": 9}],
        "rules": [{"conditions": [], "variantIndex": 1}]})
    # both references stop at the first match; index 9 is unusable, so the bucket decides
    assert choose(config, "s", context={"plan": "pro"}).model == "base"
    assert choose(config, "s", context={"plan": "free"}).model == "special"


@pytest.mark.parametrize(("index", "model"), [
    (1, "special"), (1.0, "special"), (-1, "base"), (2, "base"), ("1", "base"), (True, "base"),
    (None, "base"), (1.5, "base")])
def test_variant_indexes_in_and_out_of_range(index: Any, model: str) -> None:
    config = config_with({"rules": [{"conditions": [], "variantIndex": index}]})
    assert choose(config, "s").model == model


@pytest.mark.parametrize(("operator", "expected", "actual", "hit"), [
    ("in", "pro", "pro", False), ("nin", "pro", "x", False),  # not a list: never holds
    ("contains", "b", ["a", "b"], True), ("contains", "c", ["a", "b"], False),
    ("contains", 5, "a5", False), ("startsWith", "a", ["a"], False),
    ("contains", "1", 1, False), ("eq", None, None, True), ("neq", "x", None, True),
    ("eq", [1, 2], [1, 2], True), ("in", [True], 1, False),
])
def test_operators_on_odd_types(operator: str, expected: Any, actual: Any, hit: bool) -> None:
    config = config_with({"rules": rule("f", operator, expected)})
    assert choose(config, "s", context={"f": actual}).model == ("special" if hit else "base")


def test_inherited_names_are_absent() -> None:
    config = config_with({"rules": rule("toString", "neq", "x")})
    assert choose(config, "s").model == "base"


@pytest.mark.parametrize(("weights", "numbers"), [
    (["50", "50"], [50, 50]), ([" 25.5 ", "1e1"], [25.5, 10]), ([0, 0], [0, 0]),
    ([0.5, 99.5], [0.5, 99.5]), ([10, 10], [10, 10]), ([70, 70], [70, 70])])
def test_numeric_weights_of_any_sum_and_numeral_strings(weights: List[Any],
                                                        numbers: List[float]) -> None:
    config = parse_config({"key": "k", "version": 1, "variants": [
        {"model": f"m{i}", "weight": w} for i, w in enumerate(weights)]})
    for n in range(2_000):
        assert choose(config, f"w{n}").model == f"m{reference(f'w{n}', numbers)}"
