// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
@testable import GatehouseCore
import Logging
import NIOConcurrencyHelpers
import Testing

@Suite("Lockout")
struct LockoutTests {
    static func engine(maxFailures: Int, userMaxFailures: Int? = nil, addressMaxFailures: Int? = nil, window: Duration, directory: URL, backends: [any CredentialBackend]? = nil) throws -> DecisionEngine {
        let passwords = directory.appendingPathComponent("htpasswd")
        try write("", to: passwords)
        _ = try tool(["htpasswd", "-bs", passwords.path, "alice", "alice-pw"])
        _ = try tool(["htpasswd", "-bs", passwords.path, "bob", "bob-pw"])
        var configuration = Configuration.embeddedDefaults(htpasswd: passwords.path, groups: nil)
        configuration.lockout = LockoutConfiguration(maxFailures: maxFailures, userMaxFailures: userMaxFailures, addressMaxFailures: addressMaxFailures, window: window)
        let engine = try DecisionEngine(configuration: configuration, logger: Logger(label: "test"))
        guard let backends else { return engine }
        return DecisionEngine(realm: "R", defaultPolicy: "registry", policies: configuration.policies, backends: backends, lockout: configuration.lockout)
    }

    static func decide(_ engine: DecisionEngine, _ user: String, _ password: String, from address: String? = "198.51.100.7") async -> Decision {
        await engine.decide(AuthRequest(credentials: .password(user: user, password: password), method: "GET", originalURIs: ["/v2/"], clientAddress: address))
    }

    static let x = "203.0.113.10", y = "203.0.113.20", z = "203.0.113.30"

    @Test func aPairLockRefusesTheUserFromThatAddressOnly() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let engine = try Self.engine(maxFailures: 3, window: .milliseconds(600), directory: directory)
        for attempt in 1...3 {
            let failed = await Self.decide(engine, "alice", "guess-\(attempt)", from: Self.x)
            #expect(failed.status == 401)
            if attempt == 3 { #expect(failed.logDetail?.contains("lockout started for pair") == true, "\(failed.logDetail ?? "")") }
        }
        let locked = await Self.decide(engine, "alice", "alice-pw", from: Self.x)
        #expect(locked.status == 401, "the right password is not even checked from the guesser's address")
        #expect(locked.reason == DecisionEngine.invalidCredentials)
        #expect(locked.logDetail?.contains("locked out") == true)
        #expect(await Self.decide(engine, "alice", "alice-pw", from: Self.y).status == 200, "alice's own desk keeps working")
        #expect(await Self.decide(engine, "bob", "bob-pw", from: Self.x).status == 200, "others behind the same address are unaffected")
        try await Task.sleep(for: .milliseconds(700))
        #expect(await Self.decide(engine, "alice", "alice-pw", from: Self.x).status == 200, "the lock ends with the window")
    }

