// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
@testable import GatehouseCore
@testable import GatehouseTokenStores
import Logging
import Testing

/// The same suite for both stores: SQLite in a temporary file and a real PostgreSQL from
/// Debian (Tests/Fixtures/postgres.sh), and two servers sharing the PostgreSQL one.
@Suite("Token stores", .serialized)
struct TokenStoreTests {
    enum Kind: String, CaseIterable, Sendable { case sqlite, postgres }

    /// A fresh, empty store of `kind`.
    static func settings(_ kind: Kind) throws -> TokenConfiguration {
        switch kind {
        case .sqlite:
            return TokenConfiguration(store: .sqlite(path: try makeTemporaryDirectory().appendingPathComponent("tokens.db").path))
        case .postgres:
            let server = try SharedFixture.get("postgres.sh")
            // A database of its own per test, so tests do not see each other's tokens.
            let database = "t" + UUID().uuidString.prefix(8).lowercased()
            _ = try tool(["psql", "-h", server["PG_HOST"], "-p", server["PG_PORT"], "-U", server["PG_USER"], "-d", server["PG_DATABASE"], "-qc", "CREATE DATABASE \(database)"])
            return TokenConfiguration(store: try TokenStoreLocation(parsing: "postgres://\(server["PG_USER"])@\(server["PG_HOST"]):\(server["PG_PORT"])/\(database)?sslmode=disable"))
        }
    }

    static func token(_ owner: String, expires: Int64 = TokenAuthority.now() + 3600, id: String? = nil) throws -> AccessToken {
        let secret = TokenSecret.generate()
        return AccessToken(
            id: id ?? secret.id, secretHash: secret.hash, owner: owner, backend: "local", name: "n",
            scope: try TokenScope(policy: "registry", kind: .registry, resources: ["team/*", "ci/**"], permissions: ["push", "pull"]),
            createdAt: TokenAuthority.now(), expiresAt: expires
        )
    }

    @Test(arguments: Kind.allCases)
    func storesKeepTokensAndCountChanges(kind: Kind) async throws {
        let authority = TokenAuthority(settings: try Self.settings(kind), logger: Logger(label: "test"))
        let store = try await authority.store()
        // Migrations are versioned and idempotent: a second prepare (another instance) is a no-op.
        try await store.prepare()
        let before = try await store.changeCount()
        let alice = try Self.token("alice")
        try await store.insert(alice)
        try await store.insert(try Self.token("alice", expires: TokenAuthority.now() - 5))
        try await store.insert(try Self.token("bob"))
        #expect(try await store.changeCount() == before + 3)
        let listed = try await store.list(owner: ("alice", "local"))
        #expect(listed.count == 2 && listed.allSatisfy { $0.owner == "alice" })
        #expect(listed.contains(alice))
        let live = try await store.liveTokens(now: TokenAuthority.now())
        #expect(Set(live.map(\.owner)) == ["alice", "bob"] && live.count == 2)
        #expect(live.first { $0.id == alice.id }?.scope.resources == ["team/*", "ci/**"])
        // Last use only moves forward (several instances write it).
        try await store.recordUse([alice.id: 2_000_000_000])
        try await store.recordUse([alice.id: 1_000_000_000])
        #expect(try await store.list(owner: ("alice", "local")).first { $0.id == alice.id }?.lastUsedAt == 2_000_000_000)
        #expect(try await store.changeCount() == before + 3)
        // Someone else's id is not theirs to revoke.
        #expect(try await store.revoke(id: alice.id, owner: ("bob", "local")) == false)
        #expect(try await store.revoke(id: alice.id, owner: ("alice", "local")))
        #expect(try await store.changeCount() == before + 4)
        #expect(try await store.revokeAll(user: "alice") == 1)
        #expect(try await store.list(owner: nil).map(\.owner) == ["bob"])
        // Ids are unique: a second token with the same id is refused, not merged.
        await #expect(throws: (any Error).self) { try await store.insert(try Self.token("carol", id: live.first { $0.owner == "bob" }!.id)) }
        await authority.close()
    }

    @Test(arguments: Kind.allCases)
    func aStoreFromANewerVersionIsRefused(kind: Kind) async throws {
        let settings = try Self.settings(kind)
        let authority = TokenAuthority(settings: settings, logger: Logger(label: "test"))
        let store = try await authority.store()
        let runner: any TokenSQLRunner = switch kind {
        case .sqlite: (store as! SQLTokenStore<SQLiteTokenRunner>).runner
        case .postgres: (store as! SQLTokenStore<PostgresTokenRunner>).runner
        }
        _ = try await runner.run("UPDATE gatehouse_schema SET version = 99", [])
        await #expect(throws: TokenStoreUnavailable.self) { try await store.prepare() }
        await authority.close()
    }

    @Test func serversOnOnePostgreSQLSeeEachOthersChangesWithinTwoSeconds() async throws {
        let settings = try Self.settings(.postgres)
        let first = TokenAuthority(settings: settings, logger: Logger(label: "a"))
        let second = TokenAuthority(settings: settings, logger: Logger(label: "b"))
        let polling = Task { await second.run() }
        defer { polling.cancel() }
        let owner = Identity(user: "alice", groups: [], backend: "local")
        let scope = try TokenScope(policy: "registry", kind: .registry, resources: ["team/*"], permissions: ["pull"])
        let (token, _) = try await first.create(owner: owner, name: "ci", scope: scope, lifetime: .seconds(600))
        #expect(try await Self.secondsUntil { if case .found = second.lookUp(id: token.id) { true } else { false } } < 2.0)
        #expect(try await first.revoke(id: token.id, owner: owner))
        #expect(try await Self.secondsUntil { if case .unknown = second.lookUp(id: token.id) { true } else { false } } < 2.0)
        polling.cancel()
        await first.close()
        await second.close()
    }

    @Test func aPostgreSQLOutageIs503UntilItIsBack() async throws {
        // A server of its own: this test stops it.
        let server = try DirectoryFixture(script: "postgres.sh")
        let settings = TokenConfiguration(store: try TokenStoreLocation(parsing: server["POSTGRES_URL"]))
        let authority = TokenAuthority(settings: settings, logger: Logger(label: "test"))
        let (token, _) = try await authority.create(owner: Identity(user: "alice", groups: [], backend: "local"), name: "", scope: try TokenScope(policy: "registry", kind: .registry, resources: ["**"], permissions: ["pull"]), lifetime: .seconds(600))
        guard case .found = authority.lookUp(id: token.id) else { Issue.record("token not found"); return }
        server.stop()
        await authority.refresh()
        guard case .unavailable = authority.lookUp(id: token.id) else { Issue.record("an outage must not be answered from the old list"); return }
        let resume = "bash \(DirectoryFixture.shellQuote(server.script)) resume \(DirectoryFixture.shellQuote(server.directory.path)) > /dev/null 2>&1 < /dev/null"
        #expect(system(resume) == 0)
        #expect(try await Self.secondsUntil(limit: 10) {
            await authority.refresh()
            if case .found = authority.lookUp(id: token.id) { return true }
            return false
        } < 10)
        await authority.close()
    }

    /// Seconds until `condition` held, polling every 50 ms, up to `limit`.
    static func secondsUntil(limit: Double = 5, _ condition: () async -> Bool) async throws -> Double {
        let started = ContinuousClock.now
        while started.duration(to: .now) < .seconds(limit) {
            if await condition() { return Double(started.duration(to: .now).components.attoseconds) / 1e18 + Double(started.duration(to: .now).components.seconds) }
            try await Task.sleep(for: .milliseconds(50))
        }
        return limit
    }
}
