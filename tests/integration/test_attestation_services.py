"""Sealing through the Django services: read models, keys, digest sinks, verify_digests,
log export and the offline verifier, tampering detection, the embedded in-process beat."""

from __future__ import annotations

import io
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from rocksdict import Options, Rdict

from attestation import services
from attestation.keys import SigningKeyError, signing_key_get
from attestation.models import Block, Checkpoint, DigestDelivery
from attestation.runtime import attestation, close_standalone
from attestation.sinks import DigestAlreadyWritten, DirectorySink
from ledger import services as ledger_services
from ledger.core.commands import Command
from ledger.core.state import account_id_for
from ledger.eventstore.rocks import COLUMN_FAMILIES
from proofs.core.checkpoint import open_checkpoint
from proofs.core.note import generate_signer

pytestmark = pytest.mark.django_db(transaction=True)

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _standalone_closed():
    yield
    close_standalone()


def acc(did: str) -> str:
    return account_id_for("EUR", did)


def traffic(batch: int = 0) -> None:
    alice, bob = acc(f"alice-{batch}"), acc(f"bob-{batch}")
    results = ledger_services.commands_execute(ledger="EUR", commands=[
        Command("open_account", f"o1-{batch}", did=f"alice-{batch}"),
        Command("open_account", f"o2-{batch}", did=f"bob-{batch}"),
        Command("mint", f"m-{batch}", account=alice, amount=10_000),
        Command("transfer", f"t-{batch}", account=alice, to=bob, amount=2_500),
        Command("hold", f"h-{batch}", account=alice, amount=700, hold_id=f"hld_eur_{batch}"),
        Command("promo_mint", f"p-{batch}", account=bob, amount=300),
        Command("fee_transfer", f"f-{batch}", account=bob, amount=25),
    ])
    assert all(result.ok for result in results), results


def outstanding(runtime) -> int:
    return runtime.shards.get("EUR").writer.machine.state.outstanding()


@pytest.fixture
def eur(ledger_runtime):
    ledger_services.ledger_create(code="EUR", scale=2)
    traffic()
    return ledger_runtime


def test_sealing_records_blocks_and_checkpoints_and_delivers_write_once_digests(eur, settings):
    [result] = services.ledger_seal(ledger="EUR")
    traffic(1)
    [second] = services.ledger_seal(ledger="EUR")
    assert services.ledger_seal(ledger="EUR") == []

    key = signing_key_get(ledger="EUR")
    assert key.origin == "ledgerfs.local/EUR"
    store = eur.shards.get("EUR").store
    checkpoint = open_checkpoint(second.checkpoint.note, key.verifier)
    assert checkpoint.tree_size == store.head()[0] + 1
    assert checkpoint.state_sum == outstanding(eur) == 20_000
    assert list(Block.objects.values_list("height", flat=True).order_by("height")) == [1, 2]
    row = Checkpoint.objects.get(ledger="EUR", height=2)
    assert (row.note, row.public_key, row.tree_size) == (
        second.checkpoint.note, key.verifier, checkpoint.tree_size
    )
    assert Block.objects.get(height=2).prev_header_hash == Block.objects.get(height=1).header_hash

    directory = Path(settings.LEDGERFS_DATA_DIR) / "digests" / "EUR"
    for height, sealed in ((1, result), (2, second)):
        path = directory / f"{height}.checkpoint"
        assert path.read_text() == sealed.checkpoint.note
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
    delivery = DigestDelivery.objects.get(ledger="EUR", sink="directory")
    assert (delivery.delivered_height, delivery.status, delivery.failures) == (2, "ok", 0)


def test_read_models_and_deliveries_catch_up_after_a_failure(eur, settings, monkeypatch):
    services.ledger_seal(ledger="EUR")
    Block.objects.all().delete()
    Checkpoint.objects.all().delete()
    sink = DirectorySink()

    def unavailable(*args):
        raise OSError("sink offline")

    monkeypatch.setattr("attestation.services.SINK_BACKOFF_SECONDS", 0)
    monkeypatch.setattr("attestation.sinks.os.open", unavailable)
    traffic(1)
    with pytest.raises(services.DigestSinkError, match="sink offline"):
        services.ledger_seal(ledger="EUR")
    failing = DigestDelivery.objects.get(sink="directory")
    assert (failing.status, failing.delivered_height, failing.failures) == ("failing", 1, 1)
    assert "sink offline" in failing.last_error

    monkeypatch.undo()
    assert services.ledger_seal(ledger="EUR") == []
    assert Block.objects.count() == Checkpoint.objects.count() == 2
    assert DigestDelivery.objects.get(sink="directory").status == "ok"
    assert sink.heights("EUR") == [1, 2]


