"""The event loop the service runs on: uvloop's.

Daphne creates its event loop, and installs Twisted's reactor on it, when daphne.server is
first imported; importing this module before sets the policy that loop comes from. Without
it, the service runs on asyncio's own loop, which spends more CPU per connection set-up
(BENCHMARKS.md, "Reconnect storms"). tests/test_dependency_guards.py fails if daphne's loop
is not uvloop's.
"""

import asyncio

import uvloop

asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
