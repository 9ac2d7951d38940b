import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from redis.exceptions import RedisError

from presence import selectors, services
from presence.conf import presence_settings
from presence.consumers import CLOSE_BY_OPERATOR

ADDRESS_HELP = "the user's Ethereum address (0x + 40 hex digits)"


def _when(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _figure(value: int | None) -> str:
    return "-" if value is None else str(value)


class Command(BaseCommand):
    help = (
        "Presence for operators: who is online, each server process, one user; disconnect; "
        "purge old presence history."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="subcommand", required=True, title="subcommands")
        summary = commands.add_parser(
            "summary",
            help="users online and away now, and each server process",
            description=(
                "How many users are online and away now, across all processes, and each "
                "server process with its connections, presence subscriptions, worst "
                "subscriber backlog and heartbeat age, as of its last heartbeat."
            ),
        )
        user = commands.add_parser(
            "user",
            help="one user's status, last seen, connections and online friends",
            description=(
                "A user's status as friends see it, when they were last seen, their open "
                "connections on every process and which of their friends are online or away."
            ),
        )
        user.add_argument("address", help=ADDRESS_HELP)
        for readable in (summary, user):
            readable.add_argument("--json", action="store_true", help="print one JSON object")
        disconnect = commands.add_parser(
            "disconnect",
            help="close every connection of a user, keeping their tokens",
            description=(
                "Close every open WebSocket connection of a user, on every process, with "
                f"close code {CLOSE_BY_OPERATOR} and a reason. Their tokens stay valid, so "
                "clients may connect again (revoketokens also revokes them). Friends see the "
                "user OFFLINE once the last connection closes."
            ),
        )
        disconnect.add_argument("address", help=ADDRESS_HELP)
        disconnect.add_argument(
            "--reason",
            default=services.DEFAULT_DISCONNECT_REASON,
            help=(
                "the close reason the client reads (at most "
                f"{services.MAX_REASON_BYTES} bytes; default: %(default)r)"
            ),
        )

        commands.add_parser(
            "purge-history",
            help="delete presence history older than the retention",
            description=(
                "Delete every user's presence history entries older than "
                "PRESENCE_HISTORY_RETENTION_DAYS, in batches. The server processes also do "
                "it once an hour; this is for a database they do not reach, or at once."
            ),
        )

    def handle(self, *args: object, subcommand: str, **options: Any) -> None:
        try:
            if subcommand == "summary":
                self._summary(options["json"])
            elif subcommand == "user":
                self._user(options["address"], options["json"])
            elif subcommand == "purge-history":
                self._purge_history()
            else:
                self._disconnect(options["address"], options["reason"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        except RedisError as exc:
            raise CommandError(f"Redis does not answer ({type(exc).__name__}: {exc})") from exc

    def _summary(self, as_json: bool) -> None:
        online = selectors.online_summary()
        processes = selectors.processes()
        if as_json:
            body = {
                **asdict(online),
                "processes": [{**asdict(p), "alive": p.alive} for p in processes],
            }
            self.stdout.write(json.dumps(body, indent=2))
            return
        self.stdout.write(f"users online: {online.online}, away: {online.away}")
        self.stdout.write(f"server processes: {len(processes)}")
        rows = [("process", "heartbeat", "connections", "subscriptions", "peak backlog")]
        for p in processes:
            age = f"{p.heartbeat_age_seconds:.1f} s ago" if p.alive else "expired"
            rows.append(
                (
                    p.name,
                    age,
                    _figure(p.connections),
                    _figure(p.presence_subscriptions),
                    _figure(p.peak_presence_backlog),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
            self.stdout.write("  ".join(cells).rstrip())

    def _user(self, address: str, as_json: bool) -> None:
        user = selectors.user_presence(address)
        if user is None:
            raise CommandError(f"there is no user {address.strip().lower()}")
        if as_json:
            body = {
                **asdict(user),
                "appears_offline": user.appears_offline,
                "online_friends": [
                    {
                        "address": f.address,
                        "status": f.status.name.lower(),
                        "last_seen_ms": f.last_seen_ms,
                    }
                    for f in user.online_friends
                ],
            }
            self.stdout.write(json.dumps(body, indent=2))
            return
        status = user.status + (" (connected, appearing offline)" if user.appears_offline else "")
        self.stdout.write(user.address)
        self.stdout.write(f"status: {status}")
        self.stdout.write(f"last seen: {_when(user.last_seen_ms)}")
        self.stdout.write(f"open connections: {len(user.connections)}")
        for connection in user.connections:
            self.stdout.write(f"  {connection}")
        self.stdout.write(f"friends online: {len(user.online_friends)}")
        for friend in user.online_friends:
            self.stdout.write(f"  {friend.address} {friend.status.name.lower()}")

    def _purge_history(self) -> None:
        purged = services.purge_history()
        days = presence_settings().history_retention_days
        self.stdout.write(f"deleted {purged} presence history entries older than {days} days")

    def _disconnect(self, address: str, reason: str) -> None:
        count = services.disconnect_user(address, reason)
        self.stdout.write(
            f"closing {count} open connection(s) of {address.strip().lower()}: {reason!r}"
        )
