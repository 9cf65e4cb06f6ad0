"""Byte-level view of a JSON document, to check that the gateway kept "every other byte".

``members(raw)`` splits a top-level JSON object into its members *as bytes* — the raw key
token, the raw value token — without decoding anything, so a test can say "this member
arrived upstream byte-identical" whatever the gateway did elsewhere in the body. Only the
structure is scanned (strings, brackets, commas, colons); tokens are checked by ``json.loads``.
"""

from __future__ import annotations

import json

WS = b" \t\r\n"


def _skip_ws(raw: bytes, i: int) -> int:
    while i < len(raw) and raw[i] in WS:
        i += 1
    return i


def _end_of_string(raw: bytes, i: int) -> int:
    assert raw[i : i + 1] == b'"', f"expected a string at {i}"
    i += 1
    while True:
        c = raw[i]
        if c == 0x5C:  # backslash
            i += 2
        elif c == 0x22:
            return i + 1
        else:
            i += 1


def _end_of_value(raw: bytes, i: int) -> int:
    c = raw[i : i + 1]
    if c == b'"':
        return _end_of_string(raw, i)
    if c in (b"{", b"["):
        depth = 0
        while True:
            c = raw[i : i + 1]
            if c == b'"':
                i = _end_of_string(raw, i)
                continue
            if c in (b"{", b"["):
                depth += 1
            elif c in (b"}", b"]"):
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
    # number / true / false / null
    while i < len(raw) and raw[i : i + 1] not in (b",", b"}", b"]") and raw[i] not in WS:
        i += 1
    return i


def members(raw: bytes) -> list[tuple[bytes, bytes]]:
    """``[(raw_key, raw_value), ...]`` of a top-level object, in order, tokens trimmed."""
    i = _skip_ws(raw, 0)
    assert raw[i : i + 1] == b"{", "not an object"
    i = _skip_ws(raw, i + 1)
    out: list[tuple[bytes, bytes]] = []
    if raw[i : i + 1] == b"}":
        return out
    while True:
        k_end = _end_of_string(raw, i)
        key = raw[i:k_end]
        i = _skip_ws(raw, k_end)
        assert raw[i : i + 1] == b":", f"expected ':' at {i}"
        i = _skip_ws(raw, i + 1)
        v_end = _end_of_value(raw, i)
        out.append((key, raw[i:v_end]))
        json.loads(raw[i:v_end])  # a real JSON token
        i = _skip_ws(raw, v_end)
        if raw[i : i + 1] == b",":
            i = _skip_ws(raw, i + 1)
            continue
        assert raw[i : i + 1] == b"}", f"expected ',' or '}}' at {i}"
        assert not raw[i + 1 :].strip(WS), "trailing bytes after the object"
        return out


def elements(raw_array: bytes) -> list[bytes]:
    """The raw elements of a JSON array token, in order, trimmed."""
    i = _skip_ws(raw_array, 0)
    assert raw_array[i : i + 1] == b"[", "not an array"
    i = _skip_ws(raw_array, i + 1)
    out: list[bytes] = []
    if raw_array[i : i + 1] == b"]":
        return out
    while True:
        end = _end_of_value(raw_array, i)
        out.append(raw_array[i:end])
        i = _skip_ws(raw_array, end)
        if raw_array[i : i + 1] == b",":
            i = _skip_ws(raw_array, i + 1)
            continue
        assert raw_array[i : i + 1] == b"]"
        return out


def key_name(raw_key: bytes) -> str:
    """The decoded name of a raw key token (``b'"mod\\u0065l"'`` → ``"model"``)."""
    return json.loads(raw_key)


def member_map(raw: bytes) -> dict[str, bytes]:
    """Decoded key → raw value (keys must be unique)."""
    out: dict[str, bytes] = {}
    for k, v in members(raw):
        name = key_name(k)
        assert name not in out, f"duplicate key {name!r}"
        out[name] = v
    return out
