// A reconnect storm, driven by Decentraland's own dcl-rpc client (@dcl/rpc over `ws`, the
// packages tests/interop installs). Each client connects, creates a port, loads
// FriendshipsService and opens SubscribeFriendshipPresenceUpdates with its token in the
// payload (ADR-246's synapse_token, which authenticates the connection on that call); it is
// served once the subscription's first item arrived (bench/storm.py gives every user an
// online friend, so that item is the snapshot, sent when the server finished subscribing).
// Clients stay connected until stdin closes.
//
// Usage: node bench/storm.mjs SPEC_FILE
// SPEC_FILE is JSON: {"url", "tokens": [...], "concurrency", "timeout_ms"}; `concurrency`
// clients are in flight at any time (tokens.length: all at once). Prints one JSON line:
// {"served", "failed", "errors": {reason: count}, "started_ms", "finished_ms",
//  "setup_ms": [per served client, in order of completion], "served_at_ms": [...]}
// then waits for stdin to close, closes every socket and exits.

import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import path from "node:path"
import { fileURLToPath } from "node:url"

const HERE = path.dirname(fileURLToPath(import.meta.url))
// The client packages are tests/interop's: one lock file for every Node client.
const require = createRequire(path.resolve(HERE, "../tests/interop/package.json"))
const { createRpcClient } = require("@dcl/rpc")
const { WebSocketTransport } = require("@dcl/rpc/dist/transports/WebSocket.js")
const protobuf = require("protobufjs")
const WebSocket = require("ws")

const PROTO = path.resolve(HERE, "../presence/protocol/friendships_service.proto")
const MODULE = "FriendshipsService"

function reasonOf(error) {
  // One bucket per kind of failure: addresses and ids vary, the reason does not.
  return String(error?.code ?? error?.message ?? error).replace(/\d+\.\d+\.\d+\.\d+:\d+/g, "ADDR")
}

async function main() {
  const spec = JSON.parse(readFileSync(process.argv[2], "utf8"))
  const root = await protobuf.load(PROTO)
  const Payload = root.lookupType("Payload")
  const Item = root.lookupType("SubscribeFriendshipPresenceUpdatesResponse")
  const sockets = []
  const setup = []
  const servedAt = []
  const errors = {}
  let failed = 0
  const t0 = performance.now()

  async function client(token) {
    const began = performance.now()
    const socket = new WebSocket(spec.url)
    sockets.push(socket)
    let timer
    const closed = new Promise((_, reject) => {
      socket.once("close", (code, reason) => reject(new Error(`closed ${code} ${reason}`)))
      socket.once("error", (error) => reject(error))
      timer = setTimeout(() => reject(new Error("not served in time")), spec.timeout_ms)
    })
    const work = (async () => {
      const rpc = await createRpcClient(WebSocketTransport(socket))
      const port = await rpc.createPort("storm")
      const module = await port.loadModule(MODULE)
      const request = Payload.encode(Payload.fromObject({ synapseToken: token })).finish()
      const stream = (await module.SubscribeFriendshipPresenceUpdates(request))[Symbol.asyncIterator]()
      const first = await stream.next()
      if (first.done) throw new Error("the subscription ended at once")
      const item = Item.toObject(Item.decode(first.value), { oneofs: true })
      if (item.response !== "updates") throw new Error(`answered ${item.response}`)
    })()
    try {
      await Promise.race([work, closed])
      const now = performance.now()
      setup.push(now - began)
      servedAt.push(now - t0)
    } catch (error) {
      failed++
      const reason = reasonOf(error)
      errors[reason] = (errors[reason] ?? 0) + 1
    } finally {
      clearTimeout(timer)
      work.catch(() => {})
      closed.catch(() => {})
    }
  }

  const remaining = spec.tokens[Symbol.iterator]()
  async function lane() {
    for (const token of remaining) await client(token)
  }
  const lanes = Math.max(1, Math.min(spec.concurrency, spec.tokens.length))
  await Promise.all(Array.from({ length: lanes }, lane))
  const finished = performance.now()
  process.stdout.write(
    JSON.stringify({
      served: setup.length,
      failed,
      errors,
      started_ms: 0,
      finished_ms: finished - t0,
      setup_ms: setup,
      served_at_ms: servedAt,
    }) + "\n",
  )
  process.stdin.resume()
  process.stdin.on("end", () => {
    for (const socket of sockets) socket.terminate()
    process.exit(0)
  })
}

main().catch((error) => {
  process.stderr.write(`FAIL: ${error?.stack ?? error}\n`)
  process.exit(1)
})
