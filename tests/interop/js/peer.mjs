// js-libp2p peer driven by tests/interop over stdin/stdout (one JSON object per line each way).
//
//   node peer.mjs <tls|noise> [kad]
//
// Listens on /ip4/127.0.0.1/tcp/0 with TCP + the chosen security + yamux, serves identify, ping and
// /interop/echo/1.0.0 (echoes every byte until the remote closes its write side), then prints
//   {"event":"ready","peerId":...,"addrs":[...]}
// and answers commands, each with {"id":<same id>,"ok":true,...} or {"id":..,"ok":false,"error":...}:
//   {"id":1,"cmd":"dial","addr":"/ip4/.../p2p/<id>"}              -> {"remotePeer":...}
//   {"id":2,"cmd":"ping","addr":...}                                -> {"rtt":ms}
//   {"id":3,"cmd":"identify","addr":...}                            -> identify result (strings)
//   {"id":4,"cmd":"echo","addr":...,"protocol":...,"size":n}        -> {"bytes":n} (data verified)
//   {"id":5,"cmd":"connections","peer":...}                          -> {"count":n,"encryption":[...]}
//   {"id":6,"cmd":"stop"}                                           -> exits after replying
// With `kad`, @libp2p/kad-dht runs in server mode on /ipfs/kad/1.0.0 (loopback addresses kept, IPNS
// validator and selector installed) and these commands exist too (each under a 20 s abort signal):
//   {"cmd":"dht-table"}                                -> {"peers":[ids]}
//   {"cmd":"find-peer","peer":id}                      -> {"addrs":[...]}
//   {"cmd":"provide","cid":cid}                        -> {}
//   {"cmd":"find-providers","cid":cid,"count":n}       -> {"providers":[{"id","addrs"}]}
//   {"cmd":"ipns-publish","value":path,"seq":n,"lifetimeMs":ms,"v1":bool}
//                                                      -> {"key":hex,"record":hex}  (record signed by this node)
//   {"cmd":"ipns-get","name":id}                       -> {"value","sequence","validity"}
// The process exits by itself when stdin closes, so a crashed test never leaves it behind.
import './node20-compat.mjs'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { createIPNSRecord, marshalIPNSRecord, unmarshalIPNSRecord, multihashToIPNSRoutingKey } from 'ipns'
import { ipnsValidator } from 'ipns/validator'
import { ipnsSelector } from 'ipns/selector'
import { CID } from 'multiformats/cid'
import readline from 'node:readline'

const ECHO = '/interop/echo/1.0.0'
const security = process.argv[2]
const withKad = process.argv[3] === 'kad'
if ((security !== 'tls' && security !== 'noise') || (process.argv[3] != null && !withKad)) {
  console.error('usage: node peer.mjs <tls|noise> [kad]')
  process.exit(2)
}

const privateKey = await generateKeyPair('Ed25519')
// Two identify streams may overlap: the automatic one after a dial and an `identify` command.
const services = { identify: identify({ maxOutboundStreams: 2 }), ping: ping() }
if (withKad) {
  services.dht = kadDHT({
    protocol: '/ipfs/kad/1.0.0',
    clientMode: false,
    peerInfoMapper: passthroughMapper,
    validators: { ipns: ipnsValidator },
    selectors: { ipns: ipnsSelector }
  })
}
const node = await createLibp2p({
  privateKey,
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [security === 'tls' ? tls() : noise()],
  streamMuxers: [yamux()],
  services,
  connectionManager: { maxConnections: 50 }
})

await node.handle(ECHO, async (stream) => {
  try {
    for await (const chunk of stream) {
      const bytes = chunk.subarray()
      if (!stream.send(bytes)) {
        await stream.onDrain()
      }
    }
    await stream.close()
  } catch (err) {
    stream.abort(err)
  }
}, { maxInboundStreams: 64 })

