"""[location] The Location message of both modules (the same fields in each proto file),
read from a request and written into an answer."""

from google.protobuf.message import Message

from presence import services
from presence.events import Location


def location_of(request: Message) -> Location | None:
    """The location `request` carries in its `location` field, validated (ValidationError);
    None without one."""
    if not request.HasField("location"):
        return None
    given = request.location
    return services.location(given.realm, given.x, given.y)


def put_location(message: Message, location: Location | None) -> None:
    """Fill `message`'s `location` field with `location`; without one, leave it unset."""
    if location is not None:
        message.location.realm = location.realm
        message.location.x = location.x
        message.location.y = location.y
