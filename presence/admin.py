"""What the admin shows of a user's presence: a column of the users list, and on a user's
page their status, last seen time, open connections, friends with their status and blocks.

Accounts knows nothing of presence: this app re-registers the users' admin, extended."""

from datetime import UTC, datetime

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from accounts.admin import ReadOnlyAdmin, UserAdmin
from accounts.models import User
from friendships.selectors import blocked_by, blocker_addresses
from presence import selectors, services
from presence.events import Location
from presence.models import HistoryAccess, HistoryEntry


def _address_link(address: str) -> SafeString:
    return format_html(
        '<a class="address" href="{}">{}</a>',
        reverse("admin:accounts_user_change", args=[address]),
        address,
    )


def _time(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _place(location: Location | None) -> str:
    if location is None:
        return "not shared"
    return f"{location.realm} ({location.x}, {location.y})"


class _UsersWithStatus(ChangeList):
    """The users list, each user on the page with their status read in one go for the page,
    rather than once per row."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        statuses = selectors.statuses_of([user.address for user in self.result_list])
        for user in self.result_list:
            user.presence_status = statuses[user.address]


class UserWithPresenceAdmin(UserAdmin):
    # The users list's columns, with their presence after the address.
    list_display = (UserAdmin.list_display[0], "presence", *UserAdmin.list_display[1:])
    _presence_fields = (
        "presence",
        "last_seen",
        "location",
        "status_message",  # [status]
        "open_connections",
        "friends",
        "blocks",
    )
    readonly_fields = (*UserAdmin.readonly_fields, *_presence_fields)
    # Right after the address: what operators come to a user's page for.
    fieldsets = (
        UserAdmin.fieldsets[0],
        ("Presence and friends", {"fields": _presence_fields}),
        *UserAdmin.fieldsets[1:],
    )

    class Media:
        css = {"all": ["presence/user.css"]}

    def get_changelist(self, request: HttpRequest, **kwargs: object) -> type[ChangeList]:
        return _UsersWithStatus

    @admin.display(description="presence")
    def presence(self, user: User) -> str:
        # The list's rows come with their status; a user's own page reads it here.
        listed = getattr(user, "presence_status", None)
        return listed or selectors.statuses_of([user.address])[user.address]

    @admin.display(description="last seen")
    def last_seen(self, user: User) -> str:
        """When their status last changed as friends see it: going online, away or offline."""
        (presence,) = selectors.presence_of([user.address])
        return _time(presence.last_seen_ms)

    @admin.display(description="location")
    def location(self, user: User) -> str:
        """[location] Where friends see the user, if they share it."""
        (presence,) = selectors.presence_of([user.address])
        return _place(presence.location)

    @admin.display(description="status message")
    def status_message(self, user: User) -> SafeString | str:
        """[status] The message and when it ends, and when a chosen status ends; the message
        shows to friends only while the user is online or away."""
        choices = selectors.choices_of(user.address)
        lines: list[SafeString] = []
        if choices.message:
            until = choices.message_until_ms
            lines.append(
                format_html(
                    '"<span class="status-message">{}</span>"{}{}',
                    choices.message,
                    f", until {_time(until)}" if until is not None else "",
                    ", cleared when the last connection closes"
                    if choices.clear_message_on_offline
                    else "",
                )
            )
        if choices.chosen is not None and choices.status_until_ms is not None:
            lines.append(
                format_html(
                    "chosen status {} until {}, then online",
                    choices.chosen.name.lower(),
                    _time(choices.status_until_ms),
                )
            )
        if not lines:
            return "none"
        items = format_html_join("", "<li>{}</li>", ((line,) for line in lines))
        return format_html("<ul>{}</ul>", items)

    @admin.display(description="open connections")
    def open_connections(self, user: User) -> SafeString | str:
        found = selectors.user_presence(user.address)
        if found is None or not found.connections:
            return "none"
        return format_html(
            "{}<ul>{}</ul>",
            len(found.connections),
            format_html_join(
                "",
                '<li><span class="address">{}</span>: {}</li>',
                found.connection_devices.items(),
            ),
        )

    @admin.display(description="friends")
    def friends(self, user: User) -> SafeString | str:
        friends = selectors.friends_presence(user.address)
        if not friends:
            return "none"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (_address_link(f.address), f.status.name.lower(), _time(f.last_seen_ms))
                for f in friends
            ),
        )
        return format_html(
            "<table><thead><tr><th>friend</th><th>status</th><th>last seen</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="blocks")
    def blocks(self, user: User) -> SafeString | str:
        lines = [
            format_html("blocks {}", _address_link(block.blocked_id))
            for block in blocked_by(user.address)
        ] + [
            format_html("blocked by {}", _address_link(blocker))
            for blocker in blocker_addresses(user.address)
        ]
        if not lines:
            return "none"
        items = format_html_join("", "<li>{}</li>", ((line,) for line in lines))
        return format_html("<ul>{}</ul>", items)


admin.site.unregister(User)
admin.site.register(User, UserWithPresenceAdmin)


# --- [history] ----------------------------------------------------------------------------


@admin.register(HistoryEntry)
class HistoryEntryAdmin(ReadOnlyAdmin):
    """Users' own presence history, for staff with the permission to view it; each reading
    of a list or an entry is recorded as a HistoryAccess, which superusers read."""

    list_display = ("at", "user", "kind", "chosen", "visible", "device", "connection")
    list_filter = ("kind",)
    search_fields = ("user__address",)
    date_hierarchy = "at"
    # Each row names its user without a query per row.
    list_select_related = ("user",)
    show_full_result_count = False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, object] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        if response.status_code == 200:
            services.record_history_access(request.user.address, "list", request.get_full_path())
        return response

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, object] | None = None,
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        if response.status_code == 200:
            services.record_history_access(
                request.user.address,
                "entry",
                request.get_full_path(),
                subject=response.context_data["original"].user_id,
            )
        return response


@admin.register(HistoryAccess)
class HistoryAccessAdmin(ReadOnlyAdmin):
    """Who of the staff read presence history, and what: for superusers only."""

    list_display = ("at", "reader", "view", "subject", "path")
    search_fields = ("reader", "subject")
    date_hierarchy = "at"

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)
