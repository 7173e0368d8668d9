"""Deterministic CBOR (RFC 8949 §4.2.1, core deterministic encoding) and strict decoding.

cbor2's ``canonical=True`` orders map keys length-first (the older RFC 7049 rule), which
differs from RFC 8949's bytewise order as soon as keys mix types, so the encoder is ours.
Decoding uses cbor2; ``loads_deterministic`` refuses any input that is not already in the
deterministic form, so two encodings of one value can never both be accepted as a leaf.
"""

from __future__ import annotations

import io
import math
import struct
from typing import Any

import cbor2

from .errors import EncodingError

_MAX_NESTING = 64


def _head(major: int, value: int) -> bytes:
    mt = major << 5
    if value < 24:
        return bytes([mt | value])
    if value < 0x100:
        return bytes([mt | 24, value])
    if value < 0x10000:
        return bytes([mt | 25]) + value.to_bytes(2, "big")
    if value < 0x100000000:
        return bytes([mt | 26]) + value.to_bytes(4, "big")
    return bytes([mt | 27]) + value.to_bytes(8, "big")


def _float(value: float) -> bytes:
    # Preferred serialisation: the shortest of half/single/double that keeps the value.
    if math.isnan(value):
        return b"\xf9\x7e\x00"
    for fmt, head in (("e", 0xF9), ("f", 0xFA)):
        try:
            packed = struct.pack(">" + fmt, value)
        except OverflowError:
            continue
        if struct.unpack(">" + fmt, packed)[0] == value:
            return bytes([head]) + packed
    return b"\xfb" + struct.pack(">d", value)


def _encode(obj: Any, out: list[bytes], depth: int) -> None:
    if depth > _MAX_NESTING:
        raise EncodingError("CBOR value nested too deeply")
    if obj is None:
        out.append(b"\xf6")
    elif obj is True:
        out.append(b"\xf5")
    elif obj is False:
        out.append(b"\xf4")
    elif isinstance(obj, int):
        if 0 <= obj < 2**64:
            out.append(_head(0, obj))
        elif -(2**64) <= obj < 0:
            out.append(_head(1, -1 - obj))
        else:
            tag, mag = (2, obj) if obj >= 0 else (3, -1 - obj)
            raw = mag.to_bytes((mag.bit_length() + 7) // 8, "big")
            out.append(_head(6, tag) + _head(2, len(raw)) + raw)
    elif isinstance(obj, float):
        out.append(_float(obj))
    elif isinstance(obj, str):
        raw = obj.encode("utf-8")
        out.append(_head(3, len(raw)) + raw)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        raw = bytes(obj)
        out.append(_head(2, len(raw)) + raw)
    elif isinstance(obj, (list, tuple)):
        out.append(_head(4, len(obj)))
        for item in obj:
            _encode(item, out, depth + 1)
    elif isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            kb: list[bytes] = []
            _encode(key, kb, depth + 1)
            items.append((b"".join(kb), value))
        items.sort(key=lambda kv: kv[0])
        for i in range(1, len(items)):
            if items[i][0] == items[i - 1][0]:
                raise EncodingError("duplicate map key in CBOR value")
        out.append(_head(5, len(items)))
        for kb_, value in items:
            out.append(kb_)
            _encode(value, out, depth + 1)
    elif isinstance(obj, cbor2.CBORTag):
        out.append(_head(6, obj.tag))
        _encode(obj.value, out, depth + 1)
    else:
        raise EncodingError(f"type {type(obj).__name__} has no deterministic CBOR encoding here")


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` in RFC 8949 core deterministic form."""
    out: list[bytes] = []
    _encode(obj, out, 0)
    return b"".join(out)


class _NotPlain(Exception):
    """A value the fast path leaves to cbor2's canonical encoder (floats, tags, other keys)."""


_PLAIN = frozenset({str, int, bool, bytes, type(None)})
# Map key order per insertion order: a log entry's maps have a handful of key sequences.
_KEY_ORDER: dict[tuple[str, ...], tuple[str, ...]] = {}


def _text_key(key: str) -> tuple[int, bytes]:
    # A text key's encoding is its head (major type 3 and the UTF-8 length) then the bytes, so
    # RFC 8949's bytewise order of encoded keys is: shorter first, then bytewise.
    raw = key.encode()
    return len(raw), raw


def _in_key_order(obj: Any) -> Any:
    t = type(obj)
    if t is dict:
        keys = tuple(obj)
        order = _KEY_ORDER.get(keys)
        if order is None:
            if any(type(k) is not str for k in keys):
                raise _NotPlain
            order = tuple(sorted(keys, key=_text_key))
            if len(_KEY_ORDER) < 4096:
                _KEY_ORDER[keys] = order
        return {k: obj[k] if type(obj[k]) in _PLAIN else _in_key_order(obj[k]) for k in order}
    if t is list or t is tuple:
        return [v if type(v) in _PLAIN else _in_key_order(v) for v in obj]
    if t in _PLAIN:
        return obj
    raise _NotPlain


def dumps_text_keyed(obj: Any) -> bytes:
    """Deterministic encoding of a value whose maps all have text keys and holding no floats.

    Maps are rebuilt in deterministic key order and encoded as they stand: for text, integers,
    byte strings, booleans and null cbor2's plain encoding is already the deterministic one, and
    this is about twice as fast as its canonical mode (which sorts every map as it encodes).
    Anything else goes to the canonical mode."""
    try:
        ordered = _in_key_order(obj)
    except _NotPlain:
        return cbor2.dumps(obj, canonical=True)
    return cbor2.dumps(ordered)


def _thaw(obj: Any) -> Any:
    # cbor2 6 hands back immutable containers for map keys and tag contents; give callers
    # plain dicts and lists.
    if isinstance(obj, dict) or type(obj).__name__ == "frozendict":
        return {_thaw(k): _thaw(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_thaw(v) for v in obj]
    if isinstance(obj, cbor2.CBORTag):
        return cbor2.CBORTag(obj.tag, _thaw(obj.value))
    return obj


def loads(data: bytes) -> Any:
    """Decode one CBOR item, refusing trailing bytes."""
    buf = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(buf).decode()
    except Exception as exc:  # cbor2 raises several unrelated types
        raise EncodingError(f"not valid CBOR: {exc}") from exc
    if buf.tell() != len(data):
        raise EncodingError(f"{len(data) - buf.tell()} bytes follow the CBOR item")
    return _thaw(value)


def loads_deterministic(data: bytes) -> Any:
    """Decode ``data`` and check that it is exactly the deterministic encoding of its value."""
    value = loads(data)
    if dumps(value) != bytes(data):
        raise EncodingError("CBOR is valid but not in deterministic encoding")
    return value
