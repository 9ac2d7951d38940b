from typing import Any

from django.contrib import admin
from django.contrib.admin.widgets import AdminTextInputWidget
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserCreationForm
from django.db.models import Field, QuerySet
from django.forms import Field as FormField
from django.http import HttpRequest
from django.utils.html import format_html

from accounts.models import AccessToken, User
from accounts.services import revoke_tokens

# Addresses in a monospace font and never cut (the class "address"): every admin page that
# shows addresses includes it.
ADDRESS_CSS = "accounts/addresses.css"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records the admin shows and never changes (users change them elsewhere, or the
    service writes them)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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
    """Users by address. The presence app adds what it knows of a user (presence/admin.py)."""

    ordering = ("address",)
    list_display = ("listed_address", "is_staff", "is_active", "date_joined")
    list_display_links = ("listed_address",)
    list_filter = ("is_staff", "is_superuser", "is_active")
    search_fields = ("address",)
    readonly_fields = ("date_joined", "last_login")
    inlines = [AccessTokenInline]
    add_form = AddressUserCreationForm
    fieldsets = (
        (None, {"fields": ("address", "password")}),
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

    class Media:
        css = {"all": [ADDRESS_CSS]}

    @admin.display(description="address", ordering="address")
    def listed_address(self, user: User) -> str:
        return format_html('<span class="address">{}</span>', user.address)

    def formfield_for_dbfield(
        self, db_field: Field, request: HttpRequest, **kwargs: Any
    ) -> FormField | None:
        if db_field.name == "address":
            kwargs["widget"] = AdminTextInputWidget(attrs={"class": "vTextField address"})
        return super().formfield_for_dbfield(db_field, request, **kwargs)