    @Test func aGuesserSpreadOverAddressesLocksTheUserEverywhere() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let engine = try Self.engine(maxFailures: 3, userMaxFailures: 5, window: .seconds(60), directory: directory)
        for host in 1...5 { _ = await Self.decide(engine, "alice", "guess-\(host)", from: "198.51.100.\(host)") }
        let locked = await Self.decide(engine, "alice", "alice-pw", from: Self.y)
        #expect(locked.status == 401)
        #expect(locked.logDetail?.contains("user alice") == true, "\(locked.logDetail ?? "")")
        #expect(await Self.decide(engine, "bob", "bob-pw", from: Self.y).status == 200)
    }

    @Test func anAddressOverItsCeilingStillPassesCachedCredentials() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let engine = try Self.engine(maxFailures: 3, addressMaxFailures: 4, window: .seconds(60), directory: directory)
        #expect(await Self.decide(engine, "bob", "bob-pw", from: Self.x).status == 200, "bob verified earlier from X")
        for user in ["u1", "u2", "u3", "u4"] { _ = await Self.decide(engine, user, "spray", from: Self.x) }
        #expect(await Self.decide(engine, "bob", "bob-pw", from: Self.x).status == 200, "a cached credential passes")
        let uncached = await Self.decide(engine, "alice", "alice-pw", from: Self.x)
        #expect(uncached.status == 401, "no new verification from the spraying address")
        #expect(uncached.logDetail?.contains("ceiling") == true, "\(uncached.logDetail ?? "")")
        #expect(await Self.decide(engine, "alice", "alice-pw", from: Self.y).status == 200, "elsewhere alice logs in")
    }

    @Test func theSameWrongPasswordRepeatedCountsOnce() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let engine = try Self.engine(maxFailures: 3, window: .seconds(60), directory: directory)
        // A CI runner retrying a stale secret, past the negative cache too.
        for _ in 0..<20 { #expect(await Self.decide(engine, "alice", "stale-secret", from: Self.x).status == 401) }
        #expect(await Self.decide(engine, "alice", "alice-pw", from: Self.x).status == 200)
        #expect(engine.lockout.status(users: ["alice"], address: Self.x) == .open)
    }

    @Test func aSuccessClearsThatPairsFailures() async throws {
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
        #expect(engine.lockout.status(users: ["alice"], address: "198.51.100.7") == .open)
    }

    /// A refused guess is never verified and burns no hash: it waits on a timer instead.
    @Test func refusedGuessesWaitInsteadOfVerifying() async throws {
        let backend = CountingBackend()
        let engine = DecisionEngine(
            realm: "R", defaultPolicy: "registry", policies: [Configuration.seedPolicy(pushGroup: "p")], backends: [backend],
            lockout: LockoutConfiguration(maxFailures: 3, window: .seconds(60))
        )
        for attempt in 0..<3 { _ = await Self.decide(engine, "alice", "guess-\(attempt)", from: Self.x) }
        #expect(backend.counts.withLockedValue { $0 } == (verified: 3, waited: 0))
        for attempt in 0..<10 { #expect(await Self.decide(engine, "alice", "more-\(attempt)", from: Self.x).status == 401) }
        #expect(backend.counts.withLockedValue { $0 } == (verified: 3, waited: 10))
    }

    /// 32 guesses at once (wrk's connections) must not all be verified before the first
    /// failure is counted: then one address would pass the user's ceiling on its own and lock
    /// alice out of her own desk.
    @Test func concurrentGuessesCannotOvershootTheLimit() async throws {
        let backend = CountingBackend(delay: .milliseconds(50))
        let engine = DecisionEngine(
            realm: "R", defaultPolicy: "registry", policies: [Configuration.seedPolicy(pushGroup: "p")], backends: [backend],
            lockout: LockoutConfiguration(maxFailures: 3, userMaxFailures: 6, window: .seconds(60))
        )
        await withTaskGroup(of: Int.self) { group in
            for attempt in 0..<32 { group.addTask { await Self.decide(engine, "alice", "guess-\(attempt)", from: Self.x).status } }
            for await status in group { #expect(status == 401) }
        }
        #expect(backend.counts.withLockedValue { $0.verified } == 3)
        #expect(await Self.decide(engine, "alice", "right", from: Self.y).status == 200, "alice's own desk still works")
        // The same credentials at once share one verification and one claim: a docker push's
        // burst of identical checks is not refused.
        await withTaskGroup(of: Int.self) { group in
            for _ in 0..<20 { group.addTask { await Self.decide(engine, "bob", "right", from: Self.x).status } }
            for await status in group { #expect(status == 200) }
        }
    }

    /// Refusals wait as long as a typical verification: a few slow ones (a busy machine) must
    /// not stretch every wait, which would tell refusals from wrong passwords.
    @Test func timingEstimatesFollowTheMedian() {
        let times = VerificationTimes()
        #expect(times.estimate(for: "$2y$10") == nil)
        for _ in 0..<10 { times.record(.milliseconds(90), for: "$2y$10") }
        for _ in 0..<3 { times.record(.milliseconds(250), for: "$2y$10") }
        #expect(times.estimate(for: "$2y$10") == .milliseconds(90))
        // Only the last 15 count: the estimate follows a machine that became slower.
        for _ in 0..<15 { times.record(.milliseconds(120), for: "$2y$10") }
        #expect(times.estimate(for: "$2y$10") == .milliseconds(120))
        #expect(times.estimate(for: "$6$") == nil, "classes are separate")
    }

    /// The office behind one NAT at 9 a.m. (or just after a reload emptied the cache): more
    /// first logins in verification at once than the address ceiling allows failures. None of
    /// them is a failure, so none is refused.
    @Test func manyFirstLoginsFromOneAddressAreNotRefused() async throws {
        let backend = CountingBackend(delay: .milliseconds(50))
        let engine = DecisionEngine(
            realm: "R", defaultPolicy: "registry", policies: [Configuration.seedPolicy(pushGroup: "p")], backends: [backend],
            lockout: LockoutConfiguration(maxFailures: 3, userMaxFailures: 6, addressMaxFailures: 4, window: .seconds(60))
        )
        await withTaskGroup(of: Int.self) { group in
            for person in 0..<40 { group.addTask { await Self.decide(engine, "person\(person)", "right", from: Self.x).status } }
            for await status in group { #expect(status == 200) }
        }
    }

    final class CountingBackend: CredentialBackend {
        let name = "counting"
        let counts = NIOLockedValueBox((verified: 0, waited: 0))
        let delay: Duration
        init(delay: Duration = .zero) { self.delay = delay }
        func authenticate(_ credentials: BasicCredentials) async throws -> AuthenticationResult {
            counts.withLockedValue { $0.verified += 1 }
            if delay > .zero { try await Task.sleep(for: delay) }
            return credentials.password == "right" ? .authenticated(Identity(user: credentials.user, groups: [], backend: name)) : .rejected(reason: "wrong")
        }
        func identity(of user: String) async throws -> Identity? { nil }
        func equaliseTiming(for login: String, since started: ContinuousClock.Instant) async { counts.withLockedValue { $0.waited += 1 } }
        func readinessProblem() async -> String? { nil }
    }

    /// A spray of distinct names fills the table; making room must not lift a lockout or
    /// reset a count that is close to one. Emptying the table did both.
    @Test func aFloodOfNamesDoesNotLiftLockouts() {
        let tracker = LockoutTracker(configuration: LockoutConfiguration(maxFailures: 3, window: .seconds(60)), maximumKeys: 1000)
        for attempt in 0..<3 { tracker.recordFailure(users: ["alice"], address: nil, fingerprint: UInt64(attempt)) }
        for attempt in 0..<2 { tracker.recordFailure(users: ["bob"], address: nil, fingerprint: UInt64(attempt)) }
        #expect(tracker.status(users: ["alice"], address: nil).locked == .pair)
        for index in 0..<5000 { tracker.recordFailure(users: ["spray-\(index)"], address: nil, fingerprint: UInt64(index)) }
        #expect(tracker.count <= 1000)
        #expect(tracker.status(users: ["alice"], address: nil).locked == .pair, "alice stays locked out")
        tracker.recordFailure(users: ["bob"], address: nil, fingerprint: 99)
        #expect(tracker.status(users: ["bob"], address: nil).locked == .pair, "bob's two failures were kept")
    }

    /// One IPv6 client holds a /64 and could use a fresh address for every guess.
    @Test func ipv6AddressesCountPerSlash64() {
        let tracker = LockoutTracker(configuration: LockoutConfiguration(maxFailures: 3, addressMaxFailures: 3, window: .seconds(60)))
        for host in 1...3 { tracker.recordFailure(users: ["u\(host)"], address: "2001:db8:1:2::\(host)", fingerprint: UInt64(host)) }
        #expect(tracker.status(users: ["bob"], address: "2001:db8:1:2:aaaa:bbbb:cccc:dddd").addressOverCeiling)
        #expect(tracker.status(users: ["bob"], address: "2001:db8:1:3::1") == .open, "the next /64 is another client")
        #expect(LockoutTracker.addressKey("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64")
        #expect(LockoutTracker.addressKey("::ffff:192.0.2.9") == "192.0.2.9")
        #expect(LockoutTracker.addressKey("192.0.2.9") == "192.0.2.9")
        #expect(LockoutTracker.addressKey("unix") == "unix")
    }

    /// Counters are fixed-size: a thousand failures for one key keep one record.
    @Test func countersStayConstantSized() {
        let tracker = LockoutTracker(configuration: LockoutConfiguration(maxFailures: 1000, userMaxFailures: 1000, addressMaxFailures: 1000, window: .seconds(60)))
        for attempt in 0..<999 { tracker.recordFailure(users: ["alice"], address: Self.x, fingerprint: UInt64(attempt)) }
        #expect(tracker.count == 3)
        #expect(tracker.status(users: ["alice"], address: Self.x).locked == nil)
        tracker.recordFailure(users: ["alice"], address: Self.x, fingerprint: 5000)
        #expect(tracker.status(users: ["alice"], address: Self.x).locked == .pair)
        #expect(MemoryLayout<LockoutTracker.Counter>.size <= 128)
    }

    @Test func zeroTurnsLockoutOff() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let engine = try Self.engine(maxFailures: 0, window: .seconds(60), directory: directory)
        for attempt in 0..<20 { _ = await Self.decide(engine, "alice", "wrong-\(attempt)") }
        #expect(await Self.decide(engine, "alice", "alice-pw").status == 200)
    }

    @Test(arguments: [
        ("lockout: {user_max_failures: 5}", "lockout.user_max_failures"),
        ("lockout: {address_max_failures: 2}", "lockout.address_max_failures"),
        ("lockout: {window: 0s}", "lockout.window"),
        ("lockout: {max_failure: 3}", "lockout.max_failure"),
    ])
    func badLockoutSettingsAreNamed(fragment: String, key: String) {
        let yaml = "backends: [{name: l, type: htpasswd, file: /dev/null}]\npolicies: {r: {type: registry, rules: []}}\n\(fragment)\n"
        #expect {
            _ = try Configuration.parse(yaml: yaml)
        } throws: { error in
            "\(error)".contains(key)
        }
    }
}
