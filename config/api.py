"""The one NinjaAPI of the project, mounted at /api/v1/ (OpenAPI at /api/v1/openapi.json).

Apps add their routers here, one line each. Every operation is authenticated by an API key
with a scope; use `apiaccess.auth.require_scope("read" | "write" | "admin")` as `auth=`.
Errors answer `{"code", "message", "details"?}` (`apiaccess.errors`).
"""

from ninja import NinjaAPI, Swagger

from apiaccess.auth import require_scope
from apiaccess.codec import OrjsonParser, OrjsonRenderer
from apiaccess.errors import install_ninja_handlers
from config.version import VERSION

api = NinjaAPI(
    title="LedgerFS API",
    version=VERSION,
    description=(
        "Event-sourced, verifiable ledger. Authenticate with `Authorization: Bearer <API key>`."
        " Amounts are integers in minor units. Guide: [/skill.md](/skill.md)."
    ),
    urls_namespace="api-v1",
    auth=require_scope("read"),
    # validatorUrl None: the docs page makes no request outside this server.
    docs=Swagger(settings={"validatorUrl": None, "persistAuthorization": True}),
    parser=OrjsonParser(),
    renderer=OrjsonRenderer(),
)
install_ninja_handlers(api)

api.add_router("", "ledger.api.router")
api.add_router("", "attestation.api.router")
