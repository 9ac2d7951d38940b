from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from accounts.admin import ADDRESS_CSS, ReadOnlyAdmin
from friendships import selectors, services
from friendships.models import (
    Block,
    Friendship,
    FriendshipAction,
    FriendshipEvent,
    FriendshipState,
    PresenceSharing,
    SharingList,
    SharingListEntry,
)


class FriendshipEventInline(admin.TabularInline):
    """The history, read-only: events are only ever appended by the service."""

    model = FriendshipEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "acting_user", "action", "message")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Friendship)
class FriendshipAdmin(admin.ModelAdmin):
    """A row of the list is the pair, A above B, and where they stand, naming who blocked
    or asked whom by A and B, so that it fits a 1,280-pixel screen, which two addresses
    side by side with their state and requester do not."""

    list_display = ("pair", "standing", "updated_at")
    list_filter = ("state", "updated_at")
    search_fields = ("user_a__address", "user_b__address")
    readonly_fields = (
        "user_a",
        "user_b",
        "state",
        "blocks",
        "requested_by",
        "message",
        "created_at",
        "updated_at",
    )
    inlines = [FriendshipEventInline]
    date_hierarchy = "updated_at"

    class Media:
        css = {"all": [ADDRESS_CSS]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Friendship]:
        return selectors.with_blocks(super().get_queryset(request))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="users", ordering="user_a")
    def pair(self, friendship: Friendship) -> SafeString:
        return format_html(
            'A <span class="address">{}</span><br>B <span class="address">{}</span>',
            friendship.user_a_id,
            friendship.user_b_id,
        )

    @admin.display(description="state", ordering="state")
    def standing(self, friendship: Friendship) -> str:
        """The state, with who blocks whom or who asked whom (A and B as in the pair)."""
        if friendship.state == FriendshipState.BLOCKED:
            return f"blocked: {self._blocks_between(friendship, 'A', 'B')}"
        if friendship.state == FriendshipState.REQUESTED:
            asker = "A" if friendship.requested_by_id == friendship.user_a_id else "B"
            return f"requested by {asker}"
        return friendship.get_state_display().lower()

    @admin.display(description="blocks")
    def blocks(self, friendship: Friendship) -> str:
        return self._blocks_between(friendship, friendship.user_a_id, friendship.user_b_id)

    @staticmethod
    def _blocks_between(friendship: Friendship, a: str, b: str) -> str:
        if friendship.a_blocks_b and friendship.b_blocks_a:
            return f"{a} and {b} block each other"
        if friendship.a_blocks_b:
            return f"{a} blocks {b}"
        if friendship.b_blocks_a:
            return f"{b} blocks {a}"
        return "neither blocks the other"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Friendship], search_term: str
    ) -> tuple[QuerySet[Friendship], bool]:
        """Addresses are stored lowercase; match whatever case the operator pasted."""
        term = search_term.strip().lower()
        if not term:
            return queryset, False
        return queryset.filter(
            Q(user_a__address__contains=term) | Q(user_b__address__contains=term)
        ), False


@admin.register(Block)
class BlockAdmin(admin.ModelAdmin):
    """Blocks made and lifted here go through the same rules and notifications as users'."""

    list_display = ("blocker", "blocked", "created_at")
    search_fields = ("blocker__address", "blocked__address")

    class Media:
        css = {"all": [ADDRESS_CSS]}

    raw_id_fields = ("blocker", "blocked")
    fields = ("blocker", "blocked", "created_at")
    readonly_fields = ("created_at",)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Block, form: object, change: bool) -> None:
        services.apply_action(obj.blocker_id, obj.blocked_id, FriendshipAction.BLOCK, limited=False)
        made = selectors.block(obj.blocker_id, obj.blocked_id)
        obj.pk, obj.created_at = made.pk, made.created_at

    def delete_model(self, request: HttpRequest, obj: Block) -> None:
        services.apply_action(
            obj.blocker_id, obj.blocked_id, FriendshipAction.UNBLOCK, limited=False
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Block]) -> None:
        for block in queryset:
            self.delete_model(request, block)


@admin.register(PresenceSharing)
class PresenceSharingAdmin(ReadOnlyAdmin):
    """Who sees each user's presence and location, as they chose it; read-only here."""

    list_display = ("user", "presence", "location", "updated_at")
    list_filter = ("presence", "location")
    search_fields = ("user__address",)
    fields = ("user", "presence", "presence_list", "location", "location_list", "updated_at")
    readonly_fields = fields

    class Media:
        css = {"all": [ADDRESS_CSS]}

    @admin.display(description="presence list")
    def presence_list(self, row: PresenceSharing) -> SafeString:
        return self._listed(row, SharingList.PRESENCE)

    @admin.display(description="location list")
    def location_list(self, row: PresenceSharing) -> SafeString:
        return self._listed(row, SharingList.LOCATION)

    @staticmethod
    def _listed(row: PresenceSharing, kind: str) -> SafeString:
        """The list as stored, former friends' entries included (they apply again if the
        friendship comes back)."""
        members = SharingListEntry.objects.filter(owner_id=row.user_id, list=kind)
        return format_html_join(
            mark_safe("<br>"),
            '<span class="address">{}</span>',
            ((member,) for member in members.values_list("member_id", flat=True)),
        ) or SafeString("(none)")
