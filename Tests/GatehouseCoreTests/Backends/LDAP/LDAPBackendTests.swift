// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
@testable import GatehouseCore
import Logging
import Prometheus
import Testing

/// The ldap backend against a real slapd (Tests/Fixtures/slapd.sh): private CA, ldaps and
/// StartTLS, memberof overlay, hostile user names.
@Suite("LDAP backend (slapd)", .serialized)
struct LDAPBackendTests {
    static func settings(_ fixture: DirectoryFixture, urls: [String]? = nil, configure: (inout LDAPConfiguration) -> Void = { _ in }) -> LDAPConfiguration {
        var settings = LDAPConfiguration(name: "dir", preset: .openldap, urls: urls ?? [fixture["LDAPS_URL"]], bindDN: fixture["BIND_DN"], baseDN: fixture["BASE_DN"])
        settings.caFile = fixture["CA_FILE"]
        settings.bindPasswordFile = fixture["BIND_PASSWORD_FILE"]
        settings.timeout = .seconds(2)
        configure(&settings)
        return settings
    }

    static func backend(_ settings: LDAPConfiguration) throws -> LDAPBackend {
        try LDAPBackend(configuration: settings, logger: Logger(label: "test"))
    }

    static func credentials(_ user: String, _ password: String) throws -> BasicCredentials {
        try BasicCredentials(user: user, password: password)
    }

    @Test func usersAuthenticateWithTheirGroups() async throws {
        let fixture = try SharedSlapd.get()
        let backend = try Self.backend(Self.settings(fixture))
        let alice = try await backend.authenticate(Self.credentials("alice", "alice-pw"))
        #expect(alice == .authenticated(Identity(user: "alice", groups: ["pushers", "readers"], backend: "dir", groupsAreCaseInsensitive: true, email: "alice@gatehouse.test")))
        // groupOfUniqueNames and posixGroup memberUid, with a {CRYPT}$6$ password.
        let bob = try await backend.authenticate(Self.credentials("bob", "bob-pw"))
        #expect(bob == .authenticated(Identity(user: "bob", groups: ["auditors", "developers"], backend: "dir", groupsAreCaseInsensitive: true, email: "bob@gatehouse.test")))
        // A DN with a comma and parentheses must be escaped in the member filter.
        let jane = try await backend.authenticate(Self.credentials("jane", "jane-pw"))
        #expect(jane == .authenticated(Identity(user: "jane", groups: ["pushers"], backend: "dir", groupsAreCaseInsensitive: true, email: "jane@gatehouse.test")))
        let jörg = try await backend.authenticate(Self.credentials("jörg", "jörg-pw"))
        guard case .authenticated(let identity) = jörg else {
            Issue.record("jörg: \(jörg)")
            return
        }
        #expect(identity.user == "jörg")
    }

    @Test func poolsAndErrorsAreCounted() async throws {
        let fixture = try SharedSlapd.get()
        let registry = PrometheusCollectorRegistry()
        let metrics = GatehouseMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let backend = try LDAPBackend(configuration: Self.settings(fixture), logger: Logger(label: "test"), metrics: metrics)
        #expect(try await backend.authenticate(Self.credentials("alice", "alice-pw")) != .unknownUser)
        #expect(try await backend.authenticate(Self.credentials("alice", "wrong")) == .rejected(reason: "Invalid credentials"))
        func value(_ series: String) -> Double? {
            registry.emitToString().split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
        }
        #expect(value(#"gatehouse_ldap_pool_size{backend="dir"}"#) == Double(Self.settings(fixture).poolSize))
        #expect(value(#"gatehouse_ldap_pool_connections{backend="dir",pool="search"}"#) == 1, "one service connection, kept")
        #expect(value(#"gatehouse_ldap_pool_connections{backend="dir",pool="bind"}"#) == 1, "one user-bind connection, kept")
        #expect(value(#"gatehouse_ldap_pool_in_use{backend="dir",pool="search"}"#) == 0, "nothing lent out between requests")
        #expect(value(#"gatehouse_ldap_errors_total{backend="dir",kind="invalid_credentials"}"#) == 1)
        backend.shutdown()
        #expect(value(#"gatehouse_ldap_pool_connections{backend="dir",pool="search"}"#) == 0, "a stop closes the connections")

        let closed = try LDAPBackend(configuration: Self.settings(fixture, urls: ["ldaps://127.0.0.1:1"]), logger: Logger(label: "test"), metrics: metrics)
        await #expect(throws: BackendUnavailable.self) { try await closed.authenticate(Self.credentials("alice", "alice-pw")) }
        #expect(value(#"gatehouse_ldap_errors_total{backend="dir",kind="server_down"}"#) == 1, "\(registry.emitToString())")
    }

