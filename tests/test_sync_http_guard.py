"""presence_project.sync_http.OneThreadASGIHandler replaces Django's ASGIHandler.__call__
with a copy that leaves out ThreadSensitiveContext. When Django changes that method, the
copy may drop what the new one does: this fails, naming the override, until it is checked."""

import ast
import inspect
import textwrap

from django.core.handlers.asgi import ASGIHandler

# Django 5.2's ASGIHandler.__call__, statements only (docstring and comments left out).
DJANGOS_CALL = """
async def __call__(self, scope, receive, send):
    if scope["type"] != "http":
        raise ValueError(
            "Django can only handle ASGI/HTTP connections, not %s." % scope["type"]
        )

    async with ThreadSensitiveContext():
        await self.handle(scope, receive, send)
"""


def _statements(source: str) -> str:
    function = ast.parse(textwrap.dedent(source)).body[0]
    assert isinstance(function, ast.AsyncFunctionDef)
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return ast.dump(ast.Module(body=body, type_ignores=[]))


def test_djangos_asgi_handler_call_is_the_one_the_override_copies():
    assert _statements(inspect.getsource(ASGIHandler.__call__)) == _statements(DJANGOS_CALL), (
        "django.core.handlers.asgi.ASGIHandler.__call__ changed: "
        "presence_project.sync_http.OneThreadASGIHandler.__call__ overrides it; compare the "
        "two and update the override (and DJANGOS_CALL here)"
    )
