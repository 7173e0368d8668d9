"""Users, sessions and API tokens of the appliance's web UI, kept in the appliance database.

Why the appliance database (tables ``web_*``) rather than a file of our own: creating a user or
changing a role is a log event, and keeping the row and its event in ONE writer transaction
means neither can exist without the other; users are also backed up with the records. What
never enters the log: password hashes, session and token secrets (the log is shipped to the
province). Sessions and tokens are stored only as keyed hashes (HMAC with the session secret
from the secret store), so a copy of the database opens no session.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import nacl.exceptions
import nacl.pwhash

from . import clock as clockmod
from . import writes
from .errors import AccountError, AuthError
from .kinds import Kind
from .passwords import is_common, validate_password
from .store import Store, Txn
from .text import nfc

# Columns added to web_tokens after its first release, in the form ALTER TABLE takes them.
TOKEN_COLUMNS = {
    "expires_at": "TEXT NOT NULL DEFAULT ''",
    "scope": "TEXT NOT NULL DEFAULT 'read-write' CHECK (scope IN ('read', 'read-write'))",
}
DDL = """
CREATE TABLE IF NOT EXISTS web_users (
  username TEXT PRIMARY KEY,
  full_name TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL,
  pw_hash BLOB NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  created_at TEXT NOT NULL,
  changed_log_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS web_sessions (
  token_hash BLOB PRIMARY KEY,
  username TEXT NOT NULL,
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS web_sessions_user ON web_sessions (username);
CREATE TABLE IF NOT EXISTS web_tokens (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL,
  name TEXT NOT NULL,
  token_hash BLOB NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0,
  """ + ",\n  ".join(f"{k} {v}" for k, v in TOKEN_COLUMNS.items()) + ");\n"


class Role(StrEnum):
    """The roles of DESIGN.md; what each may do is the route table in ``routes.py``."""

    CLERK = "clerk"  # văn thư
    ARCHIVIST = "archivist"  # lưu trữ
    LEADER = "leader"  # lãnh đạo
    HANDLER = "handler"  # chuyên viên: handles the văn bản đến the leader assigns them
    TECHNICIAN = "technician"  # kỹ thuật: device pages only, never record contents
    AUDITOR = "auditor"  # kiểm tra: read-only


ROLE_LABELS_VI = {
    Role.CLERK: "Văn thư",
    Role.ARCHIVIST: "Lưu trữ",
    Role.LEADER: "Lãnh đạo",
    Role.HANDLER: "Chuyên viên",
    Role.TECHNICIAN: "Kỹ thuật",
    Role.AUDITOR: "Kiểm tra (chỉ đọc)",
}

# Who may see classified (Mode 03, mật) documents: the clerk registers and numbers them
# (Decree 30 Điều 15.2, 22.4) and the leader directs them; nobody else needs their contents.
CLEARED_ROLES = frozenset({Role.CLERK, Role.LEADER})

class TokenScope(StrEnum):
    """What an API token may do: only read (GET, HEAD), or read and write."""

    READ = "read"
    READ_WRITE = "read-write"


TOKEN_DAYS = 90  # default lifetime of an API token
MAX_TOKEN_DAYS = 365
_USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")
SESSION_COOKIE = "luutru_session"
TOKEN_PREFIX = "lt_"


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    full_name: str = ""
    disabled: bool = False

    @property
    def cleared(self) -> bool:
        return self.role in CLEARED_ROLES


@dataclass(frozen=True)
class TokenAuth:
    """Who an API token speaks for, and what it may do."""

    user: User
    token_id: str
    scope: TokenScope


@dataclass(frozen=True)
class HashParams:
    """argon2id cost; the defaults are libsodium's INTERACTIVE (64 MiB, 2 passes)."""

    opslimit: int = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
    memlimit: int = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE


# Verifying an unknown username against this keeps its timing close to a known one's.
_DUMMY_HASH: bytes | None = None


def ensure_schema(store: Store) -> None:
    """Create the module's tables (idempotent); runs through the writer."""

    def job(txn: Txn) -> None:
        for stmt in DDL.split(";"):
            if stmt.strip():
                txn.conn.execute(stmt)
        _upgrade_tokens(txn.conn, store.clock.now())

    store.writer_or_fail().submit(job, guarded=False).result()


def _upgrade_tokens(conn: sqlite3.Connection, now: dt.datetime) -> None:
    """Give the tokens of a database older than token expiry and scopes both.

    They become read-write (all a token could do before) and expire ``TOKEN_DAYS`` after this
    upgrade, not after their creation: a script's token made a year ago keeps working for 90
    days after the update instead of failing the moment the box updates, and no token lives
    forever. The date is written once, here, so reading a token never writes.
    """
    have = {row[1] for row in conn.execute("PRAGMA table_info(web_tokens)")}
    for name, decl in TOKEN_COLUMNS.items():
        if name not in have:
            conn.execute(f"ALTER TABLE web_tokens ADD COLUMN {name} {decl}")
    conn.execute(
        "UPDATE web_tokens SET expires_at = ? WHERE expires_at = ''",
        (clockmod.iso(now + dt.timedelta(days=TOKEN_DAYS)),),
    )


def validate_username(value: str) -> str:
    name = nfc(value).lower()
    if not 2 <= len(name) <= 40 or not set(name) <= _USERNAME_CHARS:
        raise AccountError(
            "Tên đăng nhập gồm 2–40 ký tự a–z, 0–9, dấu chấm, gạch ngang hoặc gạch dưới "
            "(username: 2–40 of a–z 0–9 . _ -)"
        )
    return name


def validate_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise AccountError(f"Vai trò '{value}' không hợp lệ; chọn một trong: {roles}") from None


def validate_scope(value: str) -> TokenScope:
    try:
        return TokenScope(value)
    except ValueError:
        raise AccountError(
            f"Quyền của khóa '{value}' không hợp lệ; chọn read hoặc read-write "
            "(scope: read or read-write)"
        ) from None


def validate_token_days(days: int) -> int:
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise AccountError(
            f"Thời hạn của khóa phải từ 1 đến {MAX_TOKEN_DAYS} ngày "
            f"(a token lasts 1–{MAX_TOKEN_DAYS} days)"
        )
    return days


def hash_password(password: str, params: HashParams | None = None) -> bytes:
    p = params or HashParams()
    return bytes(nacl.pwhash.argon2id.str(password.encode("utf-8"), p.opslimit, p.memlimit))


def check_password(pw_hash: bytes, password: str) -> bool:
    try:
        return bool(nacl.pwhash.verify(pw_hash, password.encode("utf-8")))
    except nacl.exceptions.InvalidkeyError:
        return False


def _dummy_hash() -> bytes:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    return _DUMMY_HASH


def _now(store: Store) -> str:
    return clockmod.iso(store.clock.now())


class Accounts:
    """The library behind sign-in, the users page and ``luutru user``."""

    def __init__(
        self, store: Store, secret: bytes, hash_params: HashParams | None = None
    ) -> None:
        if len(secret) < 32:
            raise AccountError("the session secret must be at least 32 bytes")
        self.store = store
        self._secret = secret
        self.hash_params = hash_params or HashParams()

    # -- keyed hashes -----------------------------------------------------------------------

    def keyed(self, purpose: str, value: str) -> bytes:
        return hmac.new(self._secret, f"{purpose}\0{value}".encode(), hashlib.sha256).digest()

    def csrf_token(self, binding: str) -> str:
        """A CSRF token bound to the session (or the pre-session cookie) it is used with."""
        return self.keyed("csrf", binding).hex()

    def check_csrf(self, binding: str, token: str) -> bool:
        return bool(binding) and hmac.compare_digest(self.csrf_token(binding), token or "")

    # -- users ------------------------------------------------------------------------------

    def _run(self, fn: Callable[[Txn], Any]) -> Any:
        return self.store.writer_or_fail().call(fn)

    def add_user(
        self, username: str, role: str, password: str, actor: str, full_name: str = ""
    ) -> User:
        """Create a user; the log records who, which role and when — never the hash."""
        name = validate_username(username)
        r = validate_role(role)
        pw_hash = hash_password(validate_password(password), self.hash_params)
        full = nfc(full_name)[:100]

        def job(txn: Txn) -> User:
            if txn.conn.execute("SELECT 1 FROM web_users WHERE username = ?", (name,)).fetchone():
                raise AccountError(f"Người dùng '{name}' đã tồn tại (user already exists)")
            entry = writes.append_event(
                txn, Kind.USER_ADD, actor, {"username": name, "role": r.value, "full_name": full},
                "user", name,
            )
            txn.conn.execute(
                "INSERT INTO web_users (username, full_name, role, pw_hash, created_at, "
                "changed_log_index) VALUES (?, ?, ?, ?, ?, ?)",
                (name, full, r.value, pw_hash, entry.at, entry.index),
            )
            return User(name, r, full)

        user: User = self._run(job)
        return user

    def _change(self, username: str, actor: str, kind: str, detail: dict[str, Any],
                sql: str, args: tuple[Any, ...], drop_sessions: bool) -> None:
        def job(txn: Txn) -> None:
            if not txn.conn.execute(
                "SELECT 1 FROM web_users WHERE username = ?", (username,)
            ).fetchone():
                raise AccountError(f"Không có người dùng '{username}' (no such user)")
            entry = writes.append_event(
                txn, kind, actor, {"username": username, **detail}, "user", username
            )
            txn.conn.execute(sql, (*args, entry.index, username))
            if drop_sessions:
                txn.conn.execute("DELETE FROM web_sessions WHERE username = ?", (username,))
                txn.conn.execute(
                    "UPDATE web_tokens SET revoked = 1 WHERE username = ?", (username,)
                )

        self._run(job)

    def set_role(self, username: str, role: str, actor: str) -> None:
        r = validate_role(role)
        self._change(
            username, actor, Kind.USER_ROLE, {"role": r.value},
            "UPDATE web_users SET role = ?, changed_log_index = ? WHERE username = ?",
            (r.value,), drop_sessions=True,
        )

    def set_disabled(self, username: str, disabled: bool, actor: str) -> None:
        self._change(
            username, actor, Kind.USER_DISABLE if disabled else Kind.USER_ENABLE, {},
            "UPDATE web_users SET disabled = ?, changed_log_index = ? WHERE username = ?",
            (1 if disabled else 0,), drop_sessions=disabled,
        )

    def set_password(self, username: str, password: str, actor: str) -> None:
        """Replace a password; every session and token of the user ends (the log says so)."""
        pw_hash = hash_password(validate_password(password), self.hash_params)
        self._change(
            username, actor, Kind.USER_PASSWORD, {},
            "UPDATE web_users SET pw_hash = ?, changed_log_index = ? WHERE username = ?",
            (pw_hash,), drop_sessions=True,
        )

    def list_users(self) -> list[User]:
        rows = self.store.reader().execute(
            "SELECT username, role, full_name, disabled FROM web_users ORDER BY username"
        ).fetchall()
        return [User(r[0], Role(r[1]), r[2], bool(r[3])) for r in rows]

    def display_names(self) -> dict[str, str]:
        """Every account's name as people know it (its full name, else the account name),
        disabled ones included: they still appear in histories and registers."""
        return {u.username: u.full_name or u.username for u in self.list_users()}

    def get_user(self, username: str) -> User | None:
        row = self.store.reader().execute(
            "SELECT username, role, full_name, disabled FROM web_users WHERE username = ?",
            (username,),
        ).fetchone()
        return None if row is None else User(row[0], Role(row[1]), row[2], bool(row[3]))

    def count_users(self) -> int:
        return int(self.store.reader().execute("SELECT count(*) FROM web_users").fetchone()[0])

    def authenticate(self, username: str, password: str) -> User:
        """The user if the password is right and the account enabled; else AuthError."""
        try:
            name = validate_username(username)
        except AccountError:
            name = ""
        row = None
        if name:
            row = self.store.reader().execute(
                "SELECT username, role, full_name, disabled, pw_hash FROM web_users "
                "WHERE username = ?",
                (name,),
            ).fetchone()
        if row is None:
            check_password(_dummy_hash(), password)
            raise AuthError("Sai tên đăng nhập hoặc mật khẩu (wrong username or password)")
        if not check_password(bytes(row[4]), password) or row[3]:
            raise AuthError("Sai tên đăng nhập hoặc mật khẩu (wrong username or password)")
        return User(row[0], Role(row[1]), row[2], False)

    # -- sessions ---------------------------------------------------------------------------

    def create_session(self, user: User, ttl: dt.timedelta) -> str:
        """A new random session token; only its keyed hash is stored."""
        token = secrets.token_urlsafe(32)
        now = self.store.clock.now()
        key = self.keyed("session", token)

        def job(txn: Txn) -> None:
            txn.conn.execute(
                "DELETE FROM web_sessions WHERE expires_at < ?", (clockmod.iso(now),)
            )
            txn.conn.execute(
                "INSERT INTO web_sessions (token_hash, username, created_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (key, user.username, clockmod.iso(now), clockmod.iso(now + ttl)),
            )

        self.store.writer_or_fail().submit(job, guarded=False).result()
        return token

    def session_user(self, token: str) -> User | None:
        if not token or len(token) > 100:
            return None
        row = self.store.reader().execute(
            "SELECT u.username, u.role, u.full_name FROM web_sessions s "
            "JOIN web_users u ON u.username = s.username "
            "WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled = 0",
            (self.keyed("session", token), _now(self.store)),
        ).fetchone()
        return None if row is None else User(row[0], Role(row[1]), row[2])

    def end_session(self, token: str) -> None:
        key = self.keyed("session", token)

        def job(txn: Txn) -> None:
            txn.conn.execute("DELETE FROM web_sessions WHERE token_hash = ?", (key,))

        self.store.writer_or_fail().submit(job, guarded=False).result()

    # -- API tokens -------------------------------------------------------------------------

    def create_token(
        self, username: str, name: str, actor: str, days: int = TOKEN_DAYS,
        scope: TokenScope | str = TokenScope.READ_WRITE,
    ) -> tuple[str, str]:
        """(token id, the secret token shown once), valid ``days`` days. The log records the
        id, name, scope and expiry only."""
        label = nfc(name)[:80] or "token"
        sc = validate_scope(scope)
        validate_token_days(days)
        token_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        key = self.keyed("token", token)
        expires = clockmod.iso(self.store.clock.now() + dt.timedelta(days=days))

        def job(txn: Txn) -> None:
            if not txn.conn.execute(
                "SELECT 1 FROM web_users WHERE username = ? AND disabled = 0", (username,)
            ).fetchone():
                raise AccountError(f"Không có người dùng '{username}' đang hoạt động")
            entry = writes.append_event(
                txn, Kind.USER_TOKEN_CREATE, actor,
                {"username": username, "token_id": token_id, "name": label,
                 "scope": sc.value, "expires_at": expires}, "user", username,
            )
            txn.conn.execute(
                "INSERT INTO web_tokens (id, username, name, token_hash, created_at, "
                "expires_at, scope) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token_id, username, label, key, entry.at, expires, sc.value),
            )

        self._run(job)
        return token_id, token

    def revoke_token(self, token_id: str, username: str | None, actor: str) -> None:
        """Revoke a token; ``username`` limits it to that user's own tokens."""

        def job(txn: Txn) -> None:
            row = txn.conn.execute(
                "SELECT username FROM web_tokens WHERE id = ? AND revoked = 0", (token_id,)
            ).fetchone()
            if row is None or (username is not None and row[0] != username):
                raise AccountError(f"Không có khóa API '{token_id}' (no such token)")
            writes.append_event(
                txn, Kind.USER_TOKEN_REVOKE, actor, {"username": row[0], "token_id": token_id},
                "user", row[0],
            )
            txn.conn.execute("UPDATE web_tokens SET revoked = 1 WHERE id = ?", (token_id,))

        self._run(job)

    def list_tokens(self, username: str) -> list[dict[str, Any]]:
        """The user's tokens not revoked, expired ones included (``expired`` says so)."""
        now = _now(self.store)
        rows = self.store.reader().execute(
            "SELECT id, name, created_at, expires_at, scope FROM web_tokens "
            "WHERE username = ? AND revoked = 0 ORDER BY created_at",
            (username,),
        ).fetchall()
        return [{"id": r[0], "name": r[1], "created_at": r[2], "expires_at": r[3],
                 "scope": r[4], "expired": r[3] <= now} for r in rows]

    def token_user(self, token: str) -> TokenAuth | None:
        """The user and scope of a valid token: not revoked, not expired, user enabled."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 120:
            return None
        row = self.store.reader().execute(
            "SELECT u.username, u.role, u.full_name, t.id, t.scope FROM web_tokens t "
            "JOIN web_users u ON u.username = t.username "
            "WHERE t.token_hash = ? AND t.revoked = 0 AND t.expires_at > ? AND u.disabled = 0",
            (self.keyed("token", token), _now(self.store)),
        ).fetchone()
        if row is None:
            return None
        return TokenAuth(User(row[0], Role(row[1]), row[2]), row[3], TokenScope(row[4]))


def random_password() -> str:
    """A first password people can type: 4 groups of 4 letters and digits, no look-alikes."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    while True:  # 19 characters; a draw the rule would refuse is all but impossible, yet redrawn
        pw = "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))
        if not is_common(pw):
            return pw


def has_tables(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'web_users'"
        ).fetchone()
        is not None
    )
