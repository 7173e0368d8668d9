"""The TPM 2.0 device key: a non-exportable ECC P-256 key that signs ES256 checkpoints, and
the TPM's NV monotonic counter that anchors the log's tail in hardware.

The private key never leaves the chip. On disk there is only a TSS2 PEM blob (the format of
tpm2-openssl), wrapped by this TPM's owner storage key: useless anywhere else. This is the only
module that imports tpm2_pytss, and it does so lazily so that boxes without libtss2 still run.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec

from ..cose import ALG_ES256
from ..fsutil import write_atomic
from .base import Backing
from .errors import (
    TpmBlobCorruptedError,
    TpmError,
    TpmForeignKeyError,
    TpmLockoutError,
    TpmUnavailableError,
)
from .verify import key_id, load_public_key, public_pem

T = TypeVar("T")
DEFAULT_TCTI = "device:/dev/tpmrm0"
# TCTIs that talk to a TPM with no resource manager in front: transient objects left by a
# crashed process stay loaded there and fill the TPM's three object slots. When the TPM says it
# is full we flush them and try once more (flushing on every connect would also drop the live
# key of another connection).
_UNMANAGED_TCTIS = ("swtpm", "mssim")
_RC_OBJECT_MEMORY = 0x902

_RC_LOCKOUT = 0x921
_RC_FMT1 = 0x080
_LAYER_TCTI = 10
_LAYER_ESYS = 7
_ESYS_IO_ERRORS = (0x7000A, 0x70013, 0x7000D)  # IO_ERROR, TRY_AGAIN, BAD_CONTEXT

_ACTION_MISSING = (
    "check that the TPM is enabled in the firmware (BIOS/UEFI) and that {where} exists; "
    "do not re-provision: the sealed log needs this TPM"
)
_ACTION_FOREIGN = (
    "this data folder was provisioned on another appliance, or this TPM was cleared; put the "
    "disk back in its own appliance, or restore the backup made for this TPM; re-provision only "
    "with the province's approval (the old key's checkpoints stay verifiable by the centre)"
)
_ACTION_CORRUPT = "restore {path} from the appliance's backup; the TPM itself is fine"
_ACTION_LOCKOUT = (
    "the TPM saw too many wrong passwords; wait for its recovery time, or clear the lockout "
    "with the lockout password (tpm2_dictionarylockout --clear-lockout); records are refused "
    "until then, none is accepted unsealed"
)


@dataclass(frozen=True)
class TpmKeyInfo:
    """What identifies a TPM key blob: its key id and the name of the storage key it is under."""

    kid: bytes
    srk_name: bytes


def import_tss() -> Any:
    """Import tpm2_pytss, or say plainly that this build cannot reach a TPM."""
    try:
        import tpm2_pytss
    except ImportError as exc:
        raise TpmUnavailableError(
            f"the TPM library cannot be loaded ({exc})",
            "install libtss2 and the Python package tpm2-pytss (scripts/requirements.d/tpm.txt)",
        ) from exc
    return tpm2_pytss


def _where(tcti: str) -> str:
    name, _, conf = tcti.partition(":")
    if name == "device":
        return conf or "/dev/tpmrm0"
    return f"the TPM simulator at {conf or name}"


def map_tpm_error(exc: Exception, tcti: str, doing: str, path: Path | None = None) -> TpmError:
    """Turn a TSS2 error into one of ours naming the cause and the technician's next step."""
    rc = int(getattr(exc, "rc", 0))
    layer = rc >> 16
    if rc == _RC_LOCKOUT:
        return TpmLockoutError(f"the TPM is in lockout while {doing}", _ACTION_LOCKOUT, tcti)
    if layer == _LAYER_TCTI or rc in _ESYS_IO_ERRORS:
        return TpmUnavailableError(
            f"no TPM answers at {tcti!r} while {doing} ({exc})",
            _ACTION_MISSING.format(where=_where(tcti)),
            tcti,
        )
    if path is not None and layer == 0 and rc & _RC_FMT1:
        # A parameter the TPM cannot unwrap (integrity, size, key) under the right storage key.
        return TpmBlobCorruptedError(
            f"the TPM rejects the key blob {path} ({exc})",
            _ACTION_CORRUPT.format(path=path),
            tcti,
        )
    return TpmError(
        f"the TPM failed while {doing} ({exc})",
        "note this message and report it to the province's technical support",
        tcti,
    )


