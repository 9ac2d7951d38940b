from django.apps import AppConfig


class PresenceConfig(AppConfig):
    name = "presence"

    def ready(self) -> None:
        from presence import notifications  # noqa: F401  (connects signal receivers)