def test_a_digest_is_never_rewritten_and_a_foreign_one_is_a_loud_conflict(eur, caplog):
    [sealed] = services.ledger_seal(ledger="EUR")
    sink = DirectorySink()
    with pytest.raises(DigestAlreadyWritten):
        sink.put("EUR", 1, sealed.checkpoint.note)
    with pytest.raises(DigestAlreadyWritten):
        sink.put("EUR", 1, "something else\n")
    assert sink.versions("EUR", 1) == [sealed.checkpoint.note]

    # Someone planted a file for the next height before the ledger sealed it.
    sink.put("EUR", 2, "planted\n")
    traffic(1)
    services.ledger_seal(ledger="EUR")
    delivery = DigestDelivery.objects.get(sink="directory")
    assert (delivery.status, delivery.delivered_height) == ("conflict", 1)
    assert any(r.levelname == "CRITICAL" and "different checkpoint" in r.getMessage()
               for r in caplog.records)
    report = services.digests_verify(ledger="EUR")
    assert any("sink directory height 2: differs" in line for line in report.divergences)


def test_an_interrupted_digest_write_is_completed_not_refused(tmp_path):
    sink = DirectorySink(path=tmp_path)
    (tmp_path / "EUR").mkdir()
    (tmp_path / "EUR" / "1.checkpoint").write_text("half a no")
    sink.put("EUR", 1, "half a note\n")
    assert sink.versions("EUR", 1) == ["half a note\n"]
    assert stat.S_IMODE((tmp_path / "EUR" / "1.checkpoint").stat().st_mode) == 0o444


def test_the_signing_key_is_generated_once_private_and_reused(eur, settings):
    key = signing_key_get(ledger="EUR")
    path = Path(settings.LEDGERFS_DATA_DIR) / "keys" / "EUR.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text().strip() == key.signer
    assert signing_key_get(ledger="EUR") == key
    assert signing_key_get(ledger="USD", create=False) is None

    path.chmod(0o644)
    with pytest.raises(SigningKeyError, match="readable by others"):
        signing_key_get(ledger="EUR")
    path.chmod(0o600)
    settings.LEDGERFS_CHECKPOINT_ORIGIN_PREFIX = "ledger.example"
    with pytest.raises(SigningKeyError, match="holds the key of 'ledgerfs.local/EUR'"):
        signing_key_get(ledger="EUR")


def test_a_configured_key_signs_instead_of_the_key_file(ledger_runtime, settings):
    signer, verifier = generate_signer("ledgerfs.local/EUR")
    settings.LEDGERFS_SIGNING_KEYS = [generate_signer("ledgerfs.local/USD")[0], signer]
    ledger_services.ledger_create(code="EUR", scale=2)
    [sealed] = services.ledger_seal(ledger="EUR")
    assert sealed.checkpoint.public_key == verifier
    open_checkpoint(sealed.checkpoint.note, verifier)
    assert not (Path(settings.LEDGERFS_DATA_DIR) / "keys" / "EUR.key").exists()
    settings.LEDGERFS_SIGNING_KEYS = ["PRIVATE+KEY+ledgerfs.local/EUR+00000000+AQ=="]
    with pytest.raises(SigningKeyError):
        signing_key_get(ledger="EUR")


def test_the_seal_command_seals_now(eur):
    out = io.StringIO()
    call_command("seal", "--ledger", "EUR", stdout=out)
    assert "EUR: sealed 1 block(s); height 1, tree size 9" in out.getvalue()
    out = io.StringIO()
    call_command("seal", stdout=out)
    assert "EUR: nothing new to seal; height 1" in out.getvalue()


def export(ledger: str, path: Path) -> None:
    with path.open("w") as file:
        call_command("export_log", "--ledger", ledger, stdout=file)


def offline(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "proofs.verify", *args], cwd=REPOSITORY_ROOT,
        capture_output=True, text=True, timeout=60,
    )


