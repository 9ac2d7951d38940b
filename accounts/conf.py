"""The accounts app's settings, typed and read once from `settings.ACCOUNTS`."""

from dataclasses import dataclass

from presence_project.app_settings import app_settings


@dataclass(frozen=True, slots=True)
class AccountsSettings:
    token_lifetime_seconds: int
    signed_fetch_window_seconds: int


accounts_settings = app_settings("ACCOUNTS", AccountsSettings)
