"""Where each content version's bytes are (appliance/versions.py): stored once, sent once."""

from __future__ import annotations

from appliance.versions import placement

R, A, S, U = ("1" * 64, "2" * 64, "3" * 64, "4" * 64)


def _item(sha: str, size: int, **kw: object) -> dict[str, object]:
    return {"sha256": sha, "size": size, "name": "x.pdf", "mime": "application/pdf", **kw}


def test_a_scan_in_its_three_versions_and_an_upgrade() -> None:
    """Released scan, PDF/A inside the signed file, the centre's upgrade a file of its own."""
    content = [
        _item(R, 9_800_000, keep="none"),
        _item(A, 110_000, **{"from": R}),
        _item(S, 150_000, **{"from": A, "extends": True}),
        _item(U, 170_000, **{"from": S, "ltv": "B-LTA"}),
    ]
    p = placement(content)
    assert p.released == (R,)
    assert p.within == {A: (S, 110_000)}
    assert p.own == (S, U)
    assert p.box_only == ()


def test_masters_kept_on_the_box_and_nested_prefixes() -> None:
    """A lossless master stays on the box only; a prefix of a prefix lives in the outermost."""
    content = [
        _item(R, 10, keep="box"),
        _item(A, 20, **{"from": R}),
        _item(S, 30, **{"from": A, "extends": True}),
        _item(U, 40, **{"from": S, "extends": True}),
    ]
    p = placement(content)
    assert p.box_only == (R,)
    assert p.within == {A: (U, 20), S: (U, 30)}
    assert p.own == (U,)


def test_plain_content_is_stored_and_sent() -> None:
    p = placement([_item(R, 10), _item(A, 20)])
    assert p.own == (R, A) and not p.within and not p.released
