"""The store: presence in Redis. `online` holds users' connections and visible status,
`processes` the server processes' heartbeats; `keys` names every key. Nothing here
publishes: a transition reports what changed and presence.services tells friends."""
