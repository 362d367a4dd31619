"""Operational endpoints of the ledger app."""

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from config.version import VERSION
from ledger.runtime import runtime


@require_GET
def healthz(request):
    """Liveness plus each shard's last committed seq (from its event store, not the read
    model), so a monitor sees both that the process answers and that the writers are there."""
    shards = runtime().shards
    ledgers = {}
    for code in shards.codes():
        last_seq, _ = shards.get(code).store.head()
        ledgers[code] = {"last_seq": last_seq}
    return JsonResponse({"status": "ok", "version": VERSION, "shards": ledgers})
