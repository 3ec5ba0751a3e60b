// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
import GatehouseCore
import Logging
import Testing

/// The decision path end to end on real htpasswd/htgroups files written by Apache's htpasswd.
@Suite("Decision engine")
struct DecisionEngineTests {
    final class Fixture {
        let directory: URL
        let passwords: URL
        let groups: URL
        let engine: DecisionEngine

        init(policies: [Policy]? = nil) throws {
            directory = try makeTemporaryDirectory()
            passwords = directory.appendingPathComponent("htpasswd")
            groups = directory.appendingPathComponent("htgroups")
            try write("", to: passwords)
            _ = try tool(["htpasswd", "-bB", "-C", "5", passwords.path, "reader", "reader-pw"])
            _ = try tool(["htpasswd", "-b5", passwords.path, "pusher", "pusher-pw"])
            _ = try tool(["htpasswd", "-bm", passwords.path, "locked", "locked-pw"])
            try write((try String(contentsOf: passwords, encoding: .utf8)).replacingOccurrences(of: "locked:", with: "locked:!"), to: passwords)
            _ = try tool(["htpasswd", "-b5", passwords.path, "Kelly", "kelly-pw"])
            try write("pushers: pusher Kelly\n", to: groups)
            var configuration = Configuration.embeddedDefaults(htpasswd: passwords.path, groups: groups.path)
            if let policies { configuration.policies = policies }
            engine = try DecisionEngine(configuration: configuration, logger: Logger(label: "test"))
        }

        deinit { try? FileManager.default.removeItem(at: directory) }

        func decide(_ user: String?, _ password: String = "", method: String = "GET", uri: String, policy: String? = nil) async -> Decision {
            let credentials: AuthRequest.Credentials =
                user.map { .authorizationHeaders(["Basic " + Data("\($0):\(password)".utf8).base64EncodedString()]) } ?? .anonymous
            return await engine.decide(AuthRequest(credentials: credentials, method: method, originalURIs: [uri], policyName: policy))
        }
    }

    @Test func seedPolicy() async throws {
        let fixture = try Fixture()
        let push = await fixture.decide("pusher", "pusher-pw", method: "PUT", uri: "/v2/team/app/manifests/1")
        #expect(push.outcome == .allow && push.status == 200)
        #expect(push.user == "pusher" && push.groups == ["pushers"] && push.backend == "local" && push.rule == "registry#1")

        let readerPush = await fixture.decide("reader", "reader-pw", method: "PUT", uri: "/v2/team/app/manifests/1")
        #expect(readerPush.outcome == .deny && readerPush.status == 403 && readerPush.rule == "registry#2")

        let readerPull = await fixture.decide("reader", "reader-pw", uri: "/v2/team/app/manifests/1")
        #expect(readerPull.outcome == .allow && readerPull.action == "pull" && readerPull.repository == "team/app")

        let delete = await fixture.decide("pusher", "pusher-pw", method: "DELETE", uri: "/v2/team/app/manifests/1")
        #expect(delete.status == 403)
        let catalog = await fixture.decide("pusher", "pusher-pw", uri: "/v2/_catalog")
        #expect(catalog.status == 403)
    }

    /// `\u{212A}elly` (Kelvin sign) is canonically equivalent to `Kelly`, so Swift's string
    /// lookup finds Kelly's entry. The password must still be Kelly's, and what reaches the
    /// upstream is the file's spelling, never a look-alike.
    @Test func lookAlikeLoginsCarryTheFilesSpelling() async throws {
        let fixture = try Fixture()
        let kelvin = "\u{212A}elly"
        let push = await fixture.decide(kelvin, "kelly-pw", method: "PUT", uri: "/v2/team/app/manifests/1")
        #expect(push.status == 200 && push.groups == ["pushers"])
        #expect(push.user.map { Array($0.utf8) } == Array("Kelly".utf8), "X-Auth-User is the file's Kelly, not \(push.user.debugDescription)")
        let wrong = await fixture.decide(kelvin, "pusher-pw", uri: "/v2/team/app/manifests/1")
        #expect(wrong.status == 401)
    }

