// Drives the presence service with Decentraland's own social client (@dcl/social-rpc-client,
// its v2 client, unchanged) and identities made by @dcl/crypto, as the explorer makes them:
// a wallet delegating to an ephemeral key that signs every request (ADR-44 signed fetch).
//
// Usage:
//   node social_v2.mjs identities DIR          writes DIR/a.json and DIR/b.json
//   node social_v2.mjs friends A.json B.json   (RPC_URL) befriend, watch connectivity
//   node social_v2.mjs token A.json            (HTTP_URL) sign a token request
// Prints one "ok:" line per step; exits 0 on success, 1 on a failure, 2 on the overall
// timeout (SCENARIO_TIMEOUT_MS, 20 s). "friends" may run again with the same identities: it
// first ends, through the protocol, whatever an earlier run left between A and B (a
// friendship, a pending request, a block either way).

import { readFileSync, writeFileSync } from "node:fs"
import path from "node:path"

// CommonJS packages: import their module objects, then pick names.
import dclCrypto from "@dcl/crypto"
import unsafe from "@dcl/crypto/dist/crypto.js"
import socialClient from "@dcl/social-rpc-client"
import socialServiceV2 from "@dcl/social-rpc-client/dist/protobuff-types/decentraland/social_service/v2/social_service_v2.gen.js"
import cryptoFetch from "decentraland-crypto-fetch"

const { Authenticator } = dclCrypto
const { createUnsafeIdentity } = unsafe
const { createSocialClientV2 } = socialClient
const { signedHeaderFactory } = cryptoFetch
const { SocialServiceDefinition } = socialServiceV2

const TIMEOUT_MS = Number(process.env.SCENARIO_TIMEOUT_MS || 20000)
const EPHEMERAL_MINUTES = 60
// ConnectivityStatus and FriendshipStatus of decentraland.social_service.v2.
const ONLINE = 0
const OFFLINE = 1
const [REQUEST_SENT, REQUEST_RECEIVED, ACCEPTED, BLOCKED, BLOCKED_BY] = [0, 1, 3, 6, 8]
const INCOMPLETE = "The response is incomplete"

let current = "starting"

// The client reads only v1's error members (bad_request_error, ...), so v2's own
// (invalid_friendship_action, invalid_request, ...) reach it as "The response is incomplete".
// The last error answer decoded is kept to name the server's error instead.
let lastError = null
for (const type of new Set(Object.values(SocialServiceDefinition.methods).map((m) => m.responseType))) {
  const decode = type.decode.bind(type)
  type.decode = (...args) => {
    const response = decode(...args)
    for (const [member, value] of Object.entries(response)) {
      if (value !== undefined && /Error$|^invalid|NotFound$/.test(member)) {
        lastError = `${member}: ${value.message ?? JSON.stringify(value)}`
      }
    }
    return response
  }
}

function describe(error) {
  if (error?.message === INCOMPLETE && lastError) {
    return `the server answered ${lastError} (the client says only "${INCOMPLETE}")`
  }
  return error?.stack ?? String(error)
}

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

function required(name) {
  const value = process.env[name]
  if (!value) fail(`${name} is not set`)
  return value
}

// --- Identities ---------------------------------------------------------------------------

async function makeIdentity() {
  const wallet = createUnsafeIdentity()
  const ephemeral = createUnsafeIdentity()
  const identity = await Authenticator.initializeAuthChain(
    wallet.address,
    ephemeral,
    EPHEMERAL_MINUTES,
    async (message) => Authenticator.createSignature(wallet, message),
  )
  return { address: wallet.address, identity }
}

function saveIdentity(file, { address, identity }) {
  const stored = { address, identity: { ...identity, expiration: identity.expiration.toISOString() } }
  writeFileSync(file, JSON.stringify(stored, null, 2))
}

function loadIdentity(file) {
  const { address, identity } = JSON.parse(readFileSync(file, "utf8"))
  return { address, identity: { ...identity, expiration: new Date(identity.expiration) } }
}

