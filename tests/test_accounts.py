"""The accounts library (appliance/accounts.py), without the pages: users and their log events,
argon2id passwords, sessions and API tokens kept only as keyed hashes, CSRF tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from typing import Any

import nacl.pwhash
import pytest

from appliance import cbor
from appliance.accounts import (
    MAX_TOKEN_DAYS,
    TOKEN_PREFIX,
    Accounts,
    HashParams,
    Role,
    TokenScope,
    User,
    check_password,
    ensure_schema,
    has_tables,
    hash_password,
    random_password,
    validate_role,
    validate_scope,
    validate_token_days,
    validate_username,
)
from appliance.clock import ManualClock
from appliance.errors import AccountError, AuthError
from appliance.passwords import validate_password
from appliance.store import Store

# Real argon2id at libsodium's minimum cost, as the web tests use it.
FAST_HASH = HashParams(nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)
SECRET = b"s" * 32
PW = "mật khẩu đủ dài 123"
NEW_PW = "một mật khẩu khác hẳn 456"
DAY = 86400


@pytest.fixture
def accounts(store: Store) -> Accounts:
    ensure_schema(store)
    return Accounts(store, SECRET, FAST_HASH)


@pytest.fixture
def clerk(accounts: Accounts) -> User:
    return accounts.add_user("vanthu", "clerk", PW, "admin", "Nguyễn Thị Lan")


def _log(store: Store, since: int = 0) -> list[dict[str, Any]]:
    return [cbor.loads(raw) for _, raw in store.entries(since)]


def _raw_db(store: Store) -> bytes:
    """Every byte of the database as it is on disk: the main file and its write-ahead log."""
    with open(store.db_path, "rb") as fh:
        db = fh.read()
    try:
        with open(store.db_path + "-wal", "rb") as fh:
            db += fh.read()
    except FileNotFoundError:
        pass
    return db


# -- validation -----------------------------------------------------------------------------


def test_usernames_are_folded_to_lower_case_and_checked() -> None:
    """2–40 of a–z 0–9 . _ -, after NFC and lower-casing; anything else is refused."""
    assert validate_username("VanThu.01") == "vanthu.01"
    assert validate_username("ab") == "ab" and validate_username("a" * 40) == "a" * 40
    for bad in ("a", "a" * 41, "nguyễn", "van thu", "vanthu@ubnd", ""):
        with pytest.raises(AccountError, match="Tên đăng nhập gồm 2–40 ký tự"):
            validate_username(bad)


def test_roles_scopes_and_token_days_are_checked() -> None:
    """Only the five roles, the two scopes and 1–365 days are accepted."""
    assert validate_role("leader") is Role.LEADER
    with pytest.raises(AccountError, match="Vai trò 'admin' không hợp lệ"):
        validate_role("admin")
    assert validate_scope("read") is TokenScope.READ
    with pytest.raises(AccountError, match="scope: read or read-write"):
        validate_scope("write")
    assert validate_token_days(1) == 1 and validate_token_days(MAX_TOKEN_DAYS) == MAX_TOKEN_DAYS
    for days in (0, -1, MAX_TOKEN_DAYS + 1):
        with pytest.raises(AccountError, match="a token lasts 1–365 days"):
            validate_token_days(days)


def test_cleared_roles_are_the_clerk_and_the_leader() -> None:
    """Only văn thư and lãnh đạo may see classified documents."""
    assert {r for r in Role if User("u", r).cleared} == {Role.CLERK, Role.LEADER}


def test_a_short_session_secret_is_refused(store: Store) -> None:
    """The HMAC key of sessions and tokens must be at least 32 bytes."""
    with pytest.raises(AccountError, match="at least 32 bytes"):
        Accounts(store, b"k" * 31)


# -- passwords ------------------------------------------------------------------------------


def test_passwords_are_argon2id_and_any_change_to_the_hash_fails_closed() -> None:
    """The right password checks; a wrong one, a flipped bit, a cut or foreign hash do not."""
    h = hash_password(PW, FAST_HASH)
    assert h.startswith(b"$argon2id$v=19$") and PW.encode() not in h
    assert check_password(h, PW) and not check_password(h, PW + " ")
    assert hash_password(PW, FAST_HASH) != h  # salted
    for i in range(len(h) - 43, len(h)):  # every byte of the encoded digest
        b = bytearray(h)
        b[i] ^= 0x01
        assert check_password(bytes(b), PW) is False, i
    for bad in (b"", b"garbage", h[:-5], h.replace(b"argon2id", b"argon2ix")):
        assert check_password(bad, PW) is False


def test_random_first_passwords_pass_the_rule_and_differ() -> None:
    """Four groups of four letters and digits without look-alikes, accepted by the rule."""
    pws = {random_password() for _ in range(20)}
    assert len(pws) == 20
    for pw in pws:
        groups = pw.split("-")
        assert len(groups) == 4 and all(len(g) == 4 for g in groups)
        assert not set(pw) & set("0o1il")
        assert validate_password(pw) == pw


# -- users ----------------------------------------------------------------------------------


def test_adding_a_user_logs_who_and_which_role_but_never_the_hash(
    store: Store, accounts: Accounts
) -> None:
    """One user.add entry with username, role and name; the hash stays in web_users only."""
    before = store.tree_head()[0]
    user = accounts.add_user("VanThu", "clerk", PW, "admin", "Nguyễn Thị Lan")
    assert user == User("vanthu", Role.CLERK, "Nguyễn Thị Lan")
    [entry] = _log(store, before)
    assert entry["kind"] == "user.add" and entry["actor"] == "admin"
    assert entry["data"] == {"username": "vanthu", "role": "clerk", "full_name": "Nguyễn Thị Lan"}
    row = store.reader().execute(
        "SELECT pw_hash, changed_log_index FROM web_users WHERE username = 'vanthu'"
    ).fetchone()
    assert check_password(bytes(row[0]), PW) and row[1] == before
    assert b"$argon2id$" not in b"".join(raw for _, raw in store.entries())
    assert accounts.list_users() == [user] and accounts.get_user("vanthu") == user
    assert accounts.get_user("nobody") is None and accounts.count_users() == 1


def test_a_refused_user_leaves_no_row_and_no_entry(
    store: Store, accounts: Accounts, clerk: User
) -> None:
    """A duplicate, a weak password or a bad role is refused before anything is written."""
    size = store.tree_head()[0]
    with pytest.raises(AccountError, match="đã tồn tại"):
        accounts.add_user("VANTHU", "leader", PW, "admin")
    with pytest.raises(AccountError, match="12"):
        accounts.add_user("lanhdao", "leader", "ngắn", "admin")
    with pytest.raises(AccountError, match="Vai trò"):
        accounts.add_user("lanhdao", "boss", PW, "admin")
    assert store.tree_head()[0] == size and accounts.count_users() == 1


def test_authenticate_gives_one_answer_for_every_failure(accounts: Accounts, clerk: User) -> None:
    """Right password: the user. Wrong password, unknown or malformed name, disabled account:
    the same AuthError, so that a guess learns nothing."""
    assert accounts.authenticate("VanThu", PW) == clerk
    accounts.add_user("lanhdao", "leader", PW, "admin")
    accounts.set_disabled("lanhdao", True, "admin")
    for name, pw in (("vanthu", NEW_PW), ("khongco", PW), ("x", PW), ("lanhdao", PW)):
        with pytest.raises(AuthError, match=r"^Sai tên đăng nhập hoặc mật khẩu"):
            accounts.authenticate(name, pw)


def test_role_disable_and_password_changes_are_logged_and_end_access(
    store: Store, accounts: Accounts, clerk: User
) -> None:
    """Each change is one entry; a new role, disabling or a new password ends the user's
    sessions and revokes their tokens; enabling again does not bring them back."""
    def access() -> tuple[str, str]:
        return (accounts.create_session(clerk, _days(1)),
                accounts.create_token("vanthu", "máy quét", "admin")[1])

    size = store.tree_head()[0]
    for change in (
        lambda: accounts.set_role("vanthu", "archivist", "admin"),
        lambda: accounts.set_disabled("vanthu", True, "admin"),
        lambda: accounts.set_password("vanthu", NEW_PW, "admin"),
    ):
        if accounts.get_user("vanthu").disabled:  # type: ignore[union-attr]
            accounts.set_disabled("vanthu", False, "admin")
        session, token = access()
        change()
        assert accounts.session_user(session) is None and accounts.token_user(token) is None
    kinds = [e["kind"] for e in _log(store, size)]
    assert [k for k in kinds if k != "user.token_create"] == [
        "user.role", "user.disable", "user.enable", "user.password"]
    assert accounts.get_user("vanthu") == User("vanthu", Role.ARCHIVIST, "Nguyễn Thị Lan")
    with pytest.raises(AuthError, match="Sai"):
        accounts.authenticate("vanthu", PW)
    assert accounts.authenticate("vanthu", NEW_PW).role is Role.ARCHIVIST
    with pytest.raises(AccountError, match="Không có người dùng 'khongco'"):
        accounts.set_role("khongco", "clerk", "admin")


# -- sessions -------------------------------------------------------------------------------


def _days(n: float) -> dt.timedelta:
    return dt.timedelta(days=n)


def test_a_session_opens_until_it_expires_or_ends(
    accounts: Accounts, clerk: User, clock: ManualClock
) -> None:
    """session_user answers for the token until its expiry or end_session; junk never does."""
    token = accounts.create_session(clerk, _days(1))
    assert accounts.session_user(token) == User("vanthu", Role.CLERK, "Nguyễn Thị Lan")
    clock.advance(DAY - 1)
    assert accounts.session_user(token) == clerk
    clock.advance(1)
    assert accounts.session_user(token) is None
    other = accounts.create_session(clerk, _days(1))
    accounts.end_session(other)
    assert accounts.session_user(other) is None
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for junk in ("", "x" * 101, flipped):
        assert accounts.session_user(junk) is None


def test_sessions_are_stored_only_as_keyed_hashes(
    store: Store, accounts: Accounts, clerk: User, clock: ManualClock
) -> None:
    """The database holds HMAC(secret, token) only: neither the token nor a plain SHA-256 of
    it; the same database under another secret opens no session. Expired rows are dropped
    when the next session is made."""
    token = accounts.create_session(clerk, _days(1))
    db = _raw_db(store)
    assert token.encode() not in db and hashlib.sha256(token.encode()).digest() not in db
    assert accounts.keyed("session", token) in db
    assert Accounts(store, b"t" * 32, FAST_HASH).session_user(token) is None
    clock.advance(2 * DAY)
    accounts.create_session(clerk, _days(1))
    rows = store.reader().execute("SELECT count(*) FROM web_sessions").fetchone()[0]
    assert rows == 1


# -- API tokens -----------------------------------------------------------------------------


def test_a_token_speaks_for_its_user_with_its_scope_until_it_expires(
    store: Store, accounts: Accounts, clerk: User, clock: ManualClock
) -> None:
    """create_token: lt_<id>_<secret>, logged without the secret; valid for ``days``."""
    size = store.tree_head()[0]
    token_id, token = accounts.create_token("vanthu", "máy quét", "vanthu", days=2,
                                            scope="read")
    assert token.startswith(f"{TOKEN_PREFIX}{token_id}_") and len(token_id) == 12
    [entry] = _log(store, size)
    assert entry["kind"] == "user.token_create"
    assert set(entry["data"]) == {"username", "token_id", "name", "scope", "expires_at"}
    assert token.encode() not in b"".join(raw for _, raw in store.entries())
    auth = accounts.token_user(token)
    assert auth is not None
    assert (auth.user, auth.token_id, auth.scope) == (clerk, token_id, TokenScope.READ)
    [listed] = accounts.list_tokens("vanthu")
    assert (listed["id"], listed["name"], listed["scope"], listed["expired"]) == (
        token_id, "máy quét", "read", False)
    clock.advance(2 * DAY)
    assert accounts.token_user(token) is None
    assert accounts.list_tokens("vanthu")[0]["expired"] is True


def test_a_changed_or_foreign_token_is_not_accepted(accounts: Accounts, clerk: User) -> None:
    """Any changed character, a missing prefix or an over-long value gives None."""
    _, token = accounts.create_token("vanthu", "t", "admin")
    assert accounts.token_user(token) is not None
    for i in range(len(TOKEN_PREFIX), len(token)):
        changed = token[:i] + ("x" if token[i] != "x" else "y") + token[i + 1:]
        assert accounts.token_user(changed) is None, i
    assert accounts.token_user(token[len(TOKEN_PREFIX):]) is None
    assert accounts.token_user(token + "a" * 120) is None


def test_revoking_a_token_is_limited_to_its_owner_unless_unrestricted(
    store: Store, accounts: Accounts, clerk: User
) -> None:
    """A user revokes only their own tokens; an administrator (username None) any; a token
    is revoked once."""
    accounts.add_user("lanhdao", "leader", PW, "admin")
    token_id, token = accounts.create_token("vanthu", "t", "vanthu")
    with pytest.raises(AccountError, match=f"Không có khóa API '{token_id}'"):
        accounts.revoke_token(token_id, "lanhdao", "lanhdao")
    assert accounts.token_user(token) is not None
    accounts.revoke_token(token_id, "vanthu", "vanthu")
    assert accounts.token_user(token) is None and accounts.list_tokens("vanthu") == []
    with pytest.raises(AccountError, match="no such token"):
        accounts.revoke_token(token_id, None, "admin")
    assert _log(store)[-1]["data"] == {"username": "vanthu", "token_id": token_id}


def test_tokens_are_refused_for_a_disabled_or_unknown_user_and_bad_arguments(
    accounts: Accounts, clerk: User
) -> None:
    """No token for someone who cannot sign in, for 0 days, or with an unknown scope."""
    accounts.set_disabled("vanthu", True, "admin")
    with pytest.raises(AccountError, match="Không có người dùng 'vanthu' đang hoạt động"):
        accounts.create_token("vanthu", "t", "admin")
    with pytest.raises(AccountError, match="đang hoạt động"):
        accounts.create_token("khongco", "t", "admin")
    accounts.set_disabled("vanthu", False, "admin")
    with pytest.raises(AccountError, match="a token lasts"):
        accounts.create_token("vanthu", "t", "admin", days=0)
    with pytest.raises(AccountError, match="scope"):
        accounts.create_token("vanthu", "t", "admin", scope="admin")
    assert accounts.list_tokens("vanthu") == []


# -- CSRF and schema ------------------------------------------------------------------------


def test_csrf_tokens_are_bound_to_their_session(accounts: Accounts) -> None:
    """A token checks only with the binding it was made for; none without a binding."""
    token = accounts.csrf_token("session-a")
    assert len(token) == 64 and accounts.check_csrf("session-a", token)
    assert not accounts.check_csrf("session-b", token)
    assert not accounts.check_csrf("", accounts.csrf_token(""))
    assert not accounts.check_csrf("session-a", "")
    flipped = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert not accounts.check_csrf("session-a", flipped)
    assert Accounts(accounts.store, b"t" * 32).csrf_token("session-a") != token


def test_schema_is_created_once_and_detected(store: Store) -> None:
    """has_tables says whether the web tables exist; ensure_schema makes them idempotently."""
    assert has_tables(store.reader()) is False
    size = store.tree_head()[0]
    ensure_schema(store)
    ensure_schema(store)
    assert has_tables(store.reader()) is True and store.tree_head()[0] == size
    conn = sqlite3.connect(store.db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            conn.execute("INSERT INTO web_users VALUES ('x', '', 'clerk', x'00', 2, '', 0)")
    finally:
        conn.close()
