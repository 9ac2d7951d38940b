from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserCreationForm
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import AccessToken, User
from accounts.services import revoke_tokens
from presence.selectors import status_of


class AccessTokenInline(admin.TabularInline):
    model = AccessToken
    extra = 0
    can_delete = False
    fields = ("prefix", "created_at", "expires_at", "revoked_at")
    readonly_fields = ("prefix", "created_at")

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


class AddressUserCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("address",)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("address",)
    list_display = ("address", "presence", "is_staff", "is_active", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active")
    search_fields = ("address",)
    readonly_fields = ("date_joined", "last_login", "presence")
    inlines = [AccessTokenInline]
    add_form = AddressUserCreationForm
    fieldsets = (
        (None, {"fields": ("address", "password", "presence")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("date_joined", "last_login")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("address", "password1", "password2")}),
    )

    actions = ["revoke_all_tokens"]

    @admin.action(description="Revoke all tokens and close open connections")
    def revoke_all_tokens(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        revoked = sum(revoke_tokens(user.address) for user in queryset)
        self.message_user(request, f"Revoked {revoked} token(s) of {queryset.count()} user(s).")

    @admin.display(description="presence")
    def presence(self, user: User) -> str:
        return status_of(user.address)
