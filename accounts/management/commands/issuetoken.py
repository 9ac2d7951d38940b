from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import issue_token


class Command(BaseCommand):
    help = "Create the user if needed and print a new access token for them on stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("address", help="the user's Ethereum address (0x + 40 hex digits)")

    def handle(self, *args: object, address: str, **options: object) -> None:
        try:
            token = issue_token(address)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(token)
