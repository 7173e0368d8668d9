"""What every handler needs, built once at start-up: the store, accounts, seal checker, history
index, templates, throttle; one ``Services`` per application under ``SERVICES``."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import jinja2
from aiohttp import web

from appliance.accounts import Accounts, HashParams
from appliance.accounts import ensure_schema as ensure_account_schema
from appliance.datadir import PUBLIC_KEY_NAME
from appliance.keys.sealing import open_secret_store
from appliance.keys.verify import load_public_key
from appliance.store import Store

from . import permissions
from .changes import DocumentsCache
from .config import WebConfig
from .history import LogIndex
from .render import make_envs
from .seal import SealChecker
from .throttle import Throttle

# Small partial index for the home page's "due for reply" list; owned by the web UI.
EXTRA_DDL = (
    'CREATE INDEX IF NOT EXISTS web_documents_due ON documents ("DueDate") '
    'WHERE "DueDate" IS NOT NULL',
)


def _no_key() -> AbstractContextManager[Any]:
    raise RuntimeError("open_services sets the agency key opener")


def _open_agency_key(data_dir: Any) -> AbstractContextManager[Any]:
    from appliance.keys.agency import open_agency_key

    return open_agency_key(data_dir)


@dataclass
class Services:
    """What every handler needs, built once at start-up."""

    config: WebConfig
    store: Store
    accounts: Accounts
    seal: SealChecker
    log_index: LogIndex
    envs: dict[str, jinja2.Environment]
    throttle: Throttle = field(default_factory=Throttle)
    key_backing: str = "software"
    secrets_description: str = ""
    secrets_sealed: bool = False  # to the TPM (else 0600 files)
    started_at: float = 0.0
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    documents_cache: DocumentsCache = field(default_factory=DocumentsCache)
    use_approvers: frozenset[Any] = permissions.USE_APPROVERS  # appliance.json use.approver_roles
    # The agency key that certifies copies (TPM or the office's token), opened per use.
    open_agency_key: Callable[[], AbstractContextManager[Any]] = field(default=lambda: _no_key())

    @property
    def org_name(self) -> str:
        return self.store.config.org_name

    def session_ttl(self) -> dt.timedelta:
        return dt.timedelta(hours=self.config.session_hours)


SERVICES = web.AppKey("services", Services)


def open_services(
    config: WebConfig, store: Store, hash_params: HashParams | None = None
) -> Services:
    """Prepare the module's tables and secrets on an open, writable store."""
    ensure_account_schema(store)

    def extra(txn: Any) -> None:
        for stmt in EXTRA_DDL:
            txn.conn.execute(stmt)

    store.writer_or_fail().submit(extra, guarded=False).result()
    secrets = open_secret_store(store.data_dir, store.config.key)
    accounts = Accounts(store, secrets.get_or_create("session"), hash_params)
    if store.key is not None:
        public_key = load_public_key(store.key.public_key_pem())
        backing = store.key.backing.value
    else:
        public_key = load_public_key((store.data_dir / PUBLIC_KEY_NAME).read_bytes())
        backing = store.config.key.backing.value
    index = LogIndex(store)
    index.ensure_schema()
    return Services(
        config=config,
        store=store,
        accounts=accounts,
        seal=SealChecker(store, public_key),
        log_index=index,
        envs=make_envs(),
        key_backing=backing,
        secrets_description=secrets.describe(),
        secrets_sealed=secrets.backing.value == "tpm",
        use_approvers=permissions.approver_roles(store.config.use.approver_roles),
        open_agency_key=lambda: _open_agency_key(store.data_dir),
    )
