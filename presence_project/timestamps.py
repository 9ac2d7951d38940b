"""Times as the protocols and stored events carry them: milliseconds since the epoch."""

from datetime import datetime


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