    @Test func anonymousIsChallengedEspeciallyAtLogin() async throws {
        let fixture = try Fixture()
        let login = await fixture.decide(nil, uri: "/v2/")
        #expect(login.outcome == .challenge && login.status == 401)
        let pull = await fixture.decide(nil, uri: "/v2/team/app/manifests/1")
        #expect(pull.status == 401)
        let loggedIn = await fixture.decide("reader", "reader-pw", uri: "/v2/")
        #expect(loggedIn.status == 200 && loggedIn.rule == "login")
    }

    @Test func failedLoginsLookAlike() async throws {
        let fixture = try Fixture()
        let wrong = await fixture.decide("reader", "nope", uri: "/v2/")
        let unknown = await fixture.decide("nobody", "nope", uri: "/v2/")
        let locked = await fixture.decide("locked", "locked-pw", uri: "/v2/")
        for decision in [wrong, unknown, locked] {
            #expect(decision.status == 401)
            #expect(decision.reason == wrong.reason, "a 401 never says whether the user exists")
            #expect(decision.user == nil && decision.groups.isEmpty)
        }
        #expect(wrong.logDetail != unknown.logDetail, "the operator's log may tell them apart")
    }

    @Test func requestTargetsAreCheckedBeforeCredentials() async throws {
        let fixture = try Fixture()
        let traversal = await fixture.decide(nil, uri: "/v2/team/../x/manifests/1")
        #expect(traversal.status == 403 && traversal.rule == "invalid-request")
        let missing = await fixture.engine.decide(AuthRequest(credentials: .anonymous, method: "GET", originalURIs: []))
        #expect(missing.status == 403)
        let doubled = await fixture.engine.decide(AuthRequest(credentials: .anonymous, method: "GET", originalURIs: ["/v2/", "/v2/"]))
        #expect(doubled.status == 403)
    }

    @Test func malformedAndDuplicateCredentialsAreChallenged() async throws {
        let fixture = try Fixture()
        let basic = "Basic " + Data("reader:reader-pw".utf8).base64EncodedString()
        let doubled = await fixture.engine.decide(AuthRequest(credentials: .authorizationHeaders([basic, basic]), method: "GET", originalURIs: ["/v2/"]))
        #expect(doubled.status == 401)
        let garbage = await fixture.engine.decide(AuthRequest(credentials: .authorizationHeaders(["Basic %%%"]), method: "GET", originalURIs: ["/v2/"]))
        #expect(garbage.status == 401)
        let nul = await fixture.engine.decide(AuthRequest(credentials: .password(user: "reader", password: "reader-pw\u{0}x"), method: "GET", originalURIs: ["/v2/"]))
        #expect(nul.status == 401)
    }

    @Test func unknownPolicyIsNotFound() async throws {
        let fixture = try Fixture()
        let decision = await fixture.decide("reader", "reader-pw", uri: "/v2/", policy: "nope")
        #expect(decision.status == 404)
    }

    @Test func crossRepositoryMountNeedsPullOnTheSource() async throws {
        let policy = Policy(
            name: "registry",
            kind: .registry,
            rules: [
                Rule(label: "own", users: ["*"], groups: [], anonymous: false, resources: [try Glob("${user}/**")], allowed: ["pull", "push"]),
                Rule(label: "team", users: [], groups: ["pushers"], anonymous: false, resources: [try Glob("team/**")], allowed: ["pull"]),
            ]
        )
        let fixture = try Fixture(policies: [policy])
        let digest = "sha256:" + String(repeating: "0", count: 64)
        let fromOwn = await fixture.decide("reader", "reader-pw", method: "POST", uri: "/v2/reader/b/blobs/uploads/?mount=\(digest)&from=reader%2Fa")
        #expect(fromOwn.status == 200)
        let fromTeam = await fixture.decide("reader", "reader-pw", method: "POST", uri: "/v2/reader/b/blobs/uploads/?mount=\(digest)&from=team%2Fsecret")
        #expect(fromTeam.status == 403 && fromTeam.repository == "reader/b" && fromTeam.reason.contains("team/secret"))
        let pusherFromTeam = await fixture.decide("pusher", "pusher-pw", method: "POST", uri: "/v2/pusher/b/blobs/uploads/?mount=\(digest)&from=team%2Fsecret")
        #expect(pusherFromTeam.status == 200)
    }

