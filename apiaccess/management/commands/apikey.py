"""`manage.py apikey create --name N --scopes read,write,admin [--user U]` prints the new key as
its last line (shown once, stored hashed); `apikey list` and `apikey revoke <prefix>` manage
existing keys."""

from django.core.management.base import BaseCommand, CommandError

from apiaccess.keys import ApiKeyError, api_client_get_or_create, api_key_issue, api_key_revoke
from apiaccess.models import ApiKey


class Command(BaseCommand):
    help = "Create, list or revoke API keys."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Issue a key (for a new or existing client).")
        create.add_argument("--name", required=True, help="API client name.")
        create.add_argument("--scopes", required=True, help="Comma-separated: read,write,admin.")
        create.add_argument("--user", help="Username the client acts as (new clients only); "
                                           "default: a new service user api-<name>.")
        sub.add_parser("list", help="List keys.")
        revoke = sub.add_parser("revoke", help="Revoke a key by its prefix.")
        revoke.add_argument("prefix")

    def handle(self, *args, action: str, **options):
        if action == "create":
            self._create(options["name"], options["scopes"], options["user"])
        elif action == "list":
            for key in ApiKey.objects.select_related("client"):
                state = "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d}"
                self.stdout.write(f"{key.prefix}  {key.client.name}  {','.join(key.scopes)}  "
                                  f"{state}")
        else:
            key = ApiKey.objects.filter(prefix=options["prefix"]).first()
            if key is None:
                raise CommandError(f"no key with prefix {options['prefix']!r}")
            api_key_revoke(key=key)
            self.stdout.write(f"Revoked {key.prefix} of {key.client.name}.")

    def _create(self, name: str, scopes: str, username: str | None) -> None:
        try:
            client = api_client_get_or_create(name=name, username=username)
            if username is not None and client.user.username != username:
                raise ApiKeyError(f"client {name!r} already acts as {client.user.username!r}")
            key, raw_key = api_key_issue(client=client, scopes=scopes)
        except ApiKeyError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(
            f"API key {key.prefix} for client {client.name!r} (user {client.user.username}, "
            f"scopes {','.join(key.scopes)}). It is shown once; store it now."
        )
        self.stdout.write(raw_key)
