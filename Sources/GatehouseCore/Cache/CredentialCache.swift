// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Crypto
import NIOConcurrencyHelpers

/// Remembers recent verdicts on credentials so that a repeat request pays neither bcrypt nor
/// LDAP: nginx sends one subrequest per client request (21 for one `docker push`).
///
/// The key is HMAC-SHA-256 under a random per-process key of the user and password: no
/// password and no hash that could be attacked offline is ever held. Successes live for
/// `ttl`, failures for `negativeTTL` (a failure is keyed by its wrong password, so it can never
/// block the right one). While a backend is unreachable, a success verified at most
/// `staleGrace` ago may still answer. Entries are spread over shards, each a least-recently-used list, so
/// that cores do not contend on one lock.
public final class CredentialCache: Sendable {
    /// What is remembered about one user and password.
    public enum Verdict: Sendable, Equatable {
        case authenticated(Identity)
        case rejected
    }

    struct Key: Hashable, Sendable {
        let a, b, c, d: UInt64
    }

    private struct Node {
        var key: Key
        var verdict: Verdict
        var verified: ContinuousClock.Instant
        var expires: ContinuousClock.Instant
        var generation: Int
        var previous: Int
        var next: Int
    }

    /// One LRU list in arrays: `head` is the most recently used, `tail` the next to go.
    private struct Shard {
        var index: [Key: Int] = [:]
        var nodes: [Node] = []
        var free: [Int] = []
        var head = -1
        var tail = -1

        mutating func unlink(_ slot: Int) {
            let (previous, next) = (nodes[slot].previous, nodes[slot].next)
            if previous >= 0 { nodes[previous].next = next } else { head = next }
            if next >= 0 { nodes[next].previous = previous } else { tail = previous }
        }

        mutating func pushFront(_ slot: Int) {
            nodes[slot].previous = -1
            nodes[slot].next = head
            if head >= 0 { nodes[head].previous = slot }
            head = slot
            if tail < 0 { tail = slot }
        }

        mutating func remove(_ slot: Int) {
            unlink(slot)
            index.removeValue(forKey: nodes[slot].key)
            free.append(slot)
        }
    }

    /// HMAC-SHA-256 keyed with a random per-process secret, ready to be copied for each key:
    /// keying it once saves the key schedule on every request.
    private let keyedMAC = HMAC<SHA256>(key: SymmetricKey(size: .bits256))
    /// Each shard behind its own lock.
    private let shards: [NIOLockedValueBox<Shard>]
    private let capacityPerShard: Int
    private let ttl: Duration
    private let negativeTTL: Duration
    private let staleGrace: Duration
    private let metrics: GatehouseMetrics

    /// Up to 16 shards; fewer for a tiny `max_entries`, so that the bound holds exactly.
    let shardCount: Int

    public init(configuration: CacheConfiguration, metrics: GatehouseMetrics = .disabled) {
        self.metrics = metrics
        shardCount = max(1, min(16, configuration.maxEntries))
        shards = (0..<shardCount).map { _ in NIOLockedValueBox(Shard()) }
        capacityPerShard = configuration.maxEntries / shardCount
        ttl = configuration.ttl
        negativeTTL = configuration.negativeTTL
        staleGrace = configuration.staleGrace
    }

    /// Whether anything is remembered at all (`max_entries: 0` turns the cache off).
    public var isEnabled: Bool { capacityPerShard > 0 }

    /// The keyed hash of a user and password.
    func key(_ credentials: BasicCredentials) -> Key {
        var mac = keyedMAC
        var user = credentials.user, password = credentials.password
        user.withUTF8 { mac.update(data: UnsafeRawBufferPointer($0)) }
        mac.update(data: [0])
        password.withUTF8 { mac.update(data: UnsafeRawBufferPointer($0)) }
        return mac.finalize().withUnsafeBytes { digest in
            Key(
                a: digest.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                b: digest.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                c: digest.loadUnaligned(fromByteOffset: 16, as: UInt64.self),
                d: digest.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
            )
        }
    }

    /// The remembered verdict, if fresh and from the same generation of the backends' data.
    func lookUp(_ key: Key, generation: Int) -> Verdict? {
        guard isEnabled else { return nil }
        let now = ContinuousClock.now
        let verdict = shards[Int(key.a % UInt64(shardCount))].withLockedValue { shard -> Verdict? in
            guard let slot = shard.index[key] else { return nil }
            guard shard.nodes[slot].generation == generation else {
                shard.remove(slot)
                return nil
            }
            guard shard.nodes[slot].expires > now else {
                // Kept while it may still stand in for a directory that is down.
                if shard.nodes[slot].verified + staleGrace <= now { shard.remove(slot) }
                return nil
            }
            shard.unlink(slot)
            shard.pushFront(slot)
            return shard.nodes[slot].verdict
        }
        if let verdict { metrics.cacheHit(verdict) } else { metrics.cacheMiss() }
        return verdict
    }

    /// A success verified at most `stale_grace` ago, expired or not: the answer while the
    /// backend that gave it cannot be reached. Never a failure, never another password's.
    func lookUpStale(_ key: Key, generation: Int) -> Identity? {
        guard isEnabled else { return nil }
        let now = ContinuousClock.now
        return shards[Int(key.a % UInt64(shardCount))].withLockedValue { shard -> Identity? in
            guard let slot = shard.index[key], shard.nodes[slot].generation == generation,
                shard.nodes[slot].verified + staleGrace > now,
                case .authenticated(let identity) = shard.nodes[slot].verdict
            else { return nil }
            return identity
        }
    }

    func store(_ verdict: Verdict, for key: Key, generation: Int) {
        guard isEnabled else { return }
        let verified = ContinuousClock.now
        let expires = verified + (verdict == .rejected ? negativeTTL : ttl)
        let evicted = shards[Int(key.a % UInt64(shardCount))].withLockedValue { shard -> Bool in
            if let slot = shard.index[key] {
                shard.nodes[slot].verdict = verdict
                shard.nodes[slot].verified = verified
                shard.nodes[slot].expires = expires
                shard.nodes[slot].generation = generation
                shard.unlink(slot)
                shard.pushFront(slot)
                return false
            }
            var evicted = false
            if shard.index.count >= capacityPerShard, shard.tail >= 0 {
                shard.remove(shard.tail)
                evicted = true
            }
            let node = Node(key: key, verdict: verdict, verified: verified, expires: expires, generation: generation, previous: -1, next: -1)
            let slot: Int
            if let reused = shard.free.popLast() {
                shard.nodes[reused] = node
                slot = reused
            } else {
                shard.nodes.append(node)
                slot = shard.nodes.count - 1
            }
            shard.index[key] = slot
            shard.pushFront(slot)
            return evicted
        }
        if evicted { metrics.cacheEviction() }
    }

    /// How many entries are held.
    public var count: Int { shards.reduce(0) { total, shard in total + shard.withLockedValue { $0.index.count } } }
}
