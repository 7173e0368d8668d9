"""RFC 9162 Merkle tree hashing and proofs: pure functions over hashes.

Subtree hashes come from a ``NodeSource``: any function that returns the hash of the perfect
subtree at (level, index), so the same algorithms run over an in-memory list in tests and over
the ledger's node table in production.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from .errors import ProofError

HASH_SIZE = 32
NodeSource = Callable[[int, int], bytes]


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


# -- the compact range: the right edge of a tree, as the one writer and the centre keep it ---


def append_leaf(frontier: list[bytes], size: int, leaf: bytes) -> list[tuple[int, int, bytes]]:
    """Extend the compact range ``frontier`` (the hashes of the perfect subtrees of the right
    edge of a tree of ``size`` leaves, largest first; changed in place) by one leaf hash.
    Returns every subtree the leaf completes as (level, index, hash), the leaf itself first."""
    nodes = [(0, size, leaf)]
    h, level, idx = leaf, 0, size
    while idx & 1:
        h = node_hash(frontier.pop(), h)
        level += 1
        idx >>= 1
        nodes.append((level, idx, h))
    frontier.append(h)
    return nodes


def fold_leaves(frontier: Sequence[bytes], leaves: Sequence[bytes], size: int) -> list[bytes]:
    """The compact range after ``leaves`` are appended to a tree of ``size`` leaves."""
    out = list(frontier)
    for n, leaf in enumerate(leaves, size):
        append_leaf(out, n, leaf)
    return out


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """The root hash of the tree whose compact range is ``frontier``."""
    if not frontier:
        return EMPTY_ROOT
    r = frontier[-1]
    for h in reversed(frontier[:-1]):
        r = node_hash(h, r)
    return r


def _largest_pow2_below(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_hash(nodes: NodeSource, start: int, end: int) -> bytes:
    """MTH(D[start:end]) where start is aligned as RFC 9162's recursion always leaves it."""
    n = end - start
    if n <= 0:
        raise ValueError("empty range")
    if n & (n - 1) == 0 and start % n == 0:
        return nodes(n.bit_length() - 1, start // n)
    k = _largest_pow2_below(n)
    return node_hash(subtree_hash(nodes, start, start + k), subtree_hash(nodes, start + k, end))


def root_hash(nodes: NodeSource, size: int) -> bytes:
    return EMPTY_ROOT if size == 0 else subtree_hash(nodes, 0, size)


def inclusion_proof(nodes: NodeSource, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} outside tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _largest_pow2_below(end - start)
        if index < start + k:
            path.append(subtree_hash(nodes, start + k, end))
            end = start + k
        else:
            path.append(subtree_hash(nodes, start, start + k))
            start = start + k
    path.reverse()
    return path


def consistency_proof(nodes: NodeSource, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 §2.1.4.1."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"cannot prove {old_size} -> {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    proof: list[bytes] = []

    def subproof(m: int, start: int, end: int, complete: bool) -> None:
        n = end - start
        if m == n:
            if not complete:
                proof.append(subtree_hash(nodes, start, end))
            return
        k = _largest_pow2_below(n)
        if m <= k:
            subproof(m, start, start + k, complete)
            proof.append(subtree_hash(nodes, start + k, end))
        else:
            subproof(m - k, start + k, end, False)
            proof.append(subtree_hash(nodes, start, start + k))

    subproof(old_size, 0, new_size, True)
    return proof


def list_source(leaf_hashes: Sequence[bytes]) -> NodeSource:
    """A NodeSource over an in-memory list of leaf hashes (tests, small trees, verification)."""
    levels: list[list[bytes]] = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        prev = levels[-1]
        levels.append([node_hash(prev[i], prev[i + 1]) for i in range(0, len(prev) - 1, 2)])

    def get(level: int, index: int) -> bytes:
        return levels[level][index]

    return get


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofError unless ``proof`` puts leaf hash ``leaf`` at ``index`` under ``root``."""
    if index >= size or index < 0:
        raise ProofError(f"index {index} is outside a tree of size {size}")
    if len(leaf) != HASH_SIZE or len(root) != HASH_SIZE:
        raise ProofError("leaf hash and root must be 32-byte SHA-256 values")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if len(p) != HASH_SIZE:
            raise ProofError("proof element has the wrong length")
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    if r != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ProofError unless ``proof`` shows tree ``old_root`` is a prefix of ``new_root``."""
    if old_size < 0 or new_size < old_size:
        raise ProofError(f"sizes go backwards: {old_size} -> {new_size}")
    if old_size == 0:
        # Every tree extends the empty one; such a "proof" proves nothing, so callers must not
        # rely on one (transparency-dev/merkle refuses it too).
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if old_size == new_size:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("equal sizes but different roots")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    for p in proof:
        if len(p) != HASH_SIZE:
            raise ProofError("proof element has the wrong length")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")
