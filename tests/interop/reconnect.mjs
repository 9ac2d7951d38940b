// One @dcl/rpc client process connecting again and again, as an explorer after network drops
// or a backend holding many connections does: each connection creates a port, loads
// FriendshipsService, calls GetOnlineFriends with the user's token, and closes before the
// next one opens. @dcl/rpc numbers its messages with one counter for the whole process, so
// the connections' first frames carry every message number from 1 upwards.
//
// Usage: node reconnect.mjs [WS_URL TOKEN [CONNECTIONS]]
// or the environment: RPC_URL, USER_TOKEN, CONNECTIONS (600).
// Prints a "refused:" line for each connection that was not served and a last line
// "served: S of N"; exits 0 when all were served, 1 otherwise, 2 on the overall timeout
// (RECONNECT_TIMEOUT_MS, 120 s).

import path from "node:path"
import { fileURLToPath } from "node:url"

// @dcl/rpc and protobufjs are CommonJS: import their module objects, then pick names.
import rpc from "@dcl/rpc"
import webSocketTransport from "@dcl/rpc/dist/transports/WebSocket.js"
import protobuf from "protobufjs"
import WebSocket from "ws"

const { createRpcClient } = rpc
const { WebSocketTransport } = webSocketTransport

const TIMEOUT_MS = Number(process.env.RECONNECT_TIMEOUT_MS || 120000)
// A connection that neither answers nor closes within this is counted as not served.
const CONNECTION_TIMEOUT_MS = 10000
const HERE = path.dirname(fileURLToPath(import.meta.url))
const PROTO = path.resolve(HERE, "../../presence/protocol/friendships_service.proto")
const MODULE = "FriendshipsService"

function fail(message, code = 1) {
  process.stderr.write(`FAIL: ${message}\n`)
  process.exit(code)
}

function settings() {
  const args = process.argv.slice(2)
  const env = process.env
  const url = args[0] ?? env.RPC_URL
  const token = args[1] ?? env.USER_TOKEN
  const connections = Number(args[2] ?? env.CONNECTIONS ?? 600)
  if (!url || !token || !(connections > 0)) {
    fail("usage: node reconnect.mjs WS_URL TOKEN [CONNECTIONS] (or RPC_URL, USER_TOKEN, CONNECTIONS)")
  }
  return { url, token, connections }
}

// Resolves with the close code and reason once the socket closes.
function closed(socket) {
  return new Promise((resolve) => {
    socket.once("close", (code, reason) => resolve({ code, reason: reason.toString() }))
  })
}

// One connection: the online friends' pages, or throws saying why it was not served.
async function onlineFriendsOnce(url, request, UsersResponse) {
  const socket = new WebSocket(url)
  // What WebSocketTransport sets too: frames must arrive as ArrayBuffer, not Buffer.
  socket.binaryType = "arraybuffer"
  const ended = closed(socket)
  const work = (async () => {
    const client = await createRpcClient(WebSocketTransport(socket))
    const port = await client.createPort("reconnect")
    const module = await port.loadModule(MODULE)
    const pages = []
    for await (const bytes of await module.GetOnlineFriends(request)) {
      const page = UsersResponse.toObject(UsersResponse.decode(bytes), { oneofs: true })
      if (page.response !== "users") throw new Error(`answered ${JSON.stringify(page)}`)
      pages.push(page)
    }
    return pages
  })()
  let timer
  const outcome = await Promise.race([
    work.then((pages) => ({ pages }), (error) => ({ error: String(error?.message ?? error) })),
    ended.then(({ code, reason }) => ({ error: `closed by the server: ${code} ${reason}` })),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve({ error: "no answer" }), CONNECTION_TIMEOUT_MS)
    }),
  ])
  clearTimeout(timer)
  work.catch(() => {})
  socket.close()
  await ended
  if (outcome.error) throw new Error(outcome.error)
  return outcome.pages
}

async function main() {
  const { url, token, connections } = settings()
  const root = await protobuf.load(PROTO)
  const Payload = root.lookupType("Payload")
  const UsersResponse = root.lookupType("UsersResponse")
  const request = Payload.encode(Payload.fromObject({ synapseToken: token })).finish()
  let served = 0
  for (let i = 1; i <= connections; i++) {
    try {
      await onlineFriendsOnce(url, request, UsersResponse)
      served++
    } catch (error) {
      process.stdout.write(`refused: connection ${i}: ${error.message}\n`)
    }
  }
  process.stdout.write(`served: ${served} of ${connections}\n`)
  return served === connections
}

process.on("unhandledRejection", (error) => fail(error?.stack ?? String(error)))
setTimeout(() => fail(`timed out after ${TIMEOUT_MS / 1000} s`, 2), TIMEOUT_MS)

main().then(
  (allServed) => process.exit(allServed ? 0 : 1),
  (error) => fail(error?.stack ?? String(error)),
)
