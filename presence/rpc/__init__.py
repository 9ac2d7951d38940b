"""dcl-rpc, the RPC protocol of Decentraland, over any transport that carries binary frames.

Nothing here knows about Django, friendships or presence: `wire` encodes and decodes
frames, `server` runs one connection's ports, modules, calls and streams.
"""
