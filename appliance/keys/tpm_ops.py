"""TPM operations beyond the device key's signatures: sealing small secrets, quoting the boot
state for enrolment, evicting our keys at a factory reset. With ``tpm.py`` this is the device
layer: the only modules that import tpm2_pytss (keylime's layering, STYLE.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import cbor
from ..errors import EncodingError
from .errors import TpmBlobCorruptedError, TpmForeignKeyError
from .tpm import import_tss, map_tpm_error, owner_srk, tpm_context, with_room

SEALED_FORMAT = 1
ACTION_RESTORE = "restore {path} from the appliance's backup, or set the secret again"
ACTION_FOREIGN = (
    "this secret was sealed by another TPM, or this TPM was cleared; set the secret again "
    "(a new session secret only logs every user out)"
)


# -- sealed secrets ---------------------------------------------------------------------------


def _sealed_template() -> Any:
    from tpm2_pytss.constants import TPMA_OBJECT
    from tpm2_pytss.types import TPM2B_PUBLIC

    # No SENSITIVEDATAORIGIN: we supply the data. noDA: empty auth, nothing to guess.
    attrs = (
        TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.NODA | TPMA_OBJECT.USERWITHAUTH
    )
    return TPM2B_PUBLIC.parse("keyedhash", objectAttributes=attrs)


def seal(tcti: str, secret: bytes) -> dict[str, Any]:
    """Seal ``secret`` under the owner storage key; the blob to keep (CBOR-able)."""
    tss = import_tss()
    from tpm2_pytss.types import (
        TPM2B_SENSITIVE_CREATE,
        TPM2B_SENSITIVE_DATA,
        TPMS_SENSITIVE_CREATE,
    )

    sensitive = TPM2B_SENSITIVE_CREATE(TPMS_SENSITIVE_CREATE(data=TPM2B_SENSITIVE_DATA(secret)))
    with tpm_context(tcti) as ectx:

        def create() -> tuple[Any, Any, bytes]:
            srk = owner_srk(ectx)
            try:
                private, public, *_ = ectx.create(srk, sensitive, _sealed_template())
                return private, public, bytes(ectx.tr_get_name(srk))
            finally:
                ectx.flush_context(srk)

        try:
            private, public, srk_name = with_room(ectx, tcti, create)
        except tss.TSS2_Exception as exc:
            raise map_tpm_error(exc, tcti, "sealing a secret") from exc
    return {
        "format": SEALED_FORMAT,
        "srk_name": srk_name,
        "public": bytes(public.marshal()),
        "private": bytes(private.marshal()),
    }


def unseal(tcti: str, raw: bytes, path: Path) -> bytes:
    """The secret sealed in ``raw`` (a blob ``seal`` made, read from ``path``)."""
    tss = import_tss()
    from tpm2_pytss.types import TPM2B_PRIVATE, TPM2B_PUBLIC

    try:
        blob = cbor.loads(raw)
        if not isinstance(blob, dict) or blob.get("format") != SEALED_FORMAT:
            raise EncodingError("not a sealed-secret file")
        public, _ = TPM2B_PUBLIC.unmarshal(bytes(blob["public"]))
        private, _ = TPM2B_PRIVATE.unmarshal(bytes(blob["private"]))
        srk_name = bytes(blob["srk_name"])
    except Exception as exc:  # any parse failure is damage to the file
        raise TpmBlobCorruptedError(
            f"sealed secret {path} is damaged ({exc})", ACTION_RESTORE.format(path=path), tcti
        ) from exc
    with tpm_context(tcti) as ectx:

        def load_and_unseal() -> bytes:
            srk = owner_srk(ectx)
            try:
                if bytes(ectx.tr_get_name(srk)) != srk_name:
                    raise TpmForeignKeyError(
                        f"sealed secret {path} belongs to another TPM", ACTION_FOREIGN, tcti
                    )
                handle = ectx.load(srk, private, public)
            finally:
                ectx.flush_context(srk)
            try:
                return bytes(ectx.unseal(handle))
            finally:
                ectx.flush_context(handle)

        try:
            return with_room(ectx, tcti, load_and_unseal)
        except tss.TSS2_Exception as exc:
            err = map_tpm_error(exc, tcti, "unsealing a secret", path)
            if isinstance(err, TpmBlobCorruptedError):
                raise TpmBlobCorruptedError(
                    f"the TPM rejects sealed secret {path} ({exc})",
                    ACTION_RESTORE.format(path=path),
                    tcti,
                ) from exc
            raise err from exc


# -- boot-state quotes -------------------------------------------------------------------------


def _ak_template() -> Any:
    from tpm2_pytss.constants import TPM2_ALG, TPMA_OBJECT
    from tpm2_pytss.types import TPM2B_PUBLIC

    attrs = (TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.SENSITIVEDATAORIGIN
             | TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.RESTRICTED | TPMA_OBJECT.SIGN_ENCRYPT)
    tmpl = TPM2B_PUBLIC.parse("ecc256:ecdsa-sha256", objectAttributes=attrs)
    tmpl.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG.NULL
    return tmpl


def quote_pcrs(
    tcti: str, device_blob_pem: bytes, nonce: bytes, bank: str, pcrs: tuple[int, ...]
) -> dict[str, Any]:
    """Quote ``pcrs`` of ``bank`` with a fresh attestation key and certify the device key by
    it: the raw TPM structures, as bytes."""
    from tpm2_pytss.constants import ESYS_TR, TPM2_ALG
    from tpm2_pytss.tsskey import TSSPrivKey
    from tpm2_pytss.types import TPM2B_SENSITIVE_CREATE, TPMT_SIG_SCHEME

    selection = f"{bank}:{','.join(str(p) for p in pcrs)}"
    tss = import_tss()
    with tpm_context(tcti) as ectx:
        handles: list[Any] = []
        try:
            # The device key first, its storage key flushed at once, then the AK: never more
            # than two objects of ours at a time (a TPM without a resource manager has three
            # slots, and the open store holds one).
            blob = TSSPrivKey.from_pem(device_blob_pem)
            srk = owner_srk(ectx)
            try:
                device = ectx.load(srk, blob.private, blob.public)
            finally:
                ectx.flush_context(srk)
            handles.append(device)
            ak, ak_pub, *_ = ectx.create_primary(
                TPM2B_SENSITIVE_CREATE(), _ak_template(), ESYS_TR.OWNER)
            handles.append(ak)
            _, _, digests = ectx.pcr_read(selection)
            quote, quote_sig = ectx.quote(ak, selection, nonce)
            null = TPMT_SIG_SCHEME(scheme=TPM2_ALG.NULL)  # the AK's own scheme
            cert, cert_sig = ectx.certify(device, ak, nonce, null)
        except tss.TSS2_Exception as exc:
            raise map_tpm_error(exc, tcti, "quoting the boot state") from exc
        finally:
            for h in handles:
                ectx.flush_context(h)
    return {
        "digests": [bytes(d) for d in digests],
        "ak_public_area": bytes(ak_pub.publicArea.marshal()),
        "quote": bytes(quote),
        "quote_signature": bytes(quote_sig),
        "device_public_area": bytes(blob.public.publicArea.marshal()),
        "certify": bytes(cert),
        "certify_signature": bytes(cert_sig),
    }


# -- factory reset ----------------------------------------------------------------------------


def evict_keys(tcti: str, ours: set[str], clear: bool) -> list[str]:
    """Evict persistent TPM objects whose public key id is in ``ours``; optionally TPM2_Clear
    (a factory reset). What was done, one line each."""
    from tpm2_pytss.constants import ESYS_TR, TPM2_CAP, TPM2_HC

    from .verify import key_id, load_public_key

    done: list[str] = []
    with tpm_context(tcti) as ectx:
        _, data = ectx.get_capability(TPM2_CAP.HANDLES, TPM2_HC.PERSISTENT_FIRST, 64)
        for handle in list(data.data.handles):
            try:
                tr = ectx.tr_from_tpmpublic(handle)
                pub = ectx.read_public(tr)[0]
                kid = key_id(load_public_key(pub.to_pem())).hex()
            except Exception:  # not ours to judge: an object we cannot read stays
                continue
            if kid in ours:
                ectx.evict_control(ESYS_TR.OWNER, tr, handle)
                done.append(f"evicted persistent handle 0x{handle:08x}")
        if clear:
            ectx.clear(ESYS_TR.RH_LOCKOUT)
            done.append("TPM cleared (owner seed changed)")
    return done
