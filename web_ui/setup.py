"""First users of a new appliance: created once, passwords printed once, never stored in clear."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from appliance.accounts import Accounts, ensure_schema, random_password
from appliance.keys.sealing import open_secret_store
from appliance.store import Store

FIRST_USERS = (
    ("vanthu", "clerk", "Văn thư"),
    ("lanhdao", "leader", "Lãnh đạo"),
)


def ensure_first_users(data_dir: Path) -> Iterator[str]:
    """Create the first clerk and leader if the appliance has no user; say what to type."""
    with Store.open(data_dir) as store:
        ensure_schema(store)
        secret = open_secret_store(store.data_dir, store.config.key).get_or_create("session")
        accounts = Accounts(store, secret)
        if accounts.count_users():
            yield (f"web users exist ({accounts.count_users()}); sign in with yours "
                   "(forgotten? luutru user passwd --data DIR --username U)")
            return
        yield "first sign-in (these passwords are shown only now; change them under Tài khoản):"
        for username, role, name in FIRST_USERS:
            password = random_password()
            accounts.add_user(username, role, password, "luutru first-login", name)
            yield f"  {username:8s} ({role:6s})  password: {password}"
        store.wait_sealed()
