"""The service's settings with only its channel layer sharded, over the Redis servers of
BENCH_LAYER_SHARDS (comma-separated URLs), presence state staying on REDIS_URL: what
bench/capacity.py runs as "two shards" where the service has no REDIS_SHARDS setting."""

import os

from presence_project.settings import *  # noqa: F403
from presence_project.settings import CHANNEL_LAYERS

_LAYER = CHANNEL_LAYERS["default"]["CONFIG"]
_LAYER["hosts"] = [
    {**_LAYER["hosts"][0], "address": url} for url in os.environ["BENCH_LAYER_SHARDS"].split(",")
]