    @Test func wrongPasswordsAndUnknownUsers() async throws {
        let fixture = try SharedSlapd.get()
        let backend = try Self.backend(Self.settings(fixture))
        #expect(try await backend.authenticate(Self.credentials("alice", "bob-pw")) == .rejected(reason: "Invalid credentials"))
        #expect(try await backend.authenticate(Self.credentials("ghost", "x")) == .unknownUser)
        // An entry without userPassword can never bind.
        guard case .rejected = try await backend.authenticate(Self.credentials("nopassword", "anything")) else {
            Issue.record("nopassword was not rejected")
            return
        }
    }

    @Test(arguments: [
        ("*", "star-pw", true),
        ("*", "alice-pw", false),
        ("a)(uid=*", "paren-pw", true),
        ("*)(uid=*", "alice-pw", false),
        ("alice)(|(uid=*", "alice-pw", false),
        ("al*", "alice-pw", false),
        ("\\2a", "star-pw", false),
    ])
    func hostileNamesAreEscaped(user: String, password: String, succeeds: Bool) async throws {
        let fixture = try SharedSlapd.get()
        let backend = try Self.backend(Self.settings(fixture))
        let result = try await backend.authenticate(Self.credentials(user, password))
        if succeeds {
            guard case .authenticated(let identity) = result else {
                Issue.record("\(user): \(result)")
                return
            }
            #expect(identity.user == user)
        } else {
            if case .authenticated = result { Issue.record("\(user) must not log in with \(password)") }
        }
    }

    @Test func startTLSAndPlainLDAPWhenAllowed() async throws {
        let fixture = try SharedSlapd.get()
        let startTLS = try Self.backend(Self.settings(fixture, urls: [fixture["LDAP_URL"]]) { $0.startTLS = true })
        #expect(try await startTLS.authenticate(Self.credentials("alice", "alice-pw")) != .unknownUser)
        let insecure = try Self.backend(Self.settings(fixture, urls: [fixture["LDAP_URL"]]) { $0.insecure = true })
        guard case .authenticated = try await insecure.authenticate(Self.credentials("alice", "alice-pw")) else {
            Issue.record("insecure plain ldap:// should work on loopback when allowed")
            return
        }
    }

    @Test(arguments: ["system CA store", "host name not in certificate", "environment turns verification off"])
    func certificatesAreVerified(case name: String) async throws {
        let fixture = try SharedSlapd.get()
        var settings = Self.settings(fixture)
        switch name {
        case "system CA store":
            settings.caFile = nil
        case "host name not in certificate":
            settings.urls = [fixture["LDAPS_URL"].replacingOccurrences(of: "127.0.0.1", with: "localhost")]
        default:
            // libldap's global context would honour this; our per-connection context must not.
            settings.caFile = nil
            setenv("LDAPTLS_REQCERT", "never", 1)
        }
        defer { unsetenv("LDAPTLS_REQCERT") }
        let backend = try Self.backend(settings)
        await #expect(throws: BackendUnavailable.self) { try await backend.authenticate(Self.credentials("alice", "alice-pw")) }
        #expect(await backend.readinessProblem() != nil)
    }

    @Test func failoverSkipsADeadServer() async throws {
        let fixture = try SharedSlapd.get()
        let dead = "ldaps://127.0.0.1:\(try freePort())"
        let backend = try Self.backend(Self.settings(fixture, urls: [dead, fixture["LDAPS_URL"]]))
        for _ in 0..<3 {
            guard case .authenticated = try await backend.authenticate(Self.credentials("alice", "alice-pw")) else {
                Issue.record("failover did not reach the second server")
                return
            }
        }
        #expect(await backend.readinessProblem() == nil)
    }