// --- Friends and connectivity ---------------------------------------------------------------

async function signIn(label, url, user) {
  const client = createSocialClientV2(url)
  const closed = new Promise((resolve) => client.onDisconnect(resolve))
  await client.connect(user.identity)
  return { label, client, closed }
}

async function disconnect(connection) {
  connection.client.disconnect()
  await connection.closed
}

// Reads the connectivity stream in the background; steps wait for a friend to reach a status.
class ConnectivityWatch {
  constructor(updates) {
    this.latest = new Map()
    this.seen = []
    this.waiters = []
    this.failure = null
    this.consume(updates)
  }

  async consume(updates) {
    try {
      for await (const { friend, status } of updates) {
        const address = friend.address.toLowerCase()
        this.latest.set(address, status)
        this.seen.push([address, status])
        process.stdout.write(`update: ${address} is ${status}\n`)
        this.wake()
      }
    } catch (error) {
      if (!this.stopped) this.failure = error
    }
    if (!this.stopped && !this.failure) this.failure = new Error("the server ended the stream")
    this.wake()
  }

  wake() {
    for (const waiter of [...this.waiters]) waiter()
  }

  // Resolves once `address` shows `status` in an update numbered `after` or later.
  until(address, status, after = 0) {
    address = address.toLowerCase()
    return new Promise((resolve, reject) => {
      const check = () => {
        const index = this.seen.findIndex(([a, s], i) => i >= after && a === address && s === status)
        if (index >= 0 || this.failure) {
          this.waiters = this.waiters.filter((w) => w !== check)
          if (index >= 0) resolve(index + 1)
          else reject(this.failure)
        }
      }
      this.waiters.push(check)
      check()
    })
  }
}

// Ends whatever an earlier run left between A and B, so the scenario starts from the same
// state however often it runs; returns the statuses A saw on the way.
async function resetPair(a, userA, b, userB) {
  const seen = []
  for (let round = 0; round < 4; round++) {
    const { status } = await a.client.getFriendshipStatus(userB.address)
    seen.push(status)
    const undo = {
      [ACCEPTED]: () => a.client.removeFriendship(userB.address),
      [REQUEST_SENT]: () => a.client.cancelFriendshipRequest(userB.address),
      [REQUEST_RECEIVED]: () => a.client.rejectFriendshipRequest(userB.address),
      [BLOCKED]: () => a.client.unblockUser(userB.address),
      [BLOCKED_BY]: () => b.client.unblockUser(userA.address),
    }[status]
    if (!undo) return seen
    await undo()
  }
  throw new Error(`A and B's friendship could not be reset: statuses ${seen.join(", ")}`)
}

