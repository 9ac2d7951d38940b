from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from accounts.services import revoke_tokens


class Command(BaseCommand):
    help = "Revoke every access token of a user and close their open WebSocket connections."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("address", help="the user's Ethereum address (0x + 40 hex digits)")

    def handle(self, *args: object, address: str, **options: object) -> None:
        try:
            revoked = revoke_tokens(address)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        except User.DoesNotExist as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"revoked {revoked} token(s); open connections are being closed")