    @Test func aDirectoryThatNeverAnswersTimesOut() async throws {
        // Accepts connections but never speaks: libldap must give up after `timeout`.
        let listener = try SilentListener()
        let fixture = try SharedSlapd.get()
        let backend = try Self.backend(Self.settings(fixture, urls: ["ldap://127.0.0.1:\(listener.port)"]) { $0.insecure = true; $0.timeout = .seconds(1) })
        let started = ContinuousClock.now
        await #expect(throws: BackendUnavailable.self) { try await backend.authenticate(Self.credentials("alice", "alice-pw")) }
        #expect(started.duration(to: .now) < .seconds(10))
    }

    @Test(arguments: ["ldaps", "starttls"])
    func aFrozenDirectoryIsUnavailableWithinTheTimeout(mode: String) async throws {
        // SIGSTOP: the kernel still accepts TCP connections, nothing answers the TLS handshake,
        // where libldap ignores its network timeout and would spin forever.
        let fixture = try DirectoryFixture(script: "slapd.sh")
        let pid = pid_t(fixture["SLAPD_PID"])!
        let settings = Self.settings(fixture, urls: [mode == "ldaps" ? fixture["LDAPS_URL"] : fixture["LDAP_URL"]]) {
            $0.startTLS = mode == "starttls"
            $0.timeout = .seconds(1)
        }
        let backend = try Self.backend(settings)
        kill(pid, SIGSTOP)
        defer { kill(pid, SIGCONT) }
        let started = ContinuousClock.now
        await #expect(throws: BackendUnavailable.self) { try await backend.authenticate(Self.credentials("alice", "alice-pw")) }
        #expect(started.duration(to: .now) < .seconds(5))
        kill(pid, SIGCONT)
        guard case .authenticated = try await backend.authenticate(Self.credentials("alice", "alice-pw")) else {
            Issue.record("no login after the directory thawed")
            return
        }
    }

    @Test func aStoppedDirectoryIsUnavailableAndRecovers() async throws {
        let fixture = try DirectoryFixture(script: "slapd.sh")
        let backend = try Self.backend(Self.settings(fixture))
        guard case .authenticated = try await backend.authenticate(Self.credentials("alice", "alice-pw")) else {
            Issue.record("no login before the outage")
            return
        }
        fixture.stop()
        await #expect(throws: BackendUnavailable.self) { try await backend.authenticate(Self.credentials("alice", "alice-pw")) }
        #expect(await backend.readinessProblem() != nil)
        // Through the engine an outage is a 503, never a 401.
        let engine = DecisionEngine(realm: "R", defaultPolicy: "registry", policies: [Configuration.seedPolicy(pushGroup: "pushers")], backends: [backend])
        let decision = await engine.decide(AuthRequest(credentials: .password(user: "alice", password: "alice-pw"), method: "GET", originalURIs: ["/v2/"]))
        #expect(decision.status == 503 && decision.outcome == .unavailable)

        let restarted = try fixture.restart()
        let settings = Self.settings(restarted)
        let again = try Self.backend(settings)
        guard case .authenticated = try await again.authenticate(Self.credentials("alice", "alice-pw")) else {
            Issue.record("no login after the directory came back")
            return
        }
        // The first backend recovers too when the server is back on the same port.
        if restarted["LDAPS_URL"] == fixture["LDAPS_URL"] {
            try await Task.sleep(for: .seconds(LDAPConnectionPool.backOff.components.seconds))
            guard case .authenticated = try await backend.authenticate(Self.credentials("alice", "alice-pw")) else {
                Issue.record("the pooled backend did not recover")
                return
            }
        }
    }