    @Test func assumeAuthenticatedResolvesGroupsWithoutAPassword() async throws {
        let fixture = try Fixture()
        let decision = await fixture.engine.decide(AuthRequest(credentials: .assumeAuthenticated(user: "pusher"), method: "PUT", originalURIs: ["/v2/a/manifests/1"]))
        #expect(decision.status == 200 && decision.groups == ["pushers"])
        let unknown = await fixture.engine.decide(AuthRequest(credentials: .assumeAuthenticated(user: "ghost"), method: "GET", originalURIs: ["/v2/"]))
        #expect(unknown.status == 401)
    }

    @Test func filesAreReReadWhenTheyChange() async throws {
        let fixture = try Fixture()
        #expect(await fixture.decide("newbie", "newbie-pw", method: "PUT", uri: "/v2/a/manifests/1").status == 401)
        _ = try tool(["htpasswd", "-bB", "-C", "5", fixture.passwords.path, "newbie", "newbie-pw"])
        try write("pushers: pusher newbie\n", to: fixture.groups)
        // Files are checked at most once a second.
        try await Task.sleep(for: .milliseconds(1100))
        let decision = await fixture.decide("newbie", "newbie-pw", method: "PUT", uri: "/v2/a/manifests/1")
        #expect(decision.status == 200 && decision.groups == ["pushers"])
    }

    @Test func aVanishedFileKeepsTheLastGoodUsers() async throws {
        let fixture = try Fixture()
        try FileManager.default.removeItem(at: fixture.passwords)
        try await Task.sleep(for: .milliseconds(1100))
        #expect(await fixture.decide("reader", "reader-pw", uri: "/v2/").status == 200)
    }

    /// Stands in for a directory that cannot be reached (the LDAP backend's real outage tests
    /// live with that backend); here only the mapping to 503 is under test.
    struct UnreachableBackend: CredentialBackend {
        let name = "down"
        func authenticate(_ credentials: BasicCredentials) async throws -> AuthenticationResult {
            throw BackendUnavailable(backend: name, reason: "connection refused")
        }
        func identity(of user: String) async throws -> Identity? { throw BackendUnavailable(backend: name, reason: "connection refused") }
        func equaliseTiming(for login: String, since started: ContinuousClock.Instant) async {}
        func readinessProblem() async -> String? { "connection refused" }
    }

    @Test func anUnreachableBackendIsUnavailableNeverUnauthorized() async throws {
        let engine = DecisionEngine(realm: "R", defaultPolicy: "registry", policies: [Configuration.seedPolicy(pushGroup: "pushers")], backends: [UnreachableBackend()])
        let basic = "Basic " + Data("alice:pw".utf8).base64EncodedString()
        let decision = await engine.decide(AuthRequest(credentials: .authorizationHeaders([basic]), method: "GET", originalURIs: ["/v2/"]))
        #expect(decision.outcome == .unavailable && decision.status == 503)
    }

    @Test func challengeEscapesTheRealm() {
        let engine = DecisionEngine(realm: #"My "quoted" \ realm"#, defaultPolicy: "r", policies: [], backends: [])
        #expect(engine.challenge == #"Basic realm="My \"quoted\" \\ realm", charset="UTF-8""#)
    }
}