def _flush_transients(ectx: Any) -> None:
    from tpm2_pytss.constants import TPM2_CAP, TPM2_HC

    _, data = ectx.get_capability(TPM2_CAP.HANDLES, TPM2_HC.TRANSIENT_FIRST, 64)
    for handle in list(data.data.handles):
        ectx.flush_context(ectx.tr_from_tpmpublic(handle))


def with_room(ectx: Any, tcti: str, fn: Callable[[], T]) -> T:
    """Run ``fn``; if an unmanaged TPM is out of object slots, flush stale ones and retry once."""
    tss = import_tss()
    try:
        return fn()
    except tss.TSS2_Exception as exc:
        if int(exc.rc) != _RC_OBJECT_MEMORY or tcti.partition(":")[0] not in _UNMANAGED_TCTIS:
            raise
    _flush_transients(ectx)
    return fn()


@contextmanager
def tpm_context(tcti: str) -> Iterator[Any]:
    """An ESAPI context on ``tcti``, closed on exit."""
    ectx = connect(tcti)
    try:
        yield ectx
    finally:
        ectx.close()


def connect(tcti: str) -> Any:
    """Open an ESAPI context (the caller closes it)."""
    tss = import_tss()
    try:
        return tss.ESAPI(tss.TCTILdr.parse(tcti))
    except tss.TSS2_Exception as exc:
        raise map_tpm_error(exc, tcti, "connecting") from exc


def probe(tcti: str = DEFAULT_TCTI) -> bool:
    """True if a TPM answers at ``tcti`` (used by ``--key auto``)."""
    try:
        with tpm_context(tcti) as ectx:
            ectx.get_random(8)
        return True
    except TpmError:
        return False
    except Exception:  # a TSS error at get_random: something answers, but not usably
        return False


def owner_srk(ectx: Any) -> Any:
    """Re-derive the owner storage key that TSS2 PEM blobs are wrapped by (caller flushes it)."""
    from tpm2_pytss.constants import TPM2_ALG
    from tpm2_pytss.tsskey import TSSPrivKey

    # The very template TSSPrivKey.load() uses, so our check and its load agree.
    return TSSPrivKey._getparent(ectx, TPM2_ALG.ECC, 0x40000001)  # TPM2_RH_OWNER


def srk_name(ectx: Any) -> bytes:
    """The name of this TPM's owner storage key: changes with another TPM or a TPM clear."""
    handle = owner_srk(ectx)
    try:
        return bytes(ectx.tr_get_name(handle))
    finally:
        ectx.flush_context(handle)


def _ecc_template(noda: bool) -> Any:
    from tpm2_pytss.constants import TPMA_OBJECT
    from tpm2_pytss.types import TPM2B_PUBLIC

    attrs = (
        TPMA_OBJECT.FIXEDTPM
        | TPMA_OBJECT.FIXEDPARENT
        | TPMA_OBJECT.SENSITIVEDATAORIGIN
        | TPMA_OBJECT.USERWITHAUTH
        | TPMA_OBJECT.SIGN_ENCRYPT
    )
    if noda:
        attrs |= TPMA_OBJECT.NODA
    return TPM2B_PUBLIC.parse("ecc256:ecdsa-sha256", objectAttributes=attrs).publicArea


