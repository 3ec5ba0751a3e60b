// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
@testable import GatehouseCore
import Logging
import Testing

@Suite("Lockout")
struct LockoutTests {
    static func engine(maxFailures: Int, window: Duration, directory: URL, backends: [any CredentialBackend]? = nil) throws -> DecisionEngine {
        let passwords = directory.appendingPathComponent("htpasswd")
        try write("", to: passwords)
        _ = try tool(["htpasswd", "-bs", passwords.path, "alice", "alice-pw"])
        _ = try tool(["htpasswd", "-bs", passwords.path, "bob", "bob-pw"])
        var configuration = Configuration.embeddedDefaults(htpasswd: passwords.path, groups: nil)
        configuration.lockout.maxFailures = maxFailures
        configuration.lockout.window = window
        let engine = try DecisionEngine(configuration: configuration, logger: Logger(label: "test"))
        guard let backends else { return engine }
        return DecisionEngine(realm: "R", defaultPolicy: "registry", policies: configuration.policies, backends: backends, lockout: configuration.lockout)
    }

    static func decide(_ engine: DecisionEngine, _ user: String, _ password: String, from address: String? = "198.51.100.7") async -> Decision {
        await engine.decide(AuthRequest(credentials: .password(user: user, password: password), method: "GET", originalURIs: ["/v2/"], clientAddress: address))
    }

    @Test func tooManyFailuresLockTheUserUntilTheWindowPasses() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let engine = try Self.engine(maxFailures: 3, window: .milliseconds(600), directory: directory)
        for attempt in 1...3 {
            let failed = await Self.decide(engine, "alice", "guess-\(attempt)", from: "198.51.100.\(attempt)")
            #expect(failed.status == 401)
            if attempt == 3 { #expect(failed.logDetail?.contains("lockout started for user:alice") == true) }
        }
        let locked = await Self.decide(engine, "alice", "alice-pw", from: "203.0.113.1")
        #expect(locked.status == 401, "the right password is not even checked while locked out")
        #expect(locked.reason == DecisionEngine.invalidCredentials)
        #expect(locked.logDetail?.contains("locked out") == true)
        #expect(await Self.decide(engine, "bob", "bob-pw", from: "203.0.113.1").status == 200, "other users are unaffected")
        try await Task.sleep(for: .milliseconds(700))
        #expect(await Self.decide(engine, "alice", "alice-pw", from: "203.0.113.1").status == 200)
    }

    @Test func tooManyFailuresFromOneAddressLockThatAddress() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let engine = try Self.engine(maxFailures: 3, window: .seconds(60), directory: directory)
        for user in ["u1", "u2", "u3"] { _ = await Self.decide(engine, user, "x", from: "192.0.2.66") }
        #expect(await Self.decide(engine, "bob", "bob-pw", from: "192.0.2.66").status == 401)
        #expect(await Self.decide(engine, "bob", "bob-pw", from: "192.0.2.67").status == 200)
    }

    @Test func aSuccessClearsTheUsersFailures() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let engine = try Self.engine(maxFailures: 3, window: .seconds(60), directory: directory)
        for round in 0..<3 {
            _ = await Self.decide(engine, "alice", "wrong-\(round)a", from: nil)
            _ = await Self.decide(engine, "alice", "wrong-\(round)b", from: nil)
            #expect(await Self.decide(engine, "alice", "alice-pw", from: nil).status == 200)
        }
    }

    @Test func outagesNeverCountAsFailures() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let engine = try Self.engine(maxFailures: 2, window: .seconds(60), directory: directory, backends: [DecisionEngineTests.UnreachableBackend()])
        for _ in 0..<5 { #expect(await Self.decide(engine, "alice", "alice-pw").status == 503) }
        #expect(engine.lockout.lockReason(users: ["alice"], address: "198.51.100.7") == nil)
    }

    /// A spray of distinct names fills the table; making room must not lift a lockout or
    /// reset a count that is close to one. Emptying the table did both.
    @Test func aFloodOfNamesDoesNotLiftLockouts() {
        let tracker = LockoutTracker(configuration: LockoutConfiguration(maxFailures: 3, window: .seconds(60)), maximumKeys: 1000)
        for _ in 0..<3 { tracker.recordFailure(users: ["alice"], address: nil) }
        for _ in 0..<2 { tracker.recordFailure(users: ["bob"], address: nil) }
        #expect(tracker.lockReason(users: ["alice"], address: nil) != nil)
        for index in 0..<5000 { tracker.recordFailure(users: ["spray-\(index)"], address: nil) }
        #expect(tracker.lockReason(users: ["alice"], address: nil) != nil, "alice stays locked out")
        tracker.recordFailure(users: ["bob"], address: nil)
        #expect(tracker.lockReason(users: ["bob"], address: nil) != nil, "bob's two failures were kept")
    }

    /// One IPv6 client holds a /64 and could use a fresh address for every guess.
    @Test func ipv6AddressesCountPerSlash64() {
        let tracker = LockoutTracker(configuration: LockoutConfiguration(maxFailures: 3, window: .seconds(60)))
        for host in 1...3 { tracker.recordFailure(users: ["u\(host)"], address: "2001:db8:1:2::\(host)") }
        #expect(tracker.lockReason(users: ["bob"], address: "2001:db8:1:2:aaaa:bbbb:cccc:dddd") != nil)
        #expect(tracker.lockReason(users: ["bob"], address: "2001:db8:1:3::1") == nil, "the next /64 is another client")
        #expect(LockoutTracker.addressKey("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64")
        #expect(LockoutTracker.addressKey("::ffff:192.0.2.9") == "192.0.2.9")
        #expect(LockoutTracker.addressKey("192.0.2.9") == "192.0.2.9")
        #expect(LockoutTracker.addressKey("unix") == "unix")
    }

    @Test func zeroTurnsLockoutOff() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let engine = try Self.engine(maxFailures: 0, window: .seconds(60), directory: directory)
        for attempt in 0..<20 { _ = await Self.decide(engine, "alice", "wrong-\(attempt)") }
        #expect(await Self.decide(engine, "alice", "alice-pw").status == 200)
    }
}
