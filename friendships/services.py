"""Friendship and block writes, with the rules of Decentraland's social service."""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.addresses import normalize_address
from accounts.services import get_or_create_user
from friendships.conf import friendships_settings
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
from friendships.selectors import blockers_between, friend_addresses, stored_sharing
from friendships.sharing import LocationAudience, PresenceAudience, Sharing
from friendships.signals import friendship_changed
from presence_project.ratelimits import Limit, seconds_until_reset, within_limits

MAX_MESSAGE_LENGTH = 1000

_RESULTING_STATE = {
    FriendshipAction.REQUEST: FriendshipState.REQUESTED,
    FriendshipAction.ACCEPT: FriendshipState.ACCEPTED,
    FriendshipAction.REJECT: FriendshipState.REJECTED,
    FriendshipAction.CANCEL: FriendshipState.CANCELLED,
    FriendshipAction.DELETE: FriendshipState.DELETED,
}
_BLOCKING = {FriendshipAction.BLOCK, FriendshipAction.UNBLOCK}
# What refusing an action towards oneself says, in the action's own words.
_SELF_REFUSALS = {
    FriendshipAction.REQUEST: "a user cannot send a friendship request to themselves",
    FriendshipAction.ACCEPT: "a user cannot accept a friendship request from themselves",
    FriendshipAction.REJECT: "a user cannot reject a friendship request from themselves",
    FriendshipAction.CANCEL: "a user cannot cancel a friendship request to themselves",
    FriendshipAction.DELETE: "a user cannot delete a friendship with themselves",
    FriendshipAction.BLOCK: "a user cannot block themselves",
    FriendshipAction.UNBLOCK: "a user cannot unblock themselves",
}


class FriendshipRuleError(Exception):
    """An action the current state does not allow; the message names the rule."""


