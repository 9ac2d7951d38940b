"""Paging parameters of every REST list, over real HTTP: a bounded page size, and 400 with the
parameter named for any value the lists cannot use, never a 5xx."""

import json
from urllib.parse import urlencode

import pytest
from django.conf import settings

from tests.support import http_raw

pytestmark = pytest.mark.django_db(transaction=True)

LISTS = [
    "/api/v1/friends/",
    "/api/v1/friends/online/",
    "/api/v1/blocks/",
    "/api/v1/presence/online/",
]
MAX = settings.REST_MAX_PAGE_SIZE
HUGE = "99999999999999999999"
INT64_OVERFLOW = str(2**63)

ARABIC_ONE = "\u0661"  # a digit to Python's int(), not to the API
NOT_WHOLE_NUMBERS = ["-1", "abc", "1.5", "1e3", "", "0x10", " 5", ARABIC_ONE]
REFUSED_LIMITS = [*NOT_WHOLE_NUMBERS, "0", str(MAX + 1), "100000", INT64_OVERFLOW, HUGE]
REFUSED_OFFSETS = [*NOT_WHOLE_NUMBERS, "9" * 5000]
CASES = [
    *[("limit", value, 400) for value in REFUSED_LIMITS],
    *[("limit", value, 200) for value in ["1", str(MAX)]],
    *[("offset", value, 400) for value in REFUSED_OFFSETS],
    # Past the end is an empty page, however far.
    *[("offset", value, 200) for value in ["0", "1", "100000", INT64_OVERFLOW, HUGE]],
]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(("parameter", "value", "expected"), CASES)
def test_paging_parameters_are_bounded_and_refused_with_400(
    service, make_user, path, parameter, value, expected
):
    staff, other = make_user(staff=True), make_user()
    # One row in the blocks list, so that its page is read from the database.
    blocked = http_raw("PUT", f"{service.http_url}/api/v1/blocks/{other.address}/", staff.token)
    assert blocked[0] == 201

    url = f"{service.http_url}{path}?{urlencode({parameter: value})}"
    status, headers, raw = http_raw("GET", url, staff.token)
    body = json.loads(raw)

    assert status == expected, (status, body)
    assert headers["Content-Type"] == "application/json"
    if expected == 400:
        assert set(body) == {"detail"}, body
        assert body["detail"].startswith(f"{parameter} must be a whole number"), body
        if parameter == "limit":
            assert f"from 1 to {MAX}" in body["detail"], body
    else:
        assert set(body) == {"count", "next", "previous", "results"}, body
        page_size = int(value) if parameter == "limit" else MAX
        assert len(body["results"]) <= min(body["count"], page_size)
        if parameter == "offset" and int(value) >= body["count"]:
            assert body["results"] == []
            assert body["next"] is None
