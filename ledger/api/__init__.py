"""The ledger API (django-ninja): one router per resource, mounted by `config.api` at /api/v1/.

Writes go through `ledger.services` to the shard's writer; reads come from the shard's event
store (read-your-writes), never from the asynchronously projected read models.
"""

from ninja import Router

from ledger.api import accounts, events, holds, ledgers, transfers

router = Router()
for module in (ledgers, accounts, transfers, holds, events):
    router.add_router("", module.router)