class TooManyActions(Exception):
    """The user, or the pair, has used up its friendship actions for this minute."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many friendship actions: try again in a minute")
        # Seconds until the budgets start again.
        self.retry_after = retry_after


def _limits(actor: str, other: str, action: FriendshipAction) -> list[Limit]:
    """Decentraland's social service's budgets: per user, and per pair of users. A
    friendship's pair is unordered; a block's is ordered, so that one user cannot spend the
    budget the other needs to block back."""
    pair = f"{actor}>{other}" if action in _BLOCKING else "~".join(sorted((actor, other)))
    budget = friendships_settings()
    return [
        Limit(f"friendship:user:{actor}", budget.actions_per_minute, 60),
        Limit(f"friendship:pair:{pair}", budget.actions_per_pair_per_minute, 60),
    ]


def _check_block_rules(blockers: set[str], actor: str, action: FriendshipAction) -> None:
    if action == FriendshipAction.BLOCK and actor in blockers:
        raise FriendshipRuleError("this user is already blocked")
    if action == FriendshipAction.UNBLOCK and actor not in blockers:
        raise FriendshipRuleError("this user is not blocked")
    if action not in _BLOCKING and blockers:
        raise FriendshipRuleError("one of these users has blocked the other")


def _check_friendship_rules(
    friendship: Friendship | None, actor: str, action: FriendshipAction
) -> None:
    state = friendship.state if friendship else None
    if action == FriendshipAction.REQUEST:
        if state == FriendshipState.REQUESTED:
            raise FriendshipRuleError("a friendship request between these users is already pending")
        if state == FriendshipState.ACCEPTED:
            raise FriendshipRuleError("these users are already friends")
        return
    if action == FriendshipAction.DELETE:
        if state != FriendshipState.ACCEPTED:
            raise FriendshipRuleError("only an accepted friendship can be deleted")
        return
    if friendship is None or state != FriendshipState.REQUESTED:
        raise FriendshipRuleError(
            f"{action.label.lower()} is only possible while a request is pending"
        )
    is_requester = friendship.requested_by_id == actor
    if action == FriendshipAction.CANCEL and not is_requester:
        raise FriendshipRuleError("only the user who sent the request can cancel it")
    if action in (FriendshipAction.ACCEPT, FriendshipAction.REJECT) and is_requester:
        raise FriendshipRuleError(
            f"only the user who received the request can {action.label.lower()} it"
        )


def _apply_block(actor: str, other: str, action: FriendshipAction) -> FriendshipState:
    """Record the block or lift it; the pair stays blocked while either one blocks the other."""
    if action == FriendshipAction.BLOCK:
        Block.objects.create(blocker_id=actor, blocked_id=other)
        return FriendshipState.BLOCKED
    Block.objects.filter(blocker_id=actor, blocked_id=other).delete()
    still_blocked = Block.objects.filter(blocker_id=other, blocked_id=actor).exists()
    return FriendshipState.BLOCKED if still_blocked else FriendshipState.DELETED


def apply_action(
    actor_address: str,
    other_address: str,
    action: FriendshipAction,
    message: str = "",
    *,
    limited: bool = True,
) -> FriendshipEvent:
    """Apply `actor`'s action towards `other`, or raise changing nothing.

    A broken rule raises FriendshipRuleError, a spent limit (`limited`: a user's own
    request, not an operator's) TooManyActions. Only an action that passes both creates the
    users it names, counts against the limits and is written (one refused, by a rule or by
    the limits, counts nothing); every action, blocks included, is appended to the pair's
    history and announced once committed.
    """
    actor = normalize_address(actor_address)
    other = normalize_address(other_address)
    if actor == other:
        raise FriendshipRuleError(_SELF_REFUSALS[action])
    if len(message) > MAX_MESSAGE_LENGTH:
        raise FriendshipRuleError(f"the message is longer than {MAX_MESSAGE_LENGTH} characters")
    if action != FriendshipAction.REQUEST:
        message = ""
    low, high = sorted((actor, other))
    with transaction.atomic():
        friendship = (
            Friendship.objects.select_for_update().filter(user_a_id=low, user_b_id=high).first()
        )
        blockers = blockers_between(actor, other)
        _check_block_rules(blockers, actor, action)
        if action not in _BLOCKING:
            _check_friendship_rules(friendship, actor, action)
        if limited:
            limits = _limits(actor, other, action)
            if not within_limits(limits):
                raise TooManyActions(seconds_until_reset(limits))
        get_or_create_user(actor)
        get_or_create_user(other)
        if friendship is None:
            friendship = Friendship(user_a_id=low, user_b_id=high)
        if action in _BLOCKING:
            friendship.state = _apply_block(actor, other, action)
        else:
            friendship.state = _RESULTING_STATE[action]
        if action == FriendshipAction.REQUEST:
            friendship.requested_by_id = actor
            friendship.message = message
        friendship.save()
        event = FriendshipEvent.objects.create(
            friendship=friendship, action=action, acting_user_id=actor, message=message
        )
        transaction.on_commit(
            lambda: friendship_changed.send(sender=FriendshipEvent, event=event), robust=True
        )
    return event


# --- Who may see a user's presence --------------------------------------------------------


def _friends_only(address: str, wanted: Iterable[str], friends: set[str], name: str) -> set[str]:
    """`wanted` normalized; ValidationError naming every address that is not a friend."""
    members = {normalize_address(member) for member in wanted}
    strangers = sorted(members - friends)
    if strangers:
        raise ValidationError(
            f"the {name} list holds friends only; not a friend of yours: {', '.join(strangers)}",
            code="not_a_friend",
        )
    return members


def set_sharing(address: str, wanted: Sharing) -> Sharing:
    """Make `wanted` `address`'s sharing and return it as stored (selectors.stored_sharing).

    The lists replace the current friends' entries; entries of former friends stay, and
    apply again if the friendship comes back. A bad mode, or a list naming anyone but a
    friend, raises ValidationError and changes nothing.
    """
    address = normalize_address(address)
    if wanted.presence not in PresenceAudience.values:
        raise ValidationError(
            f"presence must be one of {', '.join(PresenceAudience.values)}", code="invalid"
        )
    if wanted.location not in LocationAudience.values:
        raise ValidationError(
            f"location must be one of {', '.join(LocationAudience.values)}", code="invalid"
        )
    friends = set(friend_addresses(address))
    lists = {
        SharingList.PRESENCE: _friends_only(address, wanted.presence_list, friends, "presence"),
        SharingList.LOCATION: _friends_only(address, wanted.location_list, friends, "location"),
    }
    with transaction.atomic():
        get_or_create_user(address)
        PresenceSharing.objects.update_or_create(
            user_id=address,
            defaults={"presence": wanted.presence, "location": wanted.location},
        )
        entries = SharingListEntry.objects.filter(owner_id=address)
        entries.filter(member_id__in=friends).delete()
        SharingListEntry.objects.bulk_create(
            SharingListEntry(owner_id=address, member_id=member, list=kind)
            for kind, members in lists.items()
            for member in sorted(members)
        )
    return stored_sharing(address)
