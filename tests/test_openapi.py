"""The OpenAPI contract of the REST API, served by a real daphne process: a valid OpenAPI 3
document, a browsable page whose assets come from the service itself, and the service
fuzzed from the contract (schemathesis): no 5xx and no response outside the contract."""

import json
import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate

from tests.support import http_get, http_raw, service_with

pytestmark = pytest.mark.django_db(transaction=True)

BASE_DIR = Path(__file__).resolve().parent.parent
SCHEMA = "/api/schema/?format=json"
STAFF_PATHS = "/api/v1/presence/"
BLOCK = "/api/v1/blocks/{address}/"
SHARING = "/api/v1/presence/sharing/"
OWN_STATUS = "/api/v1/presence/status/"


def test_schema_is_valid_openapi_3_with_error_bodies_everywhere(service):
    status, schema = http_get(service, SCHEMA)
    assert status == 200
    validate(schema)
    assert schema["openapi"].startswith("3.")
    # What the fuzzing below generates from is what the service serves.
    assert json.loads(json.dumps(generated_schema())) == schema

    operations = [
        (path, method, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]
    assert {(path, method) for path, method, _ in operations} == {
        ("/api/v1/auth/token", "post"),
        ("/api/v1/friends/", "get"),
        ("/api/v1/friends/online/", "get"),
        ("/api/v1/blocks/", "get"),
        ("/api/v1/blocks/{address}/", "put"),
        ("/api/v1/blocks/{address}/", "delete"),
        ("/api/v1/presence/online/", "get"),
        ("/api/v1/presence/process/", "get"),
        ("/api/v1/presence/sharing/", "get"),
        ("/api/v1/presence/sharing/", "put"),
        ("/api/v1/presence/history/", "get"),
        ("/api/v1/presence/history/", "delete"),
        ("/api/v1/presence/location/", "put"),
        ("/api/v1/presence/location/", "delete"),
        ("/api/v1/presence/heartbeat/", "post"),
        ("/api/v1/presence/status/", "get"),
        ("/api/v1/presence/status/", "put"),
        ("/api/v1/presence/status/", "delete"),
    }
    error = {"$ref": "#/components/schemas/Error"}
    for path, method, operation in operations:
        responses = operation["responses"]
        successes = [code for code in responses if code.startswith("2")]
        assert len(successes) == 1, (path, method, responses)
        if successes != ["204"]:
            body = responses[successes[0]]["content"]["application/json"]["schema"]
            assert "$ref" in body, (path, method, body)
        errors = [code for code in responses if code.startswith("4")]
        assert {"401", "406", "429"} <= set(errors), (path, method, errors)
        for code in errors:
            assert responses[code]["content"]["application/json"]["schema"] == error
        assert operation["security"], (path, method)
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail"]

    # Every list caps its page size in the contract as the service does.
    for _, _, operation in operations:
        if operation["operationId"].endswith("_list"):
            limit = next(p for p in operation["parameters"] if p["name"] == "limit")
            assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}


def test_schema_links_to_the_websocket_protocol_served_by_the_service(service):
    _, schema = http_get(service, SCHEMA)
    links = re.findall(r"\]\((/api/protocol/[^)]+)\)", schema["info"]["description"])
    served = {
        "/api/protocol/protocol.md": "docs/protocol.md",
        "/api/protocol/social_service_v2.proto": "presence/protocol/social_service_v2.proto",
        "/api/protocol/friendships_service.proto": "presence/protocol/friendships_service.proto",
        "/api/protocol/dcl_rpc.proto": "presence/rpc/dcl_rpc.proto",
    }
    assert sorted(links) == sorted(served)
    for link, file in served.items():
        status, headers, body = http_raw("GET", f"{service.http_url}{link}")
        assert status == 200
        assert headers["Content-Type"].startswith(("text/markdown", "text/plain"))
        assert body == (BASE_DIR / file).read_bytes()
    assert http_get(service, "/api/protocol/settings.py")[0] == 404


def test_docs_page_serves_every_asset_itself(service):
    page_url = f"{service.http_url}/api/docs/"
    status, headers, raw = http_raw("GET", page_url)
    page = raw.decode()
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(asset.endswith(".js") for asset in assets), assets
    assert any(asset.endswith(".css") for asset in assets), assets
    for asset in assets:
        url = urljoin(page_url, asset)
        assert urlsplit(url).netloc == urlsplit(page_url).netloc, f"{asset} is not served here"
        assert http_raw("GET", url)[0] == 200, asset
    # The page loads the contract from this service too.
    assert '"/api/schema/"' in page


# --- The service fuzzed from its contract ------------------------------------------------------

# Rates high enough that the fuzzer reaches the views rather than the throttles.
UNTHROTTLED = {
    "REST_USER_RATE": "1000000/min",
    "REST_ANON_RATE": "1000000/min",
    "PRESENCE_FRIENDSHIP_ACTIONS_PER_MINUTE": "1000000",
    "PRESENCE_FRIENDSHIP_ACTIONS_PER_PAIR_PER_MINUTE": "1000000",
}


unthrottled_service = service_with(UNTHROTTLED)


def generated_schema() -> dict:
    """The contract as /api/schema/ serves it, generated in this process at collection, when
    schemathesis makes one test per operation."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


fuzzed = schemathesis.openapi.from_dict(generated_schema())


@fuzzed.parametrize()
# The same examples on every run, so that a red CI run names a change, not a draw.
@settings(
    derandomize=True,
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_service_keeps_its_contract_whatever_it_is_sent(case, make_user, unthrottled_service):
    user = make_user(staff=case.path.startswith(STAFF_PATHS))
    # A schema-valid block or unblock can still break a rule of the pair's current state
    # (already blocked, not blocked), and a schema-valid status message a rule of its text or
    # end (a control character, an end passed): refused with the documented 400. Sharing
    # lists, schema-valid, name friends only: anyone else is refused with a 400.
    refusable = (BLOCK, OWN_STATUS, SHARING)
    excluded = [schemathesis.checks.positive_data_acceptance] if case.path in refusable else []
    case.call_and_validate(
        base_url=unthrottled_service.http_url,
        headers={"Authorization": f"Bearer {user.token}"},
        excluded_checks=excluded,
    )
    assert "Traceback" not in unthrottled_service.log_tail(200)
