"""Boot evidence: a real quote from swtpm verifies; each tampering is caught."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.datadir import init_data_dir
from appliance.keys.loader import TPM_KEY_PATH
from luutru.provision.attest import AttestationError, quote_boot_state, verify_evidence
from tests.conftest import ORG_ID, ORG_NAME
from tests.swtpm import Swtpm

NONCE = bytes(range(16))


@pytest.fixture
def evidence(tmp_path: Path, swtpm: Swtpm) -> tuple[dict[str, Any], str]:
    d = tmp_path / "a"
    init_data_dir(d, ORG_ID, ORG_NAME, "tpm", key_options={"tcti": swtpm.tcti})
    ev = quote_boot_state(swtpm.tcti, (d / TPM_KEY_PATH).read_bytes(), NONCE)
    return ev, (d / "keys" / "device.pub.pem").read_text()


def _flip(hexstr: str, at: int) -> str:
    raw = bytearray(bytes.fromhex(hexstr))
    raw[at] ^= 0x01
    return raw.hex()


def test_real_quote_verifies(evidence: tuple[dict[str, Any], str]) -> None:
    ev, pem = evidence
    got = verify_evidence(ev, pem)
    assert got.nonce == NONCE and sorted(got.pcrs) == list(range(8))


@pytest.mark.parametrize(("field", "at"), [
    ("quote", 40), ("quote", -1), ("quote_signature", 10), ("certify", -3),
    ("certify_signature", 12), ("device_public_area", -5), ("ak_public_area", -2),
])
def test_a_flipped_bit_fails(evidence: tuple[dict[str, Any], str], field: str, at: int) -> None:
    ev, pem = evidence
    bad = dict(ev, **{field: _flip(ev[field], at)})
    with pytest.raises(AttestationError):
        verify_evidence(bad, pem)


def test_changed_pcr_value_or_nonce_fails(evidence: tuple[dict[str, Any], str]) -> None:
    ev, pem = evidence
    with pytest.raises(AttestationError, match="PCR values"):
        verify_evidence(dict(ev, pcrs={**ev["pcrs"], "7": "11" * 32}), pem)
    with pytest.raises(AttestationError, match="nonce"):
        verify_evidence(dict(ev, nonce="00" * 16), pem)


def test_another_device_key_fails(evidence: tuple[dict[str, Any], str], tmp_path: Path) -> None:
    ev, _ = evidence
    other = tmp_path / "b"
    init_data_dir(other, ORG_ID, ORG_NAME, "software")
    with pytest.raises(AttestationError, match="not the appliance's device key"):
        verify_evidence(ev, (other / "keys" / "device.pub.pem").read_text())
