"""The error responses each operation documents, so clients (and schema checks) know them."""

from ledger.api.schemas import ErrorOut

COMMON_ERRORS = (400, 401, 403, 422, 429, 500, 503)


def with_errors(success: dict, *statuses: int) -> dict:
    """`success` plus the error statuses every operation can give, plus `statuses`."""
    return {**success, **dict.fromkeys((*COMMON_ERRORS, *statuses), ErrorOut)}
