"""The command line is a contract: flags, JSON shapes and exit codes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from click.testing import CliRunner

from appliance import merkle
from appliance.checkpoint import verify_checkpoint
from appliance.keys.verify import load_public_key
from luutru.cli import main

from .conftest import ORG_ID, ORG_NAME


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return res.exit_code, res.output


def test_full_contract(tmp_path: Path) -> None:
    """init, import, verify, search and every log subcommand give the documented shapes."""
    d = str(tmp_path / "a")
    code, out = run("init", "--data", d, "--org-id", ORG_ID, "--org-name", ORG_NAME)
    assert code == 0 and "SOFTWARE" in out
    code, _ = run("init", "--data", d, "--org-id", ORG_ID, "--org-name", ORG_NAME)
    assert code == 1  # refuses to overwrite a data folder
    sample = Path(__file__).parents[1] / "appliance" / "data" / "sample" / "registers.jsonl"
    code, out = run("import", "--data", d, str(sample))
    assert code == 0, out
    code, out = run("verify", "--data", d, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["findings"] == []

    code, out = run("log", "checkpoint", "--data", d, "--json")
    cp = json.loads(out)
    assert set(cp) == {"tree_size", "root_hash", "cose_sign1", "public_key"}
    signed = verify_checkpoint(
        base64.b64decode(cp["cose_sign1"]), load_public_key(cp["public_key"])
    )
    assert signed.tree_size == cp["tree_size"] and signed.root_hash.hex() == cp["root_hash"]

    code, out = run("log", "entries", "--data", d, "--json")
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["index"] for x in lines] == list(range(cp["tree_size"]))
    leaves = [merkle.leaf_hash(base64.b64decode(x["leaf"])) for x in lines]
    assert merkle.root_hash(merkle.list_source(leaves), cp["tree_size"]).hex() == cp["root_hash"]

    code, out = run("log", "proof", "--data", d, "--index", "7", "--json")
    proof = json.loads(out)
    assert set(proof) == {"index", "tree_size", "audit_path"}
    merkle.verify_inclusion(
        leaves[7],
        7,
        proof["tree_size"],
        [bytes.fromhex(h) for h in proof["audit_path"]],
        bytes.fromhex(cp["root_hash"]),
    )

    code, out = run("log", "consistency", "--data", d, "--old", "5", "--json")
    cons = json.loads(out)
    assert set(cons) == {"old_size", "new_size", "proof"}
    old_root = merkle.root_hash(merkle.list_source(leaves[:5]), 5)
    merkle.verify_consistency(
        5,
        cons["new_size"],
        old_root,
        bytes.fromhex(cp["root_hash"]),
        [bytes.fromhex(h) for h in cons["proof"]],
    )

    code, out = run("search", "--data", d, "dang ky dat dai", "--json")
    assert code == 0 and out.strip()
    assert all("id" in json.loads(x) for x in out.splitlines())


def test_data_from_environment_and_usage_errors(tmp_path: Path) -> None:
    """--data falls back to $LUUTRU_DATA; bad usage exits 2; a missing folder says what to do."""
    d = str(tmp_path / "b")
    code, _ = run("init", "--org-id", ORG_ID, "--org-name", ORG_NAME, env={"LUUTRU_DATA": d})
    assert code == 0 and (Path(d) / "appliance.json").exists()
    code, _ = run("verify", "--bogus")
    assert code == 2
    code, out = run("verify", "--data", str(tmp_path / "none"))
    assert code == 1 and "luutru init" in out
    code, out = run("log", "proof", "--data", d, "--index", "99999", "--json")
    assert code == 2


def test_verify_exit_one_on_findings(tmp_path: Path) -> None:
    """verify exits 1 and lists each finding when something was tampered with."""
    import sqlite3

    d = tmp_path / "c"
    run("init", "--data", str(d), "--org-id", ORG_ID, "--org-name", ORG_NAME)
    sqlite3.connect(d / "luutru.db").execute(
        "UPDATE fonds SET \"FondName\" = 'x'"
    ).connection.commit()
    code, out = run("verify", "--data", str(d))
    assert code == 1 and "projection.mismatch" in out


def test_bad_org_id_refused(tmp_path: Path) -> None:
    """An agency identifier not of the form 000.00.00.H49 is refused with a clear message."""
    code, out = run(
        "init", "--data", str(tmp_path / "d"), "--org-id", "UBND-XA", "--org-name", ORG_NAME
    )
    assert code == 1 and "000.00.00.H49" in out