def create_key_blob(
    path: Path, tcti: str, noda: bool = True, auth: bytes | None = None
) -> TpmKeyInfo:
    """Generate a P-256 signing key inside the TPM and write its TSS2 PEM blob to ``path``.

    ``noda``: the key has an empty password, so dictionary-attack protection guards nothing
    and would only let a lockout stop the sealing of records; it is off unless asked for.
    ``auth``: a person's PIN that every use of the key must present (a signer's key; with
    dictionary-attack protection on, the TPM locks out after repeated wrong PINs).
    """
    if path.exists():
        raise TpmError(
            f"a TPM key blob already exists at {path}",
            "refusing to overwrite it; remove it only if the appliance is being re-provisioned",
        )
    tss = import_tss()
    from tpm2_pytss.tsskey import TSSPrivKey

    with tpm_context(tcti) as ectx:
        try:
            blob = with_room(ectx, tcti, lambda: TSSPrivKey.create(
                ectx, _ecc_template(noda), password=auth))
            name = srk_name(ectx)
        except tss.TSS2_Exception as exc:
            raise map_tpm_error(exc, tcti, "creating the key") from exc
    public = load_public_key(blob.public.to_pem())
    write_atomic(path, bytes(blob.to_pem()), mode=0o600)
    return TpmKeyInfo(key_id(public), name)


class TpmKey:
    """A loaded TPM key: ES256 COSE signatures (raw r||s) and a ``cryptography`` view of it."""

    def __init__(
        self,
        ectx: Any,
        handle: Any,
        public: ec.EllipticCurvePublicKey,
        tcti: str,
        sign_delay_ms: float = 0.0,
    ) -> None:
        self._ectx = ectx
        self._handle = handle
        self._public = public
        self._kid = key_id(public)
        self._tcti = tcti
        self._delay_s = max(0.0, sign_delay_ms) / 1000.0
        self._lock = threading.Lock()  # one ESAPI context is not safe across threads

    @classmethod
    def open(
        cls,
        path: Path,
        tcti: str = DEFAULT_TCTI,
        *,
        expected: TpmKeyInfo | None = None,
        sign_delay_ms: float = 0.0,
        auth: bytes | None = None,
    ) -> TpmKey:
        """Load the blob at ``path`` into the TPM; refuse a foreign, damaged or swapped blob.
        ``auth`` is the key's PIN, if it has one (checked by the TPM at signing)."""
        tss = import_tss()
        from tpm2_pytss.tsskey import TSSPrivKey

        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise TpmBlobCorruptedError(
                f"the TPM key blob {path} cannot be read ({exc.strerror})",
                _ACTION_CORRUPT.format(path=path),
                tcti,
            ) from exc
        try:
            blob = TSSPrivKey.from_pem(pem)
            public = load_public_key(blob.public.to_pem())
        except Exception as exc:  # any parse failure of the file is damage to it
            raise TpmBlobCorruptedError(
                f"the TPM key blob {path} is not a valid TSS2 PEM key ({exc})",
                _ACTION_CORRUPT.format(path=path),
                tcti,
            ) from exc
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise TpmBlobCorruptedError(
                f"the TPM key blob {path} does not hold a P-256 key",
                _ACTION_CORRUPT.format(path=path),
                tcti,
            )
        if expected is not None and key_id(public) != expected.kid:
            raise TpmBlobCorruptedError(
                f"the TPM key blob {path} holds key {key_id(public).hex()}, "
                f"not the provisioned key {expected.kid.hex()}",
                _ACTION_CORRUPT.format(path=path),
                tcti,
            )
        ectx = connect(tcti)

        def load_under_srk() -> Any:
            srk = owner_srk(ectx)
            try:
                name = bytes(ectx.tr_get_name(srk))
                if expected is not None and name != expected.srk_name:
                    raise TpmForeignKeyError(
                        f"the device key in {path} belongs to another TPM (storage key "
                        f"{expected.srk_name.hex()[:16]}…, this TPM has {name.hex()[:16]}…)",
                        _ACTION_FOREIGN,
                        tcti,
                    )
                handle = ectx.load(srk, blob.private, blob.public)
                if auth:
                    ectx.tr_set_auth(handle, auth)
                return handle
            finally:
                ectx.flush_context(srk)

        try:
            handle = with_room(ectx, tcti, load_under_srk)
        except tss.TSS2_Exception as exc:
            ectx.close()
            err = map_tpm_error(exc, tcti, "loading the device key", path)
            if isinstance(err, TpmBlobCorruptedError) and expected is None:
                # Without the provisioned SRK name we cannot tell the two apart.
                raise TpmForeignKeyError(
                    f"the TPM rejects the key blob {path}: it was made by another TPM "
                    f"or is damaged ({exc})",
                    _ACTION_FOREIGN,
                    tcti,
                ) from exc
            raise err from exc
        except BaseException:
            ectx.close()
            raise
        return cls(ectx, handle, public, tcti, sign_delay_ms)

    @property
    def backing(self) -> Backing:
        return Backing.TPM

    @property
    def alg(self) -> int:
        return ALG_ES256

    @property
    def kid(self) -> bytes:
        return self._kid

    @property
    def tcti(self) -> str:
        return self._tcti

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def public_key_pem(self) -> str:
        return public_pem(self._public)

    def _sign_digest(self, digest: bytes) -> Any:
        tss = import_tss()
        from tpm2_pytss.constants import TPM2_ALG, TPM2_RH, TPM2_ST
        from tpm2_pytss.types import TPMT_SIG_SCHEME, TPMT_TK_HASHCHECK

        scheme = TPMT_SIG_SCHEME(scheme=TPM2_ALG.ECDSA)
        scheme.details.any.hashAlg = TPM2_ALG.SHA256
        ticket = TPMT_TK_HASHCHECK(tag=TPM2_ST.HASHCHECK, hierarchy=TPM2_RH.NULL)
        with self._lock:
            if self._handle is None:
                raise TpmError("the TPM key is closed", "open the key again", self._tcti)
            if self._delay_s:
                time.sleep(self._delay_s)  # simulates a discrete chip; the chip is busy meanwhile
            try:
                return self._ectx.sign(self._handle, digest, scheme, ticket)
            except tss.TSS2_Exception as exc:
                raise map_tpm_error(exc, self._tcti, "signing") from exc

    def sign(self, tbs: bytes) -> bytes:
        """ES256 over ``tbs`` as COSE wants it: raw r||s, each half left-padded to 32 bytes."""
        sig = self._sign_digest(hashlib.sha256(tbs).digest())
        r = bytes(sig.signature.ecdsa.signatureR)
        s = bytes(sig.signature.ecdsa.signatureS)
        return r.rjust(32, b"\0") + s.rjust(32, b"\0")

    def sign_der(self, data: bytes) -> bytes:
        """ECDSA-SHA256 over ``data`` as CMS/X.509 want it: DER."""
        return bytes(self._sign_digest(hashlib.sha256(data).digest()))

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        """A ``cryptography`` private-key object whose operations run in the TPM (CSR, certs)."""
        return _TpmEccPrivateKey(self)

    def with_context(self, doing: str, fn: Callable[[Any], T]) -> T:
        """``fn(ectx)`` on this key's ESAPI context, under its lock; TSS errors mapped."""
        tss = import_tss()
        with self._lock:
            if self._handle is None:
                raise TpmError("the TPM key is closed", "open the key again", self._tcti)
            try:
                return fn(self._ectx)
            except tss.TSS2_Exception as exc:
                raise map_tpm_error(exc, self._tcti, doing) from exc

    def monotonic_counter(self) -> TpmCounter:
        """The TPM's NV monotonic counter that anchors the log's tail (appliance/anchors.py)."""
        return TpmCounter(self)

    def close(self) -> None:
        with self._lock:
            if self._handle is None:
                return
            try:
                self._ectx.flush_context(self._handle)
            except Exception:  # the TPM may already be gone; closing must not raise
                pass
            finally:
                self._handle = None
                self._ectx.close()