function reply (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function pattern (size) {
  const data = new Uint8Array(size)
  for (let i = 0; i < size; i++) data[i] = (i * 31 + 7) & 0xff
  return data
}

async function echo (addr, protocol, size) {
  const stream = await node.dialProtocol(multiaddr(addr), protocol)
  const data = pattern(size)
  const received = []
  let got = 0
  const reader = (async () => {
    for await (const chunk of stream) {
      const bytes = chunk.subarray()
      received.push(bytes)
      got += bytes.length
    }
  })()
  const step = 65536
  for (let off = 0; off < size; off += step) {
    if (!stream.send(data.subarray(off, Math.min(size, off + step)))) {
      await stream.onDrain()
    }
  }
  await stream.close()
  await reader
  const all = new Uint8Array(got)
  let off = 0
  for (const b of received) { all.set(b, off); off += b.length }
  if (got !== size || !all.every((v, i) => v === data[i])) {
    throw new Error(`echo mismatch: sent ${size} bytes, got ${got} back`)
  }
  return { bytes: got }
}

const hex = (bytes) => Buffer.from(bytes).toString('hex')
const signal = () => AbortSignal.timeout(20_000)

async function drain (events) {
  const seen = []
  for await (const e of events) seen.push(e)
  return seen
}

async function handle (msg) {
  switch (msg.cmd) {
    case 'dial': {
      const conn = await node.dial(multiaddr(msg.addr))
      return { remotePeer: conn.remotePeer.toString(), encryption: conn.encryption, multiplexer: conn.multiplexer }
    }
    case 'ping':
      return { rtt: await node.services.ping.ping(multiaddr(msg.addr)) }
    case 'identify': {
      const conn = await node.dial(multiaddr(msg.addr))
      const r = await node.services.identify.identify(conn)
      return {
        peerId: r.peerId.toString(),
        agentVersion: r.agentVersion,
        protocolVersion: r.protocolVersion,
        protocols: r.protocols,
        listenAddrs: r.listenAddrs.map((a) => a.toString()),
        observedAddr: r.observedAddr?.toString() ?? null,
        encryption: conn.encryption
      }
    }
    case 'echo':
      return await echo(msg.addr, msg.protocol ?? ECHO, msg.size)
    case 'connections': {
      const conns = node.getConnections().filter((c) => c.remotePeer.toString() === msg.peer)
      return { count: conns.length, encryption: conns.map((c) => c.encryption), multiplexer: conns.map((c) => c.multiplexer) }
    }
    case 'dht-table':
      return { peers: [...node.services.dht.routingTable.kb.toIterable()].map((c) => c.peerId.toString()) }
    case 'find-peer': {
      const info = await node.peerRouting.findPeer(peerIdFromString(msg.peer), { signal: signal() })
      return { addrs: info.multiaddrs.map((a) => a.toString()) }
    }
    case 'provide':
      await node.contentRouting.provide(CID.parse(msg.cid), { signal: signal() })
      return {}
    case 'find-providers': {
      const providers = []
      for await (const p of node.contentRouting.findProviders(CID.parse(msg.cid), { signal: signal() })) {
        providers.push({ id: p.id.toString(), addrs: p.multiaddrs.map((a) => a.toString()) })
        if (providers.length >= (msg.count ?? 20)) break
      }
      return { providers }
    }
    case 'ipns-publish': {
      const record = await createIPNSRecord(privateKey, msg.value, BigInt(msg.seq), msg.lifetimeMs,
        msg.v1 === false ? { v1Compatible: false } : {})
      const key = multihashToIPNSRoutingKey(node.peerId.toMultihash())
      const raw = marshalIPNSRecord(record)
      await drain(node.services.dht.put(key, raw, { signal: signal() }))
      return { key: hex(key), record: hex(raw) }
    }
    case 'ipns-get': {
      const key = multihashToIPNSRoutingKey(peerIdFromString(msg.name).toMultihash())
      let best = null
      for (const e of await drain(node.services.dht.get(key, { signal: signal() }))) {
        if (e.name === 'VALUE') best = e.value
      }
      if (best == null) throw new Error('no IPNS record found')
      const r = unmarshalIPNSRecord(best)
      return { value: r.value, sequence: r.sequence.toString(), validity: r.validity }
    }
    case 'stop':
      return {}
    default:
      throw new Error(`unknown command ${msg.cmd}`)
  }
}

reply({ event: 'ready', peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map((a) => a.toString()) })

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', async (line) => {
  let msg
  try {
    msg = JSON.parse(line)
  } catch {
    return
  }
  try {
    const res = await handle(msg)
    reply({ id: msg.id, ok: true, ...res })
    if (msg.cmd === 'stop') {
      await node.stop()
      process.exit(0)
    }
  } catch (err) {
    reply({ id: msg.id, ok: false, error: String(err?.stack ?? err) })
  }
})
rl.on('close', async () => {
  await node.stop()
  process.exit(0)
})
