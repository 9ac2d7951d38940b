from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from friendships import services
from friendships.models import Block, Friendship, FriendshipAction, FriendshipEvent


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
    list_display = ("user_a", "user_b", "state", "requested_by", "updated_at")
    list_filter = ("state", "updated_at")
    search_fields = ("user_a__address", "user_b__address")
    readonly_fields = (
        "user_a",
        "user_b",
        "state",
        "requested_by",
        "message",
        "created_at",
        "updated_at",
    )
    inlines = [FriendshipEventInline]
    date_hierarchy = "updated_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

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
    raw_id_fields = ("blocker", "blocked")
    fields = ("blocker", "blocked", "created_at")
    readonly_fields = ("created_at",)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Block, form: object, change: bool) -> None:
        event = services.apply_action(
            obj.blocker_id, obj.blocked_id, FriendshipAction.BLOCK, limited=False
        )
        obj.pk = Block.objects.get(blocker_id=obj.blocker_id, blocked_id=obj.blocked_id).pk
        obj.created_at = event.created_at

    def delete_model(self, request: HttpRequest, obj: Block) -> None:
        services.apply_action(
            obj.blocker_id, obj.blocked_id, FriendshipAction.UNBLOCK, limited=False
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Block]) -> None:
        for block in queryset:
            self.delete_model(request, block)
