"""RFC 9162 hashing and proofs against transparency-dev/merkle's 196 golden vectors."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance import merkle
from appliance.errors import ProofError

from .conftest import VECTORS

VECTOR_DIR = VECTORS / "rfc9162"


def _cases(kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (str(p.relative_to(VECTOR_DIR)), json.loads(p.read_text()))
        for p in sorted((VECTOR_DIR / kind).rglob("*.json"))
    ]


def _b(v: str | None) -> bytes:
    return base64.b64decode(v) if v else b""


INCLUSION = _cases("inclusion")
CONSISTENCY = _cases("consistency")


def test_vectors_present() -> None:
    """tests/vectors/rfc9162 holds all 196 cases (a missing folder must not pass silently)."""
    assert len(INCLUSION) + len(CONSISTENCY) == 196


@pytest.mark.parametrize(("name", "case"), INCLUSION, ids=[n for n, _ in INCLUSION])
def test_inclusion_vectors(name: str, case: dict[str, Any]) -> None:
    """The inclusion verifier accepts exactly the cases with wantErr false."""
    proof = [_b(p) for p in case.get("proof") or []]
    args = (_b(case["leafHash"]), case["leafIdx"], case["treeSize"], proof, _b(case["root"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize(("name", "case"), CONSISTENCY, ids=[n for n, _ in CONSISTENCY])
def test_consistency_vectors(name: str, case: dict[str, Any]) -> None:
    """The consistency verifier accepts exactly the cases with wantErr false."""
    proof = [_b(p) for p in case.get("proof") or []]
    args = (case["size1"], case["size2"], _b(case["root1"]), _b(case["root2"]), proof)
    if case["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def _tree(n: int) -> tuple[list[bytes], merkle.NodeSource]:
    leaves = [merkle.leaf_hash(f"entry {i}".encode()) for i in range(n)]
    return leaves, merkle.list_source(leaves)


def test_known_roots() -> None:
    """Roots of the RFC 6962 reference tree (8 leaves of the test data) match the Go library's."""
    leaves_raw = [
        bytes.fromhex(h)
        for h in [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
    ]
    source = merkle.list_source([merkle.leaf_hash(x) for x in leaves_raw])
    assert merkle.root_hash(source, 8).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )
    assert merkle.root_hash(source, 1).hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert merkle.EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@given(st.integers(1, 300), st.data())
def test_generated_proofs_verify(n: int, data: st.DataObject) -> None:
    """Proofs we generate for any index and size pair verify; a flipped bit does not."""
    leaves, source = _tree(n)
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    root = merkle.root_hash(source, size)
    proof = merkle.inclusion_proof(source, index, size)
    merkle.verify_inclusion(leaves[index], index, size, proof, root)
    old = data.draw(st.integers(1, size))
    cproof = merkle.consistency_proof(source, old, size)
    merkle.verify_consistency(old, size, merkle.root_hash(source, old), root, cproof)
    if proof:
        bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaves[index], index, size, bad, root)
    if cproof:
        bad = [*cproof[:-1], bytes([cproof[-1][0] ^ 0x80]) + cproof[-1][1:]]
        with pytest.raises(ProofError):
            merkle.verify_consistency(old, size, merkle.root_hash(source, old), root, bad)


def test_compact_range_gives_the_root_and_every_completed_subtree() -> None:
    """append_leaf / fold_leaves / frontier_root (the one writer's and the centre's right edge)
    agree with the full tree for every size up to 70, and in any split of the appends."""
    from appliance.merkle import append_leaf, fold_leaves, frontier_root, list_source, root_hash

    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(70)]
    frontier: list[bytes] = []
    for n, leaf in enumerate(leaves):
        nodes = append_leaf(frontier, n, leaf)
        src = list_source(leaves[: n + 1])
        assert frontier_root(frontier) == root_hash(src, n + 1)
        for level, idx, h in nodes:
            assert h == src(level, idx)
        for k in range(n + 1):
            assert fold_leaves(fold_leaves([], leaves[:k], 0), leaves[k: n + 1], k) == frontier
    assert frontier_root([]) == root_hash(list_source([]), 0)
