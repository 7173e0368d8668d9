"""A test PKI with real revocation and time-stamping services on loopback (certomancer).

Certificates, CRLs, OCSP responses and RFC 3161 time-stamps all come from certomancer
(the tool pyHanko's own tests use), served over HTTP on 127.0.0.1 by an aiohttp server that
this module starts in a thread, so anything that fetches them (pyHanko's validator, the centre's
LTV job in a real `luutru central` process) talks to real services.

Fixtures
--------
``pki_services`` (session scope)
    One ``PkiServices`` for the whole run: keys are made once (~0.3 s), the server stays up.
``pki_factory`` (function scope)
    ``pki_factory(extra={"agency": public_key}, subject=...)`` starts another ``PkiServices``
    that also issues a certificate for each given *public* key (a TPM or PKCS#11 agency key
    whose private half never leaves its device); stopped at the end of the test.

What a ``PkiServices`` holds (labels for ``identity(label)``)
-------------------------------------------------------------
- ``root``: the trust anchor (``trust_roots``); it issues ``ca`` and the TSAs and publishes a CRL.
- ``ca``: the issuing CA ("Test CA chuyên dùng"); an OCSP responder (delegated, ocsp-nocheck)
  answers for what it issues, and it publishes a CRL. End-entity certificates carry both
  URLs (CRL distribution point, AIA OCSP).
- ``signer``: valid from yesterday for 2 years (key in memory: ``identity("signer").key``).
- ``revoked``: like ``signer``, revoked an hour ago (key compromise).
- ``expired``: valid from 3 years ago until a year ago.
- ``untrusted``: issued by ``other-root``, which is in no trust list.
- TSAs: ``tsa`` (certificate valid 30 years) and ``tsa-short`` (valid 3 years, for tests of
  re-timestamping before a TSA certificate ages out); ``tsa_url(label)``.
- every key in ``extra``: a certificate from ``ca`` for that public key (valid 2 years, or
  ``extra_validity``), with the same CRL and OCSP URLs.

Time and reachability
---------------------
``with pki.at(moment):`` makes every service answer as if it were ``moment`` (OCSP
producedAt/thisUpdate, CRL thisUpdate, time-stamp genTime); ``with pki.offline():`` closes the
listening socket, so clients get "connection refused" until the block ends.

Helpers: ``identity(label).pdf_signer()`` is a pyHanko signer (for ``appliance.pdfsign.sign_pdf``,
which takes any object with ``pdf_signer()``), ``trust_roots_pem()``, ``der(cert)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ARCH = "luutru"
TSA_LONG = "tsa"
TSA_SHORT = "tsa-short"
SOFTWARE_KEYS = ("root", "ca", "ocsp", "signer", "revoked", "expired", "other-root", "untrusted")
RSA_KEYS = (TSA_LONG, TSA_SHORT)  # most public TSAs still sign with RSA


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


@dataclass(frozen=True)
class Identity:
    """A certificate of the test PKI, its chain up to (not including) the root, and its key."""

    label: str
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # issuers, leaf excluded, root excluded
    key: Any = None  # a cryptography private key; None for an external (public-only) key

    def pdf_signer(self) -> Any:
        """A pyHanko SimpleSigner for this identity (software key only)."""
        from asn1crypto import keys as asn1_keys
        from asn1crypto import x509 as asn1_x509
        from pyhanko.sign.signers import SimpleSigner
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        if self.key is None:
            raise ValueError(f"{self.label} is an external key: sign with its device")
        leaf = asn1_x509.Certificate.load(der(self.cert))
        others = [asn1_x509.Certificate.load(der(c)) for c in self.chain]
        key_der = self.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return SimpleSigner(
            signing_cert=leaf,
            signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
            cert_registry=SimpleCertificateStore.from_certs([leaf, *others]),
        )

    def chain_pem(self) -> bytes:
        return b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in (self.cert, *self.chain)
        )


def _write_key(path: Path, key: Any) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


_KEY_CACHE: dict[str, Any] = {}  # keys are slow to make (RSA); one set per process


def _key(label: str) -> Any:
    if label not in _KEY_CACHE:
        _KEY_CACHE[label] = (
            rsa.generate_private_key(65537, 2048)
            if label in RSA_KEYS
            else ec.generate_private_key(ec.SECP256R1())
        )
    return _KEY_CACHE[label]


def _validity(start: datetime, end: datetime) -> dict[str, str]:
    return {"valid-from": _when(start), "valid-to": _when(end)}


def _ku(*usages: str) -> dict[str, Any]:
    return {
        "id": "key_usage",
        "critical": True,
        "smart-value": {"schema": "key-usage", "params": list(usages)},
    }


def _crl_dp(repo: str) -> dict[str, Any]:
    return {
        "id": "crl_distribution_points",
        "smart-value": {"schema": "crl-dist-url", "params": {"crl-repo-names": [repo]}},
    }


def _aia(responder: str) -> dict[str, Any]:
    return {
        "id": "authority_information_access",
        "smart-value": {"schema": "aia-urls", "params": {"ocsp-responder-names": [responder]}},
    }


def _end_entity(start: datetime, end: datetime, issuer: str = "ca") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "issuer": issuer,
        "validity": {"valid-from": _when(start), "valid-to": _when(end)},
        "extensions": [_ku("digital_signature", "non_repudiation")],
    }
    if issuer == "ca":
        spec["extensions"] += [_crl_dp("ca"), _aia("ca")]
    return spec


def build_config(
    keydir: Path,
    prefix: str,
    now: datetime,
    extra: Mapping[str, Any],
    subjects: Mapping[str, Any],
    extra_validity: timedelta,
) -> dict[str, Any]:
    """The certomancer configuration (as a dict) of the test PKI, keys written to ``keydir``."""
    keys: dict[str, Any] = {}
    for label in (*SOFTWARE_KEYS, *RSA_KEYS):
        _write_key(keydir / f"{label}.key.pem", _key(label))
        keys[label] = {"path": f"{label}.key.pem"}
    for label, public in extra.items():
        (keydir / f"{label}.pub.pem").write_bytes(
            public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        keys[label] = {"path": f"{label}.pub.pem", "public-only": True}
    ago = now - timedelta(days=1)
    entities = {
        "root": {"common-name": "Test Root CA luutru"},
        "ca": {"common-name": "Test CA chuyên dùng Chính phủ"},
        "ocsp": {"common-name": "Test OCSP responder"},
        TSA_LONG: {"common-name": "Test TSA"},
        TSA_SHORT: {"common-name": "Test TSA (short-lived certificate)"},
        "signer": {"common-name": "Ủy ban nhân dân xã Thử Nghiệm"},
        "revoked": {"common-name": "Ủy ban nhân dân xã Bị Thu Hồi"},
        "expired": {"common-name": "Ủy ban nhân dân xã Hết Hạn"},
        "other-root": {"common-name": "Untrusted Root"},
        "untrusted": {"common-name": "Ủy ban nhân dân xã Không Tin Cậy"},
    }
    for label in extra:
        subject = subjects.get(label, label)
        # A mapping gives the whole subject (e.g. a user-id carrying an agency's mã định danh).
        entities[label] = (dict(subject) if isinstance(subject, Mapping)
                           else {"common-name": subject})
    ca_ext = [
        {"id": "basic_constraints", "critical": True, "value": {"ca": True}},
        _ku("digital_signature", "key_cert_sign", "crl_sign"),
    ]
    tsa_ext = [
        _ku("digital_signature"),
        {"id": "extended_key_usage", "critical": True, "value": ["time_stamping"]},
        _crl_dp("root"),
    ]
    certs: dict[str, Any] = {
        "root": {
            "subject": "root",
            "subject-key": "root",
            "issuer": "root",
            "authority-key": "root",
            "validity": _validity(ago, now + timedelta(days=365 * 60)),
            "extensions": ca_ext,
        },
        "other-root": {
            "subject": "other-root",
            "subject-key": "other-root",
            "issuer": "other-root",
            "authority-key": "other-root",
            "validity": _validity(ago, now + timedelta(days=365 * 60)),
            "extensions": ca_ext,
        },
        "ca": {
            "issuer": "root",
            "validity": _validity(ago, now + timedelta(days=365 * 50)),
            "extensions": [
                {
                    "id": "basic_constraints",
                    "critical": True,
                    "value": {"ca": True, "path-len-constraint": 0},
                },
                _ku("digital_signature", "key_cert_sign", "crl_sign"),
                _crl_dp("root"),
            ],
        },
        "ocsp": {
            "issuer": "ca",
            "validity": _validity(ago, now + timedelta(days=365 * 50)),
            "extensions": [
                _ku("digital_signature"),
                {"id": "extended_key_usage", "critical": True, "value": ["ocsp_signing"]},
                {"id": "ocsp_no_check"},
            ],
        },
        TSA_LONG: {
            "issuer": "root",
            "validity": _validity(ago, now + timedelta(days=365 * 30)),
            "extensions": tsa_ext,
        },
        TSA_SHORT: {
            "issuer": "root",
            "validity": _validity(ago, now + timedelta(days=365 * 3)),
            "extensions": tsa_ext,
        },
        "signer": _end_entity(ago, now + timedelta(days=730)),
        "revoked": dict(
            _end_entity(ago, now + timedelta(days=730)),
            revocation={
                "revoked-since": _when(now - timedelta(hours=1)),
                "reason": "key_compromise",
            },
        ),
        "expired": _end_entity(now - timedelta(days=3 * 365), now - timedelta(days=365)),
        "untrusted": _end_entity(ago, now + timedelta(days=730), issuer="other-root"),
    }
    for label in extra:
        certs[label] = _end_entity(ago, now + extra_validity)
    return {
        "external-url-prefix": prefix,
        "keysets": {ARCH: {"path-prefix": str(keydir), "keys": keys}},
        "pki-architectures": {
            ARCH: {
                "keyset": ARCH,
                "entity-defaults": {"country-name": "VN", "organization-name": "Test PKI luutru"},
                "entities": entities,
                "certs": certs,
                "services": {
                    "ocsp": {
                        "ca": {"for-issuer": "ca", "responder-cert": "ocsp", "signing-key": "ocsp"}
                    },
                    "crl-repo": {
                        "root": {
                            "for-issuer": "root",
                            "signing-key": "root",
                            "simulated-update-schedule": "P90D",
                        },
                        "ca": {
                            "for-issuer": "ca",
                            "signing-key": "ca",
                            "simulated-update-schedule": "P7D",
                        },
                    },
                    "time-stamping": {
                        TSA_LONG: {"signing-key": TSA_LONG, "signing-cert": TSA_LONG},
                        TSA_SHORT: {"signing-key": TSA_SHORT, "signing-cert": TSA_SHORT},
                    },
                },
            }
        },
    }


@dataclass
class PkiServices:
    """The test PKI and its HTTP services (see the module docstring)."""

    url: str
    arch: Any  # certomancer PKIArchitecture
    clock: datetime | None = None
    _stop: Callable[[], None] = field(default=lambda: None, repr=False)
    _pause: Callable[[bool], None] = field(default=lambda _: None, repr=False)

    def _cert(self, label: str) -> x509.Certificate:
        from certomancer.registry import CertLabel

        return x509.load_der_x509_certificate(self.arch.get_cert(CertLabel(label)).dump())

    @property
    def root(self) -> x509.Certificate:
        return self._cert("root")

    @property
    def trust_roots(self) -> list[x509.Certificate]:
        return [self.root]

    def trust_roots_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.trust_roots)

    def identity(self, label: str) -> Identity:
        issuer = {"untrusted": ("other-root",), "ocsp": ("ca",), "ca": ()}.get(label, ("ca",))
        if label in (TSA_LONG, TSA_SHORT):
            issuer = ()
        key = _KEY_CACHE.get(label) if label in (*SOFTWARE_KEYS, *RSA_KEYS) else None
        chain = tuple(self._cert(i) for i in issuer if i not in ("other-root",))
        return Identity(label, self._cert(label), chain, key)

    def tsa_url(self, label: str = TSA_LONG) -> str:
        return f"{self.url}/{ARCH}/tsa/{label}"

    @property
    def ocsp_url(self) -> str:
        return f"{self.url}/{ARCH}/ocsp/ca"

    def crl_url(self, repo: str = "ca") -> str:
        return f"{self.url}/{ARCH}/crls/{repo}/latest.crl"

    @contextlib.contextmanager
    def at(self, moment: datetime) -> Iterator[None]:
        """Services answer as if it were ``moment`` inside the block."""
        before, self.clock = self.clock, moment
        try:
            yield
        finally:
            self.clock = before

    @contextlib.contextmanager
    def offline(self) -> Iterator[None]:
        """Nothing listens inside the block (connection refused)."""
        self._pause(True)
        try:
            yield
        finally:
            self._pause(False)

    def stop(self) -> None:
        self._stop()


def start_pki(
    keydir: Path,
    extra: Mapping[str, Any] | None = None,
    subjects: Mapping[str, Any] | None = None,
    extra_validity: timedelta = timedelta(days=730),
) -> PkiServices:
    """Make the PKI (keys in ``keydir``) and serve it on a free loopback port."""
    from aiohttp import web
    from certomancer.integrations._animator_shared import FAKE_TIME_HEADER
    from certomancer.integrations.aiohttp_animator import build_animator_app
    from certomancer.registry import ArchLabel, CertomancerConfig

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    prefix = f"http://127.0.0.1:{port}"
    keydir.mkdir(parents=True, exist_ok=True)
    raw = build_config(
        keydir, prefix, datetime.now(UTC), extra or {}, subjects or {}, extra_validity
    )
    config = CertomancerConfig(raw, key_search_dir=str(keydir))
    arch = config.get_pki_arch(ArchLabel(ARCH))
    pki = PkiServices(prefix, arch)

    @web.middleware
    async def fake_time(request: web.Request, handler: Any) -> Any:
        if pki.clock is not None:
            headers = dict(request.headers)
            headers[FAKE_TIME_HEADER] = pki.clock.isoformat()
            request = request.clone(headers=headers)
        return await handler(request)

    app = build_animator_app(config.pki_archs, with_web_ui=False, allow_time_override=True)
    app.middlewares.insert(0, fake_time)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    site: list[Any] = []
    ready = threading.Event()

    async def listen() -> None:
        s = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
        await s.start()
        site[:] = [s]

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(listen())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="pki-services", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the test PKI's services did not start")

    def pause(down: bool) -> None:
        async def toggle() -> None:
            if down:
                await site[0].stop()
            else:
                await listen()

        asyncio.run_coroutine_threadsafe(toggle(), loop).result(10)

    def stop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    pki._pause = pause
    pki._stop = stop
    return pki


@pytest.fixture(scope="session")
def pki_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PkiServices]:
    """The session's test PKI with OCSP, CRLs and TSAs on loopback (module docstring)."""
    pki = start_pki(tmp_path_factory.mktemp("pki"))
    yield pki
    pki.stop()


@pytest.fixture
def pki_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., PkiServices]]:
    """Start a test PKI that also certifies the given public keys; stopped after the test."""
    started: list[PkiServices] = []

    def make(
        extra: Mapping[str, Any] | None = None,
        subjects: Mapping[str, Any] | None = None,
        extra_validity: timedelta = timedelta(days=730),
    ) -> PkiServices:
        pki = start_pki(tmp_path_factory.mktemp("pki"), extra, subjects, extra_validity)
        started.append(pki)
        return pki

    yield make
    for pki in started:
        pki.stop()
