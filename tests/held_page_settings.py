"""The service's settings plus a page that holds its request until the test releases it,
for the service process of tests/test_slow_requests.py."""

from presence_project.settings import *  # noqa: F403

ROOT_URLCONF = "tests.held_page_urls"