async function friends(url, userA, userB) {
  step("A and B sign in with their identities")
  let a = await signIn("a", url, userA)
  const b = await signIn("b", url, userB)
  ok(`A (${userA.address}) and B (${userB.address}) signed in at ${url}`)

  step("A and B end whatever an earlier run left between them")
  const statuses = await resetPair(a, userA, b, userB)
  ok(`A and B start with no friendship, request or block (statuses seen: ${statuses.join(", ")})`)

  step("A sends a friendship request to B")
  const request = await a.client.requestFriendship(userB.address, "interop")
  if (request.friend?.address.toLowerCase() !== userB.address.toLowerCase() || !request.id) {
    throw new Error(`unexpected request ${JSON.stringify(request)}`)
  }
  ok("A requested friendship with B")

  step("B finds A's request pending")
  const pending = await b.client.getPendingFriendshipRequests({ limit: 10, offset: 0 })
  const incoming = pending.requests.map((r) => r.friend.address.toLowerCase())
  if (!incoming.includes(userA.address.toLowerCase()) || pending.paginationData.total !== 1) {
    throw new Error(`pending requests ${JSON.stringify(pending)}`)
  }
  ok("B sees A's request")

  step("B accepts A's request")
  await b.client.acceptFriendshipRequest(userA.address)
  const status = await b.client.getFriendshipStatus(userA.address)
  if (status.status !== ACCEPTED) throw new Error(`friendship status ${JSON.stringify(status)}`)
  const list = await b.client.getFriends({ limit: 10, offset: 0 })
  if (!list.friends.some((f) => f.address.toLowerCase() === userA.address.toLowerCase())) {
    throw new Error(`GetFriends answered ${JSON.stringify(list)}`)
  }
  ok("B accepted A and lists A as a friend")

  step("B subscribes to connectivity updates and sees A ONLINE")
  const watch = new ConnectivityWatch(b.client.subscribeToFriendConnectivityUpdates())
  let seen = await watch.until(userA.address, ONLINE)
  ok("B saw A ONLINE")

  step("A disconnects")
  await disconnect(a)
  seen = await watch.until(userA.address, OFFLINE, seen)
  ok("B saw A OFFLINE")

  step("A signs in again")
  a = await signIn("a-again", url, userA)
  await watch.until(userA.address, ONLINE, seen)
  ok("B saw A come back ONLINE")

  step("A and B disconnect")
  watch.stopped = true
  await disconnect(a)
  await disconnect(b)
  ok("A and B disconnected")
}

// --- A token by signing ---------------------------------------------------------------------

async function token(httpUrl, user) {
  const signHeaders = signedHeaderFactory()
  const path = "/api/v1/auth/token"

  step("A signs a token request")
  const headers = signHeaders(user.identity, "POST", path, {})
  const response = await fetch(`${httpUrl}${path}`, { method: "POST", headers })
  const body = await response.json()
  if (response.status !== 201 || body.address !== user.address.toLowerCase() || !body.token) {
    throw new Error(`POST ${path} answered ${response.status} ${JSON.stringify(body)}`)
  }
  ok(`A got a token for ${body.address}`)
  process.stdout.write(`token: ${body.token}\n`)

  step("the token works on the REST API")
  const friendsResponse = await fetch(`${httpUrl}/api/v1/friends/`, {
    headers: { Authorization: `Bearer ${body.token}` },
  })
  if (friendsResponse.status !== 200) {
    throw new Error(`GET /api/v1/friends/ answered ${friendsResponse.status}`)
  }
  ok("the token reads A's friends")

  step("the same signed headers are refused a second time")
  const replay = await fetch(`${httpUrl}${path}`, { method: "POST", headers })
  if (replay.status !== 401) throw new Error(`a replay answered ${replay.status}`)
  ok("a replay of the signed headers is refused")
}

async function main() {
  const [command, ...args] = process.argv.slice(2)
  if (command === "identities") {
    const dir = args[0] ?? fail("usage: node social_v2.mjs identities DIR")
    for (const name of ["a", "b"]) saveIdentity(path.join(dir, `${name}.json`), await makeIdentity())
    ok(`identities written to ${dir}`)
  } else if (command === "friends") {
    if (args.length !== 2) fail("usage: node social_v2.mjs friends A.json B.json")
    await friends(required("RPC_URL"), loadIdentity(args[0]), loadIdentity(args[1]))
  } else if (command === "token") {
    if (args.length !== 1) fail("usage: node social_v2.mjs token A.json")
    await token(required("HTTP_URL"), loadIdentity(args[0]))
  } else {
    fail("usage: node social_v2.mjs identities DIR | friends A.json B.json | token A.json")
  }
}

process.on("unhandledRejection", (error) => fail(describe(error)))
setTimeout(() => fail(`timed out after ${TIMEOUT_MS / 1000} s`, 2), TIMEOUT_MS)

main().then(
  () => {
    process.stdout.write(`social v2 ${process.argv[2]} scenario passed\n`)
    process.exit(0)
  },
  (error) => fail(describe(error)),
)
