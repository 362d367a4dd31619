"""The checkpoints and proofs API, checked the way outsiders check it: an independent RFC 9162
implementation from PyPI (pymerkle) and the offline verifier, never only our own code."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apiaccess.keys import api_client_get_or_create, api_key_issue
from attestation import services
from ledger import services as ledger_services
from ledger.core.commands import Command
from ledger.core.state import account_id_for
from proofs.core.checkpoint import open_checkpoint
from proofs.core.proof_json import verify_consistency_proof
from proofs.verify import verify_balance, verify_receipt

pymerkle = pytest.importorskip("pymerkle")
from pymerkle.core import _inclusion_path_layout  # noqa: E402  (after importorskip)
from pymerkle.hasher import MerkleHasher  # noqa: E402
from pymerkle.proof import InclusionProof, InvalidProof  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def acc(did: str) -> str:
    return account_id_for("EUR", did)


def bearer(username: str | None, name: str) -> dict:
    client = api_client_get_or_create(name=name, username=username)
    _, raw = api_key_issue(client=client, scopes=["read"])
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def api(ledger_runtime):
    """A sealed EUR ledger with three blocks; clients: anonymous, auditor, outsider."""
    ledger_services.ledger_create(code="EUR", scale=2)
    services.ledger_seal(ledger="EUR")
    for batch in range(2):
        alice, bob = acc(f"alice-{batch}"), acc(f"bob-{batch}")
        results = ledger_services.commands_execute(ledger="EUR", commands=[
            Command("open_account", f"o1-{batch}", did=f"alice-{batch}"),
            Command("open_account", f"o2-{batch}", did=f"bob-{batch}"),
            Command("mint", f"m-{batch}", account=alice, amount=50_000),
            Command("transfer", f"t-{batch}", account=alice, to=bob, amount=1_234),
            Command("hold", f"h-{batch}", account=bob, amount=34, hold_id=f"hld_eur_{batch}"),
        ])
        assert all(result.ok for result in results)
        services.ledger_seal(ledger="EUR")
    auditor = get_user_model().objects.create_superuser("auditor", password="x")
    return {
        "client": Client(),
        "auditor": bearer(auditor.username, "auditor"),
        "outsider": bearer(None, "outsider"),
        "runtime": ledger_runtime,
        "events": list(ledger_runtime.shards.get("EUR").store.read()),
    }


def get(api, path: str, who: str | None = None, status: int = 200) -> dict:
    response = api["client"].get(path, **(api[who] if who else {}))
    assert response.status_code == status, response.content
    return response.json()


def public_key(api) -> str:
    [key] = get(api, "/api/v1/checkpoints/keys")["keys"]
    assert (key["ledger"], key["origin"]) == ("EUR", "ledgerfs.local/EUR")
    assert key["public_key"].startswith(f"ledgerfs.local/EUR+{key['key_id']}+")
    return key["public_key"]


def test_checkpoints_are_public_and_their_fields_are_what_the_note_signs(api):
    key = public_key(api)
    latest = get(api, "/api/v1/checkpoints/latest?ledger=EUR")
    signed = open_checkpoint(latest["note"], key)
    assert latest["public_key"] == key
    assert latest["height"] == signed.height == 3
    assert latest["tree_size"] == signed.tree_size == len(api["events"])
    assert latest["root_hash"] == signed.root_hash.hex()
    assert latest["state_root"] == signed.state_root.hex()
    assert latest["state_sum"] == signed.state_sum == 100_000
    assert get(api, "/api/v1/checkpoints/3?ledger=EUR") == latest
    first = get(api, "/api/v1/checkpoints/1?ledger=EUR")
    assert (first["height"], first["tree_size"]) == (1, 2)

    assert get(api, "/api/v1/checkpoints/4?ledger=EUR", status=404)["code"] == "not_sealed"
    assert get(api, "/api/v1/checkpoints/0?ledger=EUR", status=404)["code"] == "not_sealed"
    missing = get(api, "/api/v1/checkpoints/latest?ledger=USD", status=404)
    assert missing["code"] == "ledger_not_found"
    assert get(api, "/api/v1/checkpoints/latest?ledger=x;", status=404)["code"]
    assert get(api, "/api/v1/checkpoints/latest", status=422)["code"] == "request_invalid"


def test_inclusion_proofs_from_the_server_verify_with_pymerkle(api):
    """Every event at every sealed size, verified by an implementation we did not write."""
    hasher = MerkleHasher("sha256", security=True)
    sizes = [get(api, f"/api/v1/checkpoints/{h}?ledger=EUR")["tree_size"] for h in (1, 2, 3)]
    for size in (*sizes, 5):
        for event in api["events"][:size]:
            event_id = json.loads(event.body)["id"]
            proof = get(api, f"/api/v1/proofs/inclusion/{event_id}?tree_size={size}", "auditor")
            assert set(proof) == {
                "leaf_index", "tree_size", "leaf_hash", "path", "root_hash", "leaf_data",
            }
            data = base64.b64decode(proof["leaf_data"])
            assert data == event.body
            leaf = hasher.hash_buff(data)
            assert proof["leaf_hash"] == leaf.hex()
            index = proof["leaf_index"] + 1  # pymerkle counts leaves from one
            rule, _ = _inclusion_path_layout(index, size)
            theirs = InclusionProof(
                "sha256", True, size, index, rule, [leaf, *map(bytes.fromhex, proof["path"])]
            )
            root = bytes.fromhex(proof["root_hash"])
            pymerkle.verify_inclusion(leaf, root, theirs, index=index, size=size)
            flipped = bytearray(root)
            flipped[0] ^= 1
            with pytest.raises(InvalidProof):
                pymerkle.verify_inclusion(leaf, bytes(flipped), theirs, index=index, size=size)
    latest = get(api, "/api/v1/checkpoints/latest?ledger=EUR")
    event_id = json.loads(api["events"][0].body)["id"]
    default = get(api, f"/api/v1/proofs/inclusion/{event_id}", "auditor")
    assert (default["tree_size"], default["root_hash"]) == (
        latest["tree_size"], latest["root_hash"]
    )


def test_consistency_proofs_are_public_and_link_every_pair_of_checkpoints(api):
    checkpoints = [get(api, f"/api/v1/checkpoints/{h}?ledger=EUR") for h in (1, 2, 3)]
    for old in checkpoints:
        for new in checkpoints:
            if old["tree_size"] > new["tree_size"]:
                continue
            proof = get(api, "/api/v1/proofs/consistency?ledger=EUR"
                             f"&first={old['tree_size']}&second={new['tree_size']}")
            verify_consistency_proof(
                proof, bytes.fromhex(old["root_hash"]), bytes.fromhex(new["root_hash"])
            )
    latest = get(api, "/api/v1/proofs/consistency?ledger=EUR&first=1")
    assert latest["second_size"] == checkpoints[-1]["tree_size"]
    too_big = f"/api/v1/proofs/consistency?ledger=EUR&first=1&second={len(api['events']) + 1}"
    assert get(api, too_big, status=404)["code"] == "not_sealed"
    swapped = "/api/v1/proofs/consistency?ledger=EUR&first=5&second=2"
    assert get(api, swapped, status=404)["code"] == "not_sealed"


def test_balance_proofs_sum_to_the_outstanding_liabilities(api):
    key = public_key(api)
    outstanding = api["runtime"].shards.get("EUR").writer.machine.state.outstanding()
    bob = acc("bob-1")
    bundle = get(api, f"/api/v1/proofs/balance/{bob}", "auditor")
    assert bundle["proof"]["root_sum"] == bundle["checkpoint"]["state_sum"] == outstanding
    assert "account " + bob in verify_balance(bundle, key)
    leaf = json.loads(base64.b64decode(bundle["proof"]["leaf_data"]))
    assert leaf["buckets"] == {"available": 1_200, "held": 34, "bonded": 0, "fee": 0,
                               "promo": 0}
    assert bundle["proof"]["leaf_sum"] == 1_234

    early = get(api, f"/api/v1/proofs/balance/{acc('alice-0')}?height=2", "auditor")
    assert early["checkpoint"]["height"] == 2
    assert early["proof"]["root_sum"] == 50_000
    verify_balance(early, key)
    absent = get(api, f"/api/v1/proofs/balance/{acc('alice-1')}?height=2", "auditor", 404)
    assert absent["code"] == "not_sealed"

    for mutate in (
        lambda b: b["proof"].__setitem__("leaf_sum", b["proof"]["leaf_sum"] + 1),
        lambda b: b["proof"].__setitem__("leaf_sum", -1),
        lambda b: b["proof"]["path"][0].__setitem__("sum", -5),
        lambda b: b["proof"].__setitem__("root_sum", b["proof"]["root_sum"] - 1),
        lambda b: b["checkpoint"].__setitem__("state_sum", 1),
        lambda b: b.__setitem__("account", acc("alice-1")),
    ):
        altered = copy.deepcopy(bundle)
        mutate(altered)
        assert get_verify(api, "balance", altered)["valid"] is False


def get_verify(api, kind: str, proof: dict, **extra) -> dict:
    response = api["client"].post(
        "/api/v1/proofs/verify", {"kind": kind, "proof": proof, **extra},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_receipts_verify_offline_and_every_mutation_is_rejected(api, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(public_key(api))
    event = json.loads(api["events"][-3].body)
    receipt = get(api, f"/api/v1/receipts/{event['id']}", "auditor")
    assert receipt["seq"] == event["seq"]
    assert receipt["checkpoint"]["tree_size"] == receipt["inclusion"]["tree_size"]
    assert get_verify(api, "receipt", receipt)["valid"] is True

    def offline(bundle: dict) -> subprocess.CompletedProcess:
        path = tmp_path / "receipt.json"
        path.write_text(json.dumps(bundle))
        return subprocess.run(
            [sys.executable, "-m", "proofs.verify", "receipt", str(path), "--key",
             str(key_file)], cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=60,
        )

    valid = offline(receipt)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert valid.stdout.startswith(f"VALID: event {event['id']} ({event['type']}")

    def flip(hex_string: str) -> str:
        return f"{int(hex_string[0], 16) ^ 1:x}{hex_string[1:]}"

    body = base64.b64decode(receipt["leaf_data"]).replace(b'"amount":', b'"amount": ', 1)
    mutations = {
        "path bit": lambda r: r["inclusion"]["path"].__setitem__(
            0, flip(r["inclusion"]["path"][0])),
        "wrong index": lambda r: r["inclusion"].__setitem__("leaf_index", r["seq"] - 1),
        "wrong size": lambda r: r["inclusion"].__setitem__("tree_size", r["seq"] + 1),
        "truncated path": lambda r: r["inclusion"]["path"].pop(),
        "extended path": lambda r: r["inclusion"]["path"].append("00" * 32),
        "wrong root": lambda r: r["inclusion"].__setitem__("root_hash", "11" * 32),
        "event bytes": lambda r: r.__setitem__("leaf_data", base64.b64encode(body).decode()),
        "signed line": lambda r: r["checkpoint"].__setitem__(
            "note", r["checkpoint"]["note"].replace("height 3", "height 4")),
        "other event id": lambda r: r.__setitem__("event_id", "evt_eur_0"),
    }
    for name, mutate in mutations.items():
        altered = copy.deepcopy(receipt)
        mutate(altered)
        result = offline(altered)
        assert result.returncode == 1, (name, result.stdout, result.stderr)
        assert result.stdout.startswith("INVALID: "), name
        assert get_verify(api, "receipt", altered)["valid"] is False, name


def test_checkpoint_signatures_fail_on_a_changed_line_a_wrong_key_or_a_wrong_key_name(api):
    from proofs.core.note import generate_signer

    latest = get(api, "/api/v1/checkpoints/latest?ledger=EUR")
    inclusion = get(api, "/api/v1/proofs/inclusion/" + json.loads(api["events"][0].body)["id"],
                    "auditor")
    cases = {
        "bad_signature": (latest["note"].replace("state-sum 100000", "state-sum 100001"), None),
        "key_id_mismatch": (latest["note"], generate_signer("ledgerfs.local/EUR")[1]),
        "unknown_key_name": (latest["note"], generate_signer("ledgerfs.local/USD")[1]),
    }
    assert get_verify(api, "inclusion", inclusion, checkpoint=latest)["valid"] is True
    for code, (note, key) in cases.items():
        result = get_verify(api, "inclusion", inclusion, checkpoint={"note": note},
                            **({"public_key": key} if key else {}))
        assert (result["valid"], result["code"]) == (False, code), result


def test_post_verify_checks_consistency_and_refuses_incomplete_requests(api):
    old = get(api, "/api/v1/checkpoints/1?ledger=EUR")
    new = get(api, "/api/v1/checkpoints/3?ledger=EUR")
    proof = get(api, f"/api/v1/proofs/consistency?ledger=EUR&first={old['tree_size']}"
                     f"&second={new['tree_size']}")
    ok = get_verify(api, "consistency", proof, checkpoint=new, first_checkpoint=old)
    assert ok["valid"] is True and "append-only" in ok["summary"]
    backwards = get_verify(api, "consistency", proof, checkpoint=old, first_checkpoint=new)
    assert backwards == {"valid": False, "code": "tree_size_mismatch",
                         "message": backwards["message"]}

    response = api["client"].post("/api/v1/proofs/verify", {"kind": "consistency",
                                  "proof": proof, "checkpoint": new},
                                  content_type="application/json")
    assert response.status_code == 422
    assert response.json()["code"] == "verification_request_invalid"
    response = api["client"].post("/api/v1/proofs/verify", {"kind": "magic", "proof": {}},
                                  content_type="application/json")
    assert response.status_code == 422


def test_event_proofs_need_a_key_and_permission_to_see_the_event(api):
    event_id = json.loads(api["events"][-1].body)["id"]
    for path in (f"/api/v1/proofs/inclusion/{event_id}", f"/api/v1/receipts/{event_id}",
                 f"/api/v1/proofs/balance/{acc('bob-1')}"):
        assert get(api, path, status=401)["code"] == "authentication_required"
        assert get(api, path, "outsider", 403)["code"] == "permission_denied"
    assert get(api, "/api/v1/receipts/evt_eur_ffff", "outsider", 403)["code"]
    missing = get(api, "/api/v1/receipts/evt_eur_ffff", "auditor", 404)
    assert missing["code"] == "event_not_found"
    unsealed = ledger_services.commands_execute(ledger="EUR", commands=[
        Command("open_account", "late", did="late"),
    ])[0]
    late = get(api, f"/api/v1/receipts/{unsealed.event.body['id']}", "auditor", 404)
    assert late["code"] == "not_sealed"


def test_verify_receipt_is_the_same_function_the_api_uses(api):
    event_id = json.loads(api["events"][3].body)["id"]
    receipt = get(api, f"/api/v1/receipts/{event_id}", "auditor")
    assert verify_receipt(receipt, public_key(api)).startswith(f"event {event_id}")


def test_the_offline_verifier_checks_balance_and_consistency_files(api, tmp_path):
    key = tmp_path / "eur.key"
    key.write_text(public_key(api))
    files = {
        "balance": get(api, f"/api/v1/proofs/balance/{acc('alice-0')}", "auditor"),
        "old": get(api, "/api/v1/checkpoints/1?ledger=EUR"),
        "new": get(api, "/api/v1/checkpoints/3?ledger=EUR"),
    }
    files["consistency"] = get(
        api, f"/api/v1/proofs/consistency?ledger=EUR&first={files['old']['tree_size']}"
    )
    for name, value in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(value))
    (tmp_path / "old.checkpoint").write_text(files["old"]["note"])

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "proofs.verify", *args, "--key", str(key)],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
            env={"PYTHONPATH": str(REPOSITORY_ROOT), "PATH": "/usr/bin:/bin"},
        )

    balance = run("balance", "balance.json")
    assert balance.returncode == 0, balance.stdout + balance.stderr
    assert "towards liabilities of 100000" in balance.stdout
    consistency = run("consistency", "old.checkpoint", "new.json", "consistency.json")
    assert consistency.returncode == 0, consistency.stdout + consistency.stderr
    assert "append-only" in consistency.stdout
    swapped = run("consistency", "new.json", "old.checkpoint", "consistency.json")
    assert swapped.returncode == 1 and "[tree_size_mismatch]" in swapped.stdout
    missing = run("balance", "nothing.json")
    assert missing.returncode == 2 and "cannot read nothing.json" in missing.stderr
    other_key = tmp_path / "other.key"
    other_key.write_text(get(api, "/api/v1/checkpoints/keys")["keys"][0]["public_key"]
                         .replace("ledgerfs.local/EUR", "ledgerfs.local/USD"))
    wrong = subprocess.run(
        [sys.executable, "-m", "proofs.verify", "balance", "balance.json", "--key",
         str(other_key)], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(REPOSITORY_ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert wrong.returncode == 1 and "INVALID: " in wrong.stdout, wrong.stdout + wrong.stderr