    @Test(arguments: [Duration.seconds(30), .zero])
    func staleGraceAnswersForARecentSuccessWhileTheDirectoryIsDown(grace: Duration) async throws {
        let fixture = try DirectoryFixture(script: "slapd.sh")
        var cache = CacheConfiguration()
        cache.ttl = .milliseconds(200)
        cache.staleGrace = grace
        let engine = DecisionEngine(
            realm: "R",
            defaultPolicy: "registry",
            policies: [Configuration.seedPolicy(pushGroup: "pushers")],
            backends: [try Self.backend(Self.settings(fixture) { $0.timeout = .seconds(1) })],
            cache: cache
        )
        func decide(_ password: String) async -> Decision {
            await engine.decide(AuthRequest(credentials: .password(user: "alice", password: password), method: "PUT", originalURIs: ["/v2/a/manifests/1"]))
        }
        #expect(await decide("alice-pw").status == 200)
        try await Task.sleep(for: .milliseconds(300))
        fixture.stop()
        let stale = await decide("alice-pw")
        if grace > .zero {
            #expect(stale.status == 200 && stale.cached && stale.reason.contains("stale"), "\(stale.reason)")
            #expect(stale.groups == ["pushers", "readers"])
        } else {
            #expect(stale.status == 503)
        }
        // Never for a password that is not the cached one.
        #expect(await decide("other-pw").status == 503)
    }

    @Test func emptyPasswordsNeverReachTheDirectory() async throws {
        // With `allow bind_anon_dn` slapd behaves like AD: a DN with an empty password "succeeds"
        // as an anonymous bind. Our parser refuses the empty password before any LDAP call.
        let fixture = try DirectoryFixture(script: "slapd.sh", arguments: ["--anon-dn"])
        let whoami = try tool(["ldapwhoami", "-x", "-H", fixture["LDAP_URL"], "-D", "uid=alice,\(fixture["PEOPLE_DN"])", "-w", ""])
        #expect(whoami == "anonymous", "the fixture must show the trap")
        let backend = try Self.backend(Self.settings(fixture))
        let engine = DecisionEngine(realm: "R", defaultPolicy: "registry", policies: [Configuration.seedPolicy(pushGroup: "pushers")], backends: [backend])
        let empty = "Basic " + Data("alice:".utf8).base64EncodedString()
        let decision = await engine.decide(AuthRequest(credentials: .authorizationHeaders([empty]), method: "GET", originalURIs: ["/v2/"]))
        #expect(decision.status == 401)
        #expect(throws: BasicCredentialsError.emptyPassword) { try BasicCredentials(user: "alice", password: "") }
    }

    @Test func groupsCompareCaseInsensitivelyInRules() async throws {
        let fixture = try SharedSlapd.get()
        let backend = try Self.backend(Self.settings(fixture))
        let engine = DecisionEngine(realm: "R", defaultPolicy: "registry", policies: [Configuration.seedPolicy(pushGroup: "PUSHERS")], backends: [backend])
        let decision = await engine.decide(AuthRequest(credentials: .password(user: "alice", password: "alice-pw"), method: "PUT", originalURIs: ["/v2/a/manifests/1"]))
        #expect(decision.status == 200 && decision.backend == "dir")
    }

    @Test func customGroupFilterOverridesThePreset() async throws {
        let fixture = try SharedSlapd.get()
        let backend = try Self.backend(Self.settings(fixture) { $0.groupFilter = "(&(objectClass=groupOfNames)(member={dn})(cn=push*))" })
        #expect(try await backend.identity(of: "alice")?.groups == ["pushers"])
    }
}

/// A free loopback TCP port (nothing listens on it after return).
func freePort() throws -> Int {
    let port = try tool(["python3", "-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
    return Int(port)!
}

/// A TCP listener that accepts and never answers.
final class SilentListener {
    let process: Process
    let port: Int

    init() throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        // The test process may ignore SIGTERM (ServiceLifecycle does, for graceful stops), and a
        // child inherits that: restore it, and die with the parent (PR_SET_PDEATHSIG), so that
        // no listener outlives the run holding the caller's pipes.
        process.arguments = ["-c", """
            import ctypes,signal,socket
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            ctypes.CDLL(None).prctl(1, 9)
            s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(16)
            print(s.getsockname()[1], flush=True)
            c=[]
            while True: c.append(s.accept())
            """]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) { line += output.fileHandleForReading.availableData }
        port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))!
    }

    deinit { process.terminate() }
}
