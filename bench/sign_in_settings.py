"""The service's settings plus one slow admin page, for bench/sign_in.py only."""

from presence_project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.sign_in_urls"
