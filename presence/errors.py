"""Why a request is refused, as every surface tells it: each surface maps these once (the
RPC modules to their responses' error members, presence.procedures.errors)."""


class ServiceError(Exception):
    """A request that failed; the base class alone means the server failed."""


class BadRequest(ServiceError):
    pass


class InvalidAction(BadRequest):
    """A friendship rule forbids the action."""


class Unauthorized(ServiceError):
    pass


class Forbidden(ServiceError):
    pass


class TooManyRequests(ServiceError):
    pass
