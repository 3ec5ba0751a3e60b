// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
@testable import GatehouseCore
import Logging
import NIOConcurrencyHelpers
import Testing

@Suite("Credential cache")
struct CredentialCacheTests {
    static func engine(_ cache: CacheConfiguration, directory: URL) throws -> (DecisionEngine, URL) {
        let passwords = directory.appendingPathComponent("htpasswd")
        try write("", to: passwords)
        _ = try tool(["htpasswd", "-bB", "-C", "5", passwords.path, "alice", "alice-pw"])
        _ = try tool(["htpasswd", "-bB", "-C", "5", passwords.path, "bob", "bob-pw"])
        _ = try tool(["htpasswd", "-bB", "-C", "5", passwords.path, "carol", "carol-pw"])
        var configuration = Configuration.embeddedDefaults(htpasswd: passwords.path, groups: nil)
        configuration.cache = cache
        return (try DecisionEngine(configuration: configuration, logger: Logger(label: "test")), passwords)
    }

    static func decide(_ engine: DecisionEngine, _ user: String, _ password: String) async -> Decision {
        await engine.decide(AuthRequest(credentials: .password(user: user, password: password), method: "GET", originalURIs: ["/v2/"]))
    }

    static func withDirectory(_ body: (URL) async throws -> Void) async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await body(directory)
    }

    @Test func aRepeatRequestIsServedFromTheCache() async throws {
        try await Self.withDirectory { directory in
            let (engine, _) = try Self.engine(CacheConfiguration(), directory: directory)
            let first = await Self.decide(engine, "alice", "alice-pw")
            let second = await Self.decide(engine, "alice", "alice-pw")
            #expect(first.status == 200 && !first.cached)
            #expect(second.status == 200 && second.cached && second.user == "alice")
        }
    }

    @Test func aWrongPasswordIsRememberedButNeverBlocksTheRightOne() async throws {
        try await Self.withDirectory { directory in
            let (engine, _) = try Self.engine(CacheConfiguration(), directory: directory)
            #expect(await Self.decide(engine, "alice", "wrong").status == 401)
            let again = await Self.decide(engine, "alice", "wrong")
            #expect(again.status == 401 && again.logDetail?.contains("cached") == true)
            let right = await Self.decide(engine, "alice", "alice-pw")
            #expect(right.status == 200 && !right.cached)
            // Unknown users are remembered as failures too, and answer the same.
            #expect(await Self.decide(engine, "ghost", "x").reason == again.reason)
        }
    }

    @Test func entriesExpire() async throws {
        try await Self.withDirectory { directory in
            var settings = CacheConfiguration()
            settings.ttl = .milliseconds(300)
            settings.negativeTTL = .milliseconds(300)
            let (engine, _) = try Self.engine(settings, directory: directory)
            _ = await Self.decide(engine, "alice", "alice-pw")
            #expect(await Self.decide(engine, "alice", "alice-pw").cached)
            try await Task.sleep(for: .milliseconds(400))
            #expect(await !Self.decide(engine, "alice", "alice-pw").cached)
        }
    }

    @Test func theLeastRecentlyUsedEntryIsEvicted() {
        var settings = CacheConfiguration()
        settings.maxEntries = 1  // one shard of one entry
        let cache = CredentialCache(configuration: settings)
        // Keys chosen into one shard, so that the second store must evict.
        var keys: [CredentialCache.Key] = []
        var index = 0
        while keys.count < 3 {
            let key = cache.key(try! BasicCredentials(user: "user\(index)", password: "pw"))
            if key.a % UInt64(cache.shardCount) == 0 { keys.append(key) }
            index += 1
        }
        let identity = Identity(user: "x", groups: [], backend: "t")
        cache.store(.authenticated(identity), for: keys[0], generation: 0)
        cache.store(.authenticated(identity), for: keys[1], generation: 0)
        #expect(cache.lookUp(keys[0], generation: 0) == nil)
        #expect(cache.lookUp(keys[1], generation: 0) == .authenticated(identity))
        #expect(cache.count == 1)
        // max_entries: 0 turns the cache off.
        var off = CacheConfiguration()
        off.maxEntries = 0
        let disabled = CredentialCache(configuration: off)
        disabled.store(.rejected, for: keys[2], generation: 0)
        #expect(disabled.lookUp(keys[2], generation: 0) == nil)
    }

    @Test(arguments: [1, 3, 15, 17, 100])
    func maxEntriesIsAnExactBound(maxEntries: Int) {
        var settings = CacheConfiguration()
        settings.maxEntries = maxEntries
        let cache = CredentialCache(configuration: settings)
        let identity = Identity(user: "x", groups: [], backend: "t")
        for index in 0..<(maxEntries * 20) {
            cache.store(.authenticated(identity), for: cache.key(try! BasicCredentials(user: "user\(index)", password: "pw")), generation: 0)
        }
        #expect(cache.count <= maxEntries)
        #expect(cache.count >= maxEntries / 2, "the shards fill up")
    }

    /// A backend that takes its time and counts how often it is asked.
    final class SlowCountingBackend: CredentialBackend {
        let name = "slow"
        let calls = NIOLockedValueBox(0)
        func authenticate(_ credentials: BasicCredentials) async throws -> AuthenticationResult {
            calls.withLockedValue { $0 += 1 }
            try await Task.sleep(for: .milliseconds(200))
            return credentials.password == "right" ? .authenticated(Identity(user: credentials.user, groups: [], backend: name)) : .rejected(reason: "wrong")
        }
        func identity(of user: String) async throws -> Identity? { nil }
        func equaliseTiming(for login: String, since started: ContinuousClock.Instant) async {}
        func readinessProblem() async -> String? { nil }
    }

    @Test func concurrentMissesShareOneVerification() async throws {
        let backend = SlowCountingBackend()
        let engine = DecisionEngine(realm: "R", defaultPolicy: "registry", policies: [Configuration.seedPolicy(pushGroup: "pushers")], backends: [backend], lockout: LockoutConfiguration())
        let statuses = await withTaskGroup(of: Int.self) { group in
            for index in 0..<40 {
                // 20 requests with the right password and 20 with a wrong one, all at once.
                group.addTask { await Self.decide(engine, "alice", index.isMultiple(of: 2) ? "right" : "wrong").status }
            }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.filter { $0 == 200 }.count == 20)
        #expect(statuses.filter { $0 == 401 }.count == 20)
        #expect(backend.calls.withLockedValue { $0 } == 2, "one verification per distinct password, not one per request")
    }

    @Test func aChangedFileDropsWhatItAffects() async throws {
        try await Self.withDirectory { directory in
            let (engine, passwords) = try Self.engine(CacheConfiguration(), directory: directory)
            _ = await Self.decide(engine, "alice", "alice-pw")
            #expect(await Self.decide(engine, "alice", "alice-pw").cached)
            _ = try tool(["htpasswd", "-bB", "-C", "5", passwords.path, "alice", "new-pw"])
            try await Task.sleep(for: .milliseconds(1100))
            #expect(await Self.decide(engine, "alice", "alice-pw").status == 401, "the old password must stop working")
            #expect(await Self.decide(engine, "alice", "new-pw").status == 200)
        }
    }

    @Test func theCacheHoldsNoPasswordOnlyKeyedHashes() {
        let cache = CredentialCache(configuration: CacheConfiguration())
        let one = cache.key(try! BasicCredentials(user: "alice", password: "secret"))
        let other = CredentialCache(configuration: CacheConfiguration()).key(try! BasicCredentials(user: "alice", password: "secret"))
        #expect(one != other, "the HMAC key is random per process (per cache)")
        #expect(one != cache.key(try! BasicCredentials(user: "alice", password: "secreT")))
        // The key type is four words of a MAC: nothing else is stored besides the identity.
        #expect(MemoryLayout<CredentialCache.Key>.size == 32)
        #expect(Mirror(reflecting: one).children.allSatisfy { $0.value is UInt64 })
    }
}
