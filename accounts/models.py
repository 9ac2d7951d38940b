from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone

from accounts.addresses import normalize_address, validate_address


class UserManager(BaseUserManager["User"]):
    def create_user(self, address: str, password: str | None = None, **extra: object) -> "User":
        user = self.model(address=normalize_address(address), **extra)
        user.set_password(password) if password else user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(
        self, address: str, password: str | None = None, **extra: object
    ) -> "User":
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(address, password, **extra)

    def get_by_natural_key(self, address: str) -> "User":
        return self.get(address=normalize_address(address))


class User(AbstractBaseUser, PermissionsMixin):
    """A platform user, named by the wallet address they sign in with."""

    address = models.CharField(
        primary_key=True,
        max_length=42,
        validators=[validate_address],
        help_text="0x followed by 40 hex digits, stored lowercase.",
    )
    is_staff = models.BooleanField(default=False, help_text="May use the admin and staff APIs.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "address"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["address"]

    def __str__(self) -> str:
        return self.address

    def clean(self) -> None:
        super().clean()
        self.address = normalize_address(self.address)


class AccessToken(models.Model):
    """A bearer token. Only its SHA-256 is kept, so a database leak does not leak tokens."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="access_tokens")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(
        max_length=8, editable=False, help_text="First characters, to tell tokens apart."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… for {self.user_id}"