def tamper(shard: Path, seq: int, old: bytes, new: bytes) -> None:
    """Change bytes of one stored event body in the writer's RocksDB, behind its back."""
    options = Options(raw_mode=True)
    db = Rdict(str(shard), options, {name: Options(raw_mode=True) for name in COLUMN_FAMILIES})
    log = db.get_column_family("log")
    key = seq.to_bytes(8, "big")
    value = log[key]
    assert old in value[32:]
    log[key] = value[:32] + value[32:].replace(old, new, 1)
    log.close()
    db.close()


def test_tampering_after_sealing_is_reported_by_the_log_verifier_and_verify_digests(
    eur, settings, tmp_path
):
    for batch in (1, 2, None):
        services.ledger_seal(ledger="EUR")  # sizes 9, 16, 23
        if batch:
            traffic(batch)
    data = Path(settings.LEDGERFS_DATA_DIR)
    key = data / "verifier.key"
    key.write_text(signing_key_get(ledger="EUR").verifier)
    digests = data / "digests" / "EUR"
    exported = tmp_path / "eur.jsonl"

    export("EUR", exported)
    intact = offline("log", str(exported), "--checkpoints", str(digests), "--key", str(key))
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "VALID: 23 events checked" in intact.stdout
    assert "3 of 3 checkpoints matched" in intact.stdout
    out = io.StringIO()
    call_command("verify_digests", "--ledger", "EUR", "--strict", stdout=out)
    assert "OK EUR" in out.getvalue()

    # Stop the writer, then change one digit of the sealed mint of batch 1 (seq 11).
    eur_shard = data / "shards" / "EUR"
    from ledger import runtime

    runtime.shutdown()
    tamper(eur_shard, 11, b'"amount":10000', b'"amount":90000')

    export("EUR", exported)
    result = offline("log", str(exported), "--checkpoints", str(digests), "--key", str(key))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "INVALID: seq 11: body hashes to" in result.stdout
    assert "checkpoint height 2 (tree size 16): signed root" in result.stdout
    assert "checkpoint height 1 " not in result.stdout

    out = io.StringIO()
    with pytest.raises(CommandError, match="divergence in EUR"):
        call_command("verify_digests", "--ledger", "EUR", stdout=out)
    assert "DIVERGENCE EUR: seq 11: body hashes to" in out.getvalue()
    assert "DIVERGENCE EUR: checkpoint height 3" in out.getvalue()


def test_the_embedded_web_process_seals_every_second_on_its_own(ledger_runtime, settings):
    from ledger import runtime

    runtime.shutdown()
    settings.LEDGERFS_BEAT = "thread"
    rt = runtime.runtime()
    ledger_services.ledger_create(code="EUR", scale=2)
    traffic()
    head_seq = rt.shards.get("EUR").store.head()[0]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        head = attestation().reader("EUR").head()
        if head.tree_size == head_seq + 1:
            break
        time.sleep(0.1)
    assert head.tree_size == head_seq + 1
    runtime.shutdown()  # stops the beat thread before the stores close


def test_verify_digests_without_a_seal_reports_it(ledger_runtime):
    ledger_services.ledger_create(code="EUR", scale=2)
    report = services.digests_verify(ledger="EUR")
    assert report.divergences == ["ledger EUR has no signing key: nothing was sealed"]


def test_the_operator_console_shows_blocks_checkpoints_and_deliveries_read_only(eur, client):
    from django.contrib.auth import get_user_model

    services.ledger_seal(ledger="EUR")
    operator = get_user_model().objects.create_superuser("operator", password="x")
    client.force_login(operator)
    for model in ("checkpoint", "block", "digestdelivery"):
        page = client.get(f"/admin/attestation/{model}/")
        assert page.status_code == 200, model
        assert b"EUR" in page.content
        assert client.get(f"/admin/attestation/{model}/add/").status_code == 403
    row = Checkpoint.objects.get(height=1)
    detail = client.get(f"/admin/attestation/checkpoint/{row.pk}/change/")
    assert detail.status_code == 200
    assert row.note.split("\n")[0].encode() in detail.content
    assert b'name="_save"' not in detail.content


def test_sealing_an_unknown_ledger_is_a_clear_error(ledger_runtime):
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("seal", "--ledger", "XYZ", stderr=err)
    assert "XYZ: no such ledger" in err.getvalue()