# -- the NV monotonic counter ----------------------------------------------------------------

# An index in the owner's range (TCG handle registry: 0x01000000-0x013FFFFF), "LU" for luutru.
NV_COUNTER_INDEX = 0x01004C55
_RC_HANDLE = 0x18B  # TPM_RC_HANDLE (and its parameter-numbered forms): no such index
_RC_NV_UNINITIALIZED = 0x14A
# The most increments one call makes to catch up (a crash between storing a checkpoint and
# advancing the chip leaves it one behind per process that was sealing).
MAX_CATCH_UP = 64


def _counter_public(index: int) -> Any:
    from tpm2_pytss.constants import TPM2_ALG, TPM2_NT, TPMA_NV
    from tpm2_pytss.types import TPM2B_NV_PUBLIC, TPMS_NV_PUBLIC

    # Empty authorisation for read and increment (a counter only goes up: whoever may touch
    # the chip can at worst make the box think it lost checkpoints), no dictionary-attack
    # lockout, and not ORDERLY: an orderly counter jumps ahead after a power cut, which would
    # look exactly like a rollback.
    attrs = (TPMA_NV.AUTHREAD | TPMA_NV.AUTHWRITE | TPMA_NV.NO_DA
             | (TPM2_NT.COUNTER << TPMA_NV.TPM2_NT_SHIFT))
    return TPM2B_NV_PUBLIC(
        nvPublic=TPMS_NV_PUBLIC(nvIndex=index, nameAlg=TPM2_ALG.SHA256, attributes=attrs,
                                dataSize=8)
    )


