// Drives the presence service with Decentraland's own dcl-rpc client (@dcl/rpc), so that
// byte-compatibility is checked against the real implementation, not our reading of it.
//
// Usage: node scenario.mjs [WS_URL A_ADDRESS A_TOKEN B_ADDRESS B_TOKEN]
// or the environment: RPC_URL, USER_A_ADDRESS, USER_A_TOKEN, USER_B_ADDRESS, USER_B_TOKEN.
// Prints one "ok:" line per step (and an "update:" line per presence item B receives);
// exits 0 on success, 1 on a failure, 2 on the overall timeout (SCENARIO_TIMEOUT_MS, 20 s).
// It may run again with the same users: it first ends, through the protocol, whatever
// friendship or pending request an earlier run left between A and B. Blocks are not lifted
// (FriendshipsService cannot list them): A and B must not block each other.

import path from "node:path"
import { fileURLToPath } from "node:url"

// @dcl/rpc and protobufjs are CommonJS: import their module objects, then pick names.
import rpc from "@dcl/rpc"
import codegen from "@dcl/rpc/dist/codegen.js"
import webSocketTransport from "@dcl/rpc/dist/transports/WebSocket.js"
import protobuf from "protobufjs"
import WebSocket from "ws"

const { createRpcClient } = rpc
const { loadService } = codegen
const { WebSocketTransport } = webSocketTransport

const TIMEOUT_MS = Number(process.env.SCENARIO_TIMEOUT_MS || 20000)
const HERE = path.dirname(fileURLToPath(import.meta.url))
const PROTO = path.resolve(HERE, "../../presence/protocol/friendships_service.proto")
const MODULE = "FriendshipsService"

let current = "starting"

function fail(message, code = 1) {
  process.stderr.write(`FAIL: ${current}: ${message}\n`)
  process.exit(code)
}

function ok(message) {
  process.stdout.write(`ok: ${message}\n`)
}

function step(name) {
  current = name
}

function settings() {
  const args = process.argv.slice(2)
  const env = process.env
  const values = {
    url: args[0] ?? env.RPC_URL,
    a: { address: args[1] ?? env.USER_A_ADDRESS, token: args[2] ?? env.USER_A_TOKEN },
    b: { address: args[3] ?? env.USER_B_ADDRESS, token: args[4] ?? env.USER_B_TOKEN },
  }
  if (!values.url || !values.a.address || !values.a.token || !values.b.address || !values.b.token) {
    fail("usage: node scenario.mjs WS_URL A_ADDRESS A_TOKEN B_ADDRESS B_TOKEN (or RPC_URL, USER_A_*, USER_B_*)")
  }
  return values
}

// The service definition loadService expects (what ts-proto would generate), built from the
// .proto at run time. Requests go through fromObject so enums may be given by name; responses
// come back as plain objects with enum names and the set oneof field named.
function serviceDefinition(root) {
  const service = root.lookupService(MODULE)
  service.resolveAll()
  const methods = {}
  for (const method of service.methodsArray) {
    const requestType = method.resolvedRequestType
    const responseType = method.resolvedResponseType
    methods[method.name] = {
      name: method.name,
      requestType: { encode: (value) => requestType.encode(requestType.fromObject(value)) },
      requestStream: Boolean(method.requestStream),
      responseType: { decode: (bytes) => plain(responseType, responseType.decode(bytes)) },
      responseStream: Boolean(method.responseStream),
      options: {},
    }
  }
  return { name: service.name, fullName: service.fullName.replace(/^\./, ""), methods }
}

function plain(type, message) {
  return type.toObject(message, { enums: String, longs: String, defaults: true, oneofs: true })
}

async function connect(label, url, definition) {
  const socket = new WebSocket(url)
  // What WebSocketTransport sets too: frames must arrive as ArrayBuffer, not Buffer.
  socket.binaryType = "arraybuffer"
  const transport = WebSocketTransport(socket)
  const client = await createRpcClient(transport)
  const port = await client.createPort(`interop-${label}`)
  // Fails here, not at the first call, when the module or a procedure is missing.
  const module = await port.loadModule(MODULE)
  for (const name of Object.keys(definition.methods)) {
    if (!(name in module)) throw new Error(`the server's ${MODULE} has no procedure ${name}`)
  }
  return { socket, port, module, service: loadService(port, definition) }
}

function expectOneof(response, field, what) {
  if (response.response !== field) {
    const detail = response.response ? JSON.stringify(response[response.response]) : "nothing"
    throw new Error(`${what}: expected ${field}, got ${response.response ?? "no response"} ${detail}`)
  }
  return response[field]
}

// The addresses a user-list stream answers (GetFriends, GetOnlineFriends), lowercase.
async function userList(procedure, user, client) {
  const addresses = []
  for await (const page of client.service[procedure]({ synapseToken: user.token })) {
    const users = expectOneof(page, "users", `${procedure} page`)
    addresses.push(...users.users.map((u) => u.address.toLowerCase()))
  }
  return addresses
}

function onlineFriends(user, client) {
  return userList("GetOnlineFriends", user, client)
}

async function updateFriendship(user, client, action, other, message) {
  const answer = await client.service.UpdateFriendshipEvent({
    event: { [action]: { user: { address: other.address }, ...(message ? { message } : {}) } },
    authToken: { synapseToken: user.token },
  })
  return expectOneof(answer, "event", `UpdateFriendshipEvent(${action})`)
}

