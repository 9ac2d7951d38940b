from django.core.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from accounts.addresses import normalize_address
from friendships import ratelimits
from friendships.models import FriendshipAction

_ACTIONS = {"PUT": FriendshipAction.BLOCK, "DELETE": FriendshipAction.UNBLOCK}


class FriendshipActionThrottle(BaseThrottle):
    """The friendship-action limits of the RPC service, applied to the REST block endpoints."""

    def allow_request(self, request: Request, view: APIView) -> bool:
        action = _ACTIONS.get(request.method or "")
        if action is None:
            return True
        try:
            other = normalize_address(view.kwargs["address"])
        except ValidationError:
            return True  # the view answers 400
        return ratelimits.allow_action(request.user.address, other, action)

    def wait(self) -> float:
        return ratelimits.seconds_to_next_window()
