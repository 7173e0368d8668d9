"""Deterministic CBOR against RFC 8949 Appendix A and the §4.2.1 ordering rules."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance import cbor
from appliance.errors import EncodingError

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "cbor_rfc8949_appendix_a.json").read_text("utf-8")
)


def build(v: Any) -> Any:
    if isinstance(v, list):
        return [build(x) for x in v]
    if isinstance(v, dict):
        if "int" in v:
            return int(v["int"])
        if "float" in v:
            return float(v["float"])
        if "bytes" in v:
            return bytes.fromhex(v["bytes"])
        if "tag" in v:
            return cbor2.CBORTag(v["tag"], build(v["value"]))
        if "map" in v:
            return {build(k): build(val) for k, val in v["map"]}
    return v


@pytest.mark.parametrize("case", VECTORS["encode"], ids=lambda c: c["hex"])
def test_appendix_a_encoding(case: dict[str, Any]) -> None:
    """Every deterministic Appendix A example encodes to exactly its bytes."""
    assert cbor.dumps(build(case["value"])).hex() == case["hex"]


@pytest.mark.parametrize("case", VECTORS["encode"], ids=lambda c: c["hex"])
def test_appendix_a_round_trip(case: dict[str, Any]) -> None:
    """Each example decodes and is accepted as deterministic."""
    raw = bytes.fromhex(case["hex"])
    if raw[0] in (0xC0, 0xC1):
        pytest.skip("cbor2 turns date tags into datetime objects; encoding is checked above")
    value = cbor.loads_deterministic(raw)
    want = build(case["value"])
    if isinstance(want, float) and math.isnan(want):
        assert math.isnan(value)
    else:
        assert value == want


@pytest.mark.parametrize("case", VECTORS["deterministic_order"], ids=lambda c: c["desc"][:30])
def test_map_keys_sorted_bytewise(case: dict[str, Any]) -> None:
    """Map keys sort by their encoded bytes (RFC 8949), not length-first (RFC 7049)."""
    assert cbor.dumps(build(case["value"])).hex() == case["hex"]


@pytest.mark.parametrize("case", VECTORS["not_deterministic"], ids=lambda c: c["desc"])
def test_non_deterministic_input_refused(case: dict[str, Any]) -> None:
    """Valid CBOR in a non-deterministic form is refused as a leaf."""
    raw = bytes.fromhex(case["hex"])
    cbor.loads(raw)  # it is valid CBOR
    with pytest.raises(EncodingError):
        cbor.loads_deterministic(raw)


def test_trailing_bytes_and_garbage_refused() -> None:
    """Garbage after an item, or truncated input, is an encoding error."""
    with pytest.raises(EncodingError):
        cbor.loads(b"\x01\x02")
    with pytest.raises(EncodingError):
        cbor.loads(b"\x62a")


def test_unsupported_type_refused() -> None:
    """Values with no deterministic encoding here (sets, objects) are refused, not guessed."""
    with pytest.raises(EncodingError):
        cbor.dumps({1, 2})


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5)
    ),
    max_leaves=30,
)


@given(json_like)
def test_text_keyed_values_match_cbor2_canonical(value: Any) -> None:
    """With text keys only, our encoding equals cbor2's canonical one and round-trips."""
    raw = cbor.dumps(value)
    assert raw == cbor2.dumps(value, canonical=True)
    assert cbor.loads_deterministic(raw) == value


@given(
    st.recursive(
        json_like | st.floats(allow_nan=False),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=30), kids),
        max_leaves=40,
    )
)
def test_fast_text_keyed_encoder_is_canonical(value: Any) -> None:
    """The entry encoder's fast path (maps re-ordered, then plain cbor2) gives exactly cbor2's
    canonical bytes, also for long and non-ASCII keys and when floats force the slow path."""
    assert cbor.dumps_text_keyed(value) == cbor2.dumps(value, canonical=True)
    if not any(isinstance(v, float) for v in _leaves(value)):
        assert cbor.dumps_text_keyed(value) == cbor.dumps(value)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]
