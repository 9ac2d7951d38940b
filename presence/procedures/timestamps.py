"""Times as both RPC modules send them: milliseconds since the epoch."""

from datetime import datetime


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