def _nv_handle(ectx: Any, index: int) -> Any:
    """The ESYS handle of NV ``index``, defining the counter if the TPM has none there."""
    from tpm2_pytss.constants import TPM2_NT, TPMA_NV

    tss = import_tss()
    try:
        handle = ectx.tr_from_tpmpublic(index)
    except tss.TSS2_Exception as exc:
        if int(exc.rc) & 0xFFF != _RC_HANDLE:
            raise
        # A counter defined afresh starts at the highest value any counter of this TPM ever
        # held (TPM 2.0 part 1, NV counters): undefining it cannot roll it back either.
        handle = ectx.nv_define_space(b"", _counter_public(index))
        ectx.nv_increment(handle, auth_handle=handle)
        return handle
    public, _ = ectx.nv_read_public(handle)
    attrs = TPMA_NV(public.nvPublic.attributes)
    if attrs.nt != TPM2_NT.COUNTER or public.nvPublic.dataSize != 8:
        raise TpmError(
            f"NV index 0x{index:08x} of the TPM is not a counter",
            "another program uses that NV index; free it or report it to the province's "
            "technical support",
        )
    if not attrs & TPMA_NV.WRITTEN:
        ectx.nv_increment(handle, auth_handle=handle)
    return handle


def _nv_value(ectx: Any, handle: Any) -> int:
    return int.from_bytes(bytes(ectx.nv_read(handle, 8, 0, auth_handle=handle)), "big")


class TpmCounter:
    """The TPM's NV monotonic counter at ``NV_COUNTER_INDEX``, on the device key's context:
    advanced after each stored checkpoint; a disk image put back cannot lower it."""

    def __init__(self, key: TpmKey, index: int = NV_COUNTER_INDEX) -> None:
        self._key = key
        self._index = index

    def read(self) -> int:
        return self._key.with_context(
            "reading the NV counter", lambda ectx: _nv_value(ectx, _nv_handle(ectx, self._index))
        )

    def advance_to(self, value: int) -> int:
        def run(ectx: Any) -> int:
            handle = _nv_handle(ectx, self._index)
            now = _nv_value(ectx, handle)
            for _ in range(MAX_CATCH_UP):
                if now >= value:
                    break
                ectx.nv_increment(handle, auth_handle=handle)
                now += 1
            return now

        return self._key.with_context("advancing the NV counter", run)


class _TpmEccPrivateKey(ec.EllipticCurvePrivateKey):
    """Only ``sign`` and ``public_key`` work: the private value never leaves the TPM."""

    def __init__(self, key: TpmKey) -> None:
        self._key = key

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
    ) -> bytes:
        from cryptography.hazmat.primitives import hashes

        if not (
            isinstance(signature_algorithm, ec.ECDSA)
            and isinstance(signature_algorithm.algorithm, hashes.SHA256)
        ):
            raise ValueError("the TPM key signs ECDSA with SHA-256 only")
        return self._key.sign_der(bytes(data))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    @property
    def curve(self) -> ec.EllipticCurve:
        return ec.SECP256R1()

    @property
    def key_size(self) -> int:
        return 256

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise ValueError("the TPM signing key does not do key exchange")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise ValueError("the TPM key is not exportable")

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        raise ValueError("the TPM key is not exportable")

    def __copy__(self) -> _TpmEccPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> _TpmEccPrivateKey:
        return self
