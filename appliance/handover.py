"""Hand-over: a new device key continuing a dead appliance's log (replacement from the centre).

When a box dies, a new one downloads the log from the provincial centre's copy and appends one
``device.handover`` entry that names the key that signed the log until then and the key that
signs it from then on. The entry is sealed by the new key and countersigned by the centre
(its receipt), so the chain of keys can be checked from the log alone:

- checkpoints up to the hand-over entry's index are the previous key's,
- checkpoints that include the entry are the new key's,
- the last hand-over's new key is the device key of the folder.

The entry also lists what the new box could not get back: entries of classified records,
which never leave an appliance and so come back as their leaf hashes only (their log rows are
empty), and content the centre never received. ``luutru verify`` accepts an empty log row only
at an index listed there, and reports both lists as warnings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ValidationError
from .keys.verify import PublicKey, key_id, load_public_key
from .kinds import Kind

HANDOVER_KIND = Kind.DEVICE_HANDOVER
ACTOR = "luutru restore"


@dataclass(frozen=True)
class Handover:
    """The parts of a hand-over entry that verification relies on."""

    index: int
    previous_key: PublicKey
    new_key: PublicKey
    withheld: frozenset[int]
    lost_content: frozenset[str]


def handover_data(
    *,
    appliance_id: str,
    previous_public_key: str,
    new_public_key: str,
    backing: str,
    restored_size: int,
    restored_root: bytes,
    claimed_size: int,
    centre_origin: str,
    centre_key_id: str,
    token_id: bytes,
    withheld: Iterable[int],
    lost_content: Iterable[str],
) -> dict[str, Any]:
    """The data of a hand-over entry (text, integers and lists only: deterministic CBOR)."""
    prev = load_public_key(previous_public_key)
    new = load_public_key(new_public_key)
    return {
        "appliance": appliance_id,
        "previous_key_id": key_id(prev).hex(),
        "previous_public_key": previous_public_key,
        "new_key_id": key_id(new).hex(),
        "new_public_key": new_public_key,
        "backing": backing,
        "restored_size": restored_size,
        "restored_root": restored_root.hex(),
        "claimed_size": claimed_size,
        "centre": centre_origin,
        "centre_key_id": centre_key_id,
        "token_id": token_id.hex(),
        "withheld": sorted(set(withheld)),
        "lost_content": sorted(set(lost_content)),
        "reason": "replacement",
    }


def parse(index: int, data: Mapping[str, Any] | None) -> Handover:
    """Read a hand-over entry's data; raises ValidationError if it is malformed."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"hand-over entry {index} has no data")
    try:
        prev = load_public_key(str(data["previous_public_key"]))
        new = load_public_key(str(data["new_public_key"]))
        if key_id(prev).hex() != data["previous_key_id"] or key_id(new).hex() != data[
            "new_key_id"
        ]:
            raise ValueError("key ids do not match the keys")
        size = int(data["restored_size"])
        withheld = frozenset(int(i) for i in data.get("withheld", []))
        lost = frozenset(str(s) for s in data.get("lost_content", []))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"hand-over entry {index} is malformed: {exc}") from exc
    if size != index:
        raise ValidationError(
            f"hand-over entry {index} says it follows {size} restored entries"
        )
    if any(i < 0 or i >= index for i in withheld):
        raise ValidationError(f"hand-over entry {index} lists withheld entries after itself")
    return Handover(index, prev, new, withheld, lost)


class KeySchedule:
    """Which key signs a checkpoint of a given tree size, from the log's hand-over entries."""

    def __init__(self, device_key: PublicKey, handovers: Iterable[Handover]) -> None:
        self.handovers = sorted(handovers, key=lambda h: h.index)
        self.device_key = device_key
        self.problems: list[str] = []
        prev: Handover | None = None
        for h in self.handovers:
            if prev is not None and key_id(h.previous_key) != key_id(prev.new_key):
                self.problems.append(
                    f"hand-over entry {h.index} takes the log from key "
                    f"{key_id(h.previous_key).hex()[:16]}…, but entry {prev.index} gave it to "
                    f"{key_id(prev.new_key).hex()[:16]}…"
                )
            prev = h
        if prev is not None and key_id(prev.new_key) != key_id(device_key):
            self.problems.append(
                f"the last hand-over (entry {prev.index}) gives the log to key "
                f"{key_id(prev.new_key).hex()[:16]}…, not to this device's key"
            )

    def key_for(self, tree_size: int) -> PublicKey:
        """The key that must have signed a checkpoint of ``tree_size``."""
        key = self.handovers[0].previous_key if self.handovers else self.device_key
        for h in self.handovers:
            if tree_size > h.index:
                key = h.new_key
        return key

    @property
    def withheld(self) -> frozenset[int]:
        out: set[int] = set()
        for h in self.handovers:
            out |= h.withheld
        return frozenset(out)

    @property
    def lost_content(self) -> frozenset[str]:
        out: set[str] = set()
        for h in self.handovers:
            out |= h.lost_content
        return frozenset(out)
