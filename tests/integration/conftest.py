"""Fixtures of the real services integration tests share: a Redis and a PostgreSQL server
(the machine's, or private throwaway ones), from `distributed_services`."""

from tests.integration.distributed_services import (  # noqa: F401  (fixtures)
    postgres_server,
    postgres_url,
    redis_server,
    redis_url,
)