// Ends A's friendship with B, or the request pending between them, so the scenario starts
// from the same state however often it runs; returns what there was.
async function resetPair(userA, a, userB) {
  const b = userB.address.toLowerCase()
  const answer = await a.service.GetRequestEvents({ synapseToken: userA.token })
  const { outgoing, incoming } = expectOneof(answer, "events", "GetRequestEvents")
  const has = (requests) => (requests?.items ?? []).some((r) => r.user.address.toLowerCase() === b)
  let action = null
  if ((await userList("GetFriends", userA, a)).includes(b)) action = "delete"
  else if (has(outgoing)) action = "cancel"
  else if (has(incoming)) action = "reject"
  if (action) await updateFriendship(userA, a, action, userB)
  return action
}

// Reads the presence stream with for-await in the background and lets steps wait for a
// friend to reach a status; keeps the stream open between steps.
class PresenceWatch {
  constructor(stream, decode) {
    this.latest = new Map()
    this.waiters = []
    this.failure = null
    this.finished = this.consume(stream, decode)
  }

  async consume(stream, decode) {
    try {
      for await (const bytes of stream) {
        const updates = expectOneof(decode(bytes), "updates", "presence update")
        for (const { user, status } of updates.users) {
          const address = user.address.toLowerCase()
          this.latest.set(address, status?.type)
          process.stdout.write(`update: B's presence stream has ${address} ${status?.type}\n`)
        }
        this.wake()
      }
      if (!this.stopped) this.failure = new Error("the server ended the presence stream")
    } catch (error) {
      this.failure = error
    }
    this.wake()
  }

  wake() {
    for (const waiter of [...this.waiters]) waiter()
  }

  until(address, status) {
    address = address.toLowerCase()
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.latest.get(address) === status) {
          this.waiters = this.waiters.filter((w) => w !== check)
          resolve()
        } else if (this.failure) {
          this.waiters = this.waiters.filter((w) => w !== check)
          reject(this.failure)
        }
      }
      this.waiters.push(check)
      check()
    })
  }

  async stop(stream) {
    this.stopped = true
    await stream.return()
    await this.finished
  }
}

async function main() {
  const { url, a: userA, b: userB } = settings()
  const root = await protobuf.load(PROTO)
  const definition = serviceDefinition(root)
  const Payload = root.lookupType("Payload")
  const PresenceResponse = root.lookupType("SubscribeFriendshipPresenceUpdatesResponse")

  step("A and B connect")
  const a = await connect("a", url, definition)
  const b = await connect("b", url, definition)
  ok(`A and B connected to ${url} and loaded ${MODULE} (${Object.keys(a.module).length} procedures)`)

  step("A ends any friendship or request an earlier run left with B")
  const reset = await resetPair(userA, a, userB)
  ok(`A and B start with no friendship or pending request (${reset ? `A sent ${reset}` : "there was none"})`)

  step("A sends a friendship request to B")
  const request = await updateFriendship(userA, a, "request", userB, "interop")
  if (request.body !== "request" || request.request.user.address.toLowerCase() !== userB.address.toLowerCase()) {
    throw new Error(`unexpected request event ${JSON.stringify(request)}`)
  }
  ok("A requested friendship with B")

  step("B accepts A's request")
  const accept = await updateFriendship(userB, b, "accept", userA)
  if (accept.body !== "accept") throw new Error(`unexpected accept event ${JSON.stringify(accept)}`)
  ok("B accepted A")

  step("B subscribes to presence updates")
  // The raw procedure resolves once the server has offered the stream (sequence 0).
  const stream = await b.module.SubscribeFriendshipPresenceUpdates(
    Payload.encode(Payload.fromObject({ synapseToken: userB.token })).finish(),
  )
  const watch = new PresenceWatch(stream, (bytes) => plain(PresenceResponse, PresenceResponse.decode(bytes)))
  ok("B subscribed to presence updates")

  step("A sets its status ONLINE")
  const set = await a.service.SetPresenceStatus({ synapseToken: userA.token, status: { type: "ONLINE" } })
  const status = expectOneof(set, "status", "SetPresenceStatus")
  if (status.type !== "ONLINE") throw new Error(`SetPresenceStatus answered ${status.type}`)
  ok("A set status ONLINE")

  step("B waits to see A ONLINE in its presence stream")
  await watch.until(userA.address, "ONLINE")
  ok("B saw A ONLINE")

  step("B lists its online friends")
  const online = await onlineFriends(userB, b)
  if (!online.includes(userA.address.toLowerCase())) {
    throw new Error(`GetOnlineFriends listed ${JSON.stringify(online)}, not A`)
  }
  ok(`B's online friends list A (${online.length} online)`)

  step("A closes its WebSocket")
  const closed = new Promise((resolve) => a.socket.once("close", resolve))
  a.socket.close()
  await closed
  ok("A closed its WebSocket")

  step("B waits to see A OFFLINE in its presence stream")
  await watch.until(userA.address, "OFFLINE")
  ok("B saw A OFFLINE")

  step("B lists its online friends again")
  const after = await onlineFriends(userB, b)
  if (after.includes(userA.address.toLowerCase())) {
    throw new Error(`GetOnlineFriends still lists A: ${JSON.stringify(after)}`)
  }
  ok("B's online friends no longer list A")

  step("B cancels its presence stream and disconnects")
  await watch.stop(stream)
  if (watch.failure) throw watch.failure
  const bClosed = new Promise((resolve) => b.socket.once("close", resolve))
  b.socket.close()
  await bClosed
  ok("B cancelled its stream and disconnected")
}

process.on("unhandledRejection", (error) => fail(error?.stack ?? String(error)))
setTimeout(() => fail(`timed out after ${TIMEOUT_MS / 1000} s`, 2), TIMEOUT_MS)

main().then(
  () => {
    process.stdout.write("interop scenario passed\n")
    process.exit(0)
  },
  (error) => fail(error?.stack ?? String(error)),
)
