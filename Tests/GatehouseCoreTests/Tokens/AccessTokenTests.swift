// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
@testable import GatehouseCore
@testable import GatehouseTokenStores
import Logging
import Testing

/// Access tokens through the decision engine, with a real htpasswd backend and a real SQLite
/// file: what a CI job's `docker push` with a `gth_…` password gets.
@Suite("Access tokens", .serialized)
struct AccessTokenTests {
    /// alice (in `writers`) and bob; writers may push anywhere, everyone may pull.
    final class Setup: @unchecked Sendable {
        let directory: URL
        let engine: DecisionEngine
        let tokens: TokenAuthority
        let users: URL
        let groups: URL

        init() throws {
            directory = try makeTemporaryDirectory()
            users = directory.appendingPathComponent("users")
            groups = directory.appendingPathComponent("groups")
            try write(Self.htpasswd(["alice": "alice-pw", "bob": "bob-pw"]), to: users)
            try write("writers: alice\n", to: groups)
            let logger = Logger(label: "test")
            tokens = TokenAuthority(settings: TokenConfiguration(store: .sqlite(path: directory.appendingPathComponent("tokens.db").path)), logger: logger)
            let policy = Policy(name: "registry", kind: .registry, rules: [
                Rule(label: "registry#1", users: [], groups: ["writers"], anonymous: false, resources: nil, allowed: ["pull", "push"]),
                Rule(label: "registry#2", users: ["*"], groups: [], anonymous: false, resources: nil, allowed: ["pull"]),
            ])
            let backend = try HtpasswdBackend(name: "local", passwordPath: users.path, groupsPath: groups.path, logger: logger)
            engine = DecisionEngine(realm: "Registry", defaultPolicy: "registry", policies: [policy], backends: [backend], tokens: tokens)
        }

        static func htpasswd(_ users: [String: String]) throws -> String {
            try users.sorted { $0.key < $1.key }.map { try tool(["htpasswd", "-nbB", "-C", "4", $0.key, $0.value]) }.joined(separator: "\n") + "\n"
        }

        func create(_ user: String = "alice", repositories: [String] = ["team/*"], actions: [String] = ["pull", "push"], lifetime: Duration = .seconds(3600)) async throws -> (AccessToken, TokenSecret) {
            let owner = try await engine.tokenOwner(named: user)
            let scope = try TokenScope(policy: "registry", kind: .registry, resources: repositories, permissions: actions)
            return try await tokens.create(owner: owner, name: "ci", scope: scope, lifetime: lifetime)
        }

        func decide(_ user: String, _ password: String, _ method: String, _ uri: String) async -> Decision {
            await engine.decide(AuthRequest(credentials: .password(user: user, password: password), method: method, originalURIs: [uri], clientAddress: "192.0.2.7"))
        }

        deinit { try? FileManager.default.removeItem(at: directory) }
    }

    static let push = ("PUT", "/v2/team/app/manifests/latest")
    static let pushElsewhere = ("PUT", "/v2/other/app/manifests/latest")
    static let pull = ("GET", "/v2/team/app/manifests/latest")

    @Test func secretsHaveOneShapeAndOnlyTheirHashIsKept() throws {
        let secret = TokenSecret.generate()
        #expect(secret.text.count == 64)
        #expect(secret.text.wholeMatch(of: /gth_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/) != nil)
        #expect(TokenSecret(parsing: secret.text)?.id == secret.id)
        #expect(secret.matches(secret.hash))
        var changed = Array(secret.text)
        changed[40] = changed[40] == "A" ? "B" : "A"
        #expect(TokenSecret(parsing: String(changed))?.matches(secret.hash) == false)
        for bad in ["gth_", String(secret.text.dropLast()), secret.text + "A", secret.text.uppercased(), "ghp_" + secret.text.dropFirst(4),
                    secret.text.replacingOccurrences(of: "_", with: "-"), String(secret.text.prefix(63)) + "=", String(secret.text.prefix(63)) + "\u{0}"] {
            #expect(TokenSecret(parsing: bad) == nil, "\(bad)")
        }
        #expect(TokenSecret.generate().id != secret.id)
    }

    @Test func aTokenDoesWhatItsOwnerMayAndItsScopeAllows() async throws {
        let setup = try Setup()
        let (token, secret) = try await setup.create()
        await setup.tokens.refresh()
        let pushed = await setup.decide("alice", secret.text, Self.push.0, Self.push.1)
        #expect(pushed.status == 200 && pushed.user == "alice" && pushed.token == token.id)
        let elsewhere = await setup.decide("alice", secret.text, Self.pushElsewhere.0, Self.pushElsewhere.1)
        #expect(elsewhere.status == 403 && elsewhere.rule == "token-scope", "\(elsewhere.reason)")
        // bob's token for push: bob may only pull, and a token never adds a right.
        let (_, bobs) = try await setup.create("bob")
        let bobPush = await setup.decide("bob", bobs.text, Self.push.0, Self.push.1)
        #expect(bobPush.status == 403 && bobPush.rule != "token-scope", "\(bobPush.rule)")
        #expect(await setup.decide("bob", bobs.text, Self.pull.0, Self.pull.1).status == 200)
        // The password still works, and reaches further than the token.
        #expect(await setup.decide("alice", "alice-pw", Self.pushElsewhere.0, Self.pushElsewhere.1).status == 200)
        // A pull-only token cannot push.
        let (_, pullOnly) = try await setup.create(actions: ["pull"])
        #expect(await setup.decide("alice", pullOnly.text, Self.push.0, Self.push.1).status == 403)
        #expect(await setup.decide("alice", pullOnly.text, Self.pull.0, Self.pull.1).status == 200)
        #expect(await setup.decide("alice", pullOnly.text, "GET", "/v2/").status == 200)
    }

    @Test func wrongOwnerMalformedRevokedAndExpiredTokensAre401() async throws {
        let setup = try Setup()
        let (token, secret) = try await setup.create()
        let (_, shortLived) = try await setup.create(lifetime: .seconds(1))
        await setup.tokens.refresh()
        let cases: [(String, String, String)] = [
            ("bob", secret.text, "another user"),
            ("alice", String(secret.text.dropLast()), "malformed"),
            ("alice", String(secret.text.dropLast()) + (secret.text.hasSuffix("A") ? "B" : "A"), "wrong secret"),
            ("alice", "gth_" + String(repeating: "0", count: 16) + "_" + String(repeating: "A", count: 43), "unknown"),
            ("alice", "gth_" + String(repeating: "x", count: 500), "malformed"),
            (secret.text, "x", "user-name field"),
            (secret.text, secret.text, "user-name field"),
        ]
        for (user, password, detail) in cases {
            let decision = await setup.decide(user, password, Self.pull.0, Self.pull.1)
            #expect(decision.status == 401 && decision.reason == DecisionEngine.invalidCredentials, "\(user)")
            #expect(decision.logDetail?.contains(detail) == true, "\(decision.logDetail ?? "-")")
            #expect(decision.logDetail?.contains(secret.text) != true)
        }
        // Longer than any password: refused as malformed credentials before any lookup.
        let huge = await setup.decide("alice", "gth_" + String(repeating: "x", count: 2000), Self.pull.0, Self.pull.1)
        #expect(huge.status == 401 && huge.reason.hasPrefix("malformed credentials"))
        try await Task.sleep(for: .milliseconds(2100))
        #expect(await setup.decide("alice", shortLived.text, Self.pull.0, Self.pull.1).status == 401)
        #expect(try await setup.tokens.revoke(id: token.id, owner: nil))
        let revoked = await setup.decide("alice", secret.text, Self.pull.0, Self.pull.1)
        #expect(revoked.status == 401 && revoked.token == token.id)
        #expect(try await setup.tokens.revoke(id: token.id, owner: nil) == false)
    }

    @Test func theOwnersCurrentGroupsAndAccountDecide() async throws {
        let setup = try Setup()
        let (_, secret) = try await setup.create()
        await setup.tokens.refresh()
        #expect(await setup.decide("alice", secret.text, Self.push.0, Self.push.1).status == 200)
        // Out of `writers`: the htgroups change is seen within a second or two.
        try write("writers: carol\n", to: setup.groups)
        try await Task.sleep(for: .milliseconds(1200))
        let demoted = await setup.decide("alice", secret.text, Self.push.0, Self.push.1)
        #expect(demoted.status == 403 && demoted.rule == "registry#2", "\(demoted.rule)")
        #expect(await setup.decide("alice", secret.text, Self.pull.0, Self.pull.1).status == 200)
        // Out of the htpasswd file: the token dies with the account.
        try write(try Setup.htpasswd(["bob": "bob-pw"]), to: setup.users)
        try await Task.sleep(for: .milliseconds(1200))
        let removed = await setup.decide("alice", secret.text, Self.pull.0, Self.pull.1)
        #expect(removed.status == 401 && removed.logDetail?.contains("no account in backend") == true, "\(removed.logDetail ?? "-")")
        // A locked htpasswd entry ("!…") is refused as an owner too.
        try write(try Setup.htpasswd(["bob": "bob-pw"]) + "alice:!locked\n", to: setup.users)
        try await Task.sleep(for: .milliseconds(1200))
        #expect(await setup.decide("alice", secret.text, Self.pull.0, Self.pull.1).status == 401)
        await #expect(throws: TokenRequestError.self) { _ = try await setup.create("nobody") }
    }

    @Test func anUnusableStoreAnswers503AndPasswordsGoOn() async throws {
        let setup = try Setup()
        let (_, secret) = try await setup.create()
        await setup.tokens.refresh()
        #expect(await setup.decide("alice", secret.text, Self.pull.0, Self.pull.1).status == 200)
        let file = setup.directory.appendingPathComponent("tokens.db")
        await setup.tokens.close()
        try write(String(repeating: "not a database ", count: 400), to: file)
        try? FileManager.default.removeItem(at: setup.directory.appendingPathComponent("tokens.db-wal"))
        try? FileManager.default.removeItem(at: setup.directory.appendingPathComponent("tokens.db-shm"))
        await setup.tokens.refresh()
        let refused = await setup.decide("alice", secret.text, Self.pull.0, Self.pull.1)
        #expect(refused.status == 503 && refused.outcome == .unavailable, "\(refused.reason)")
        #expect(await setup.decide("alice", "alice-pw", Self.pull.0, Self.pull.1).status == 200)
    }

    @Test func tokenLoginsNeitherCountTowardNorWaitForALockout() async throws {
        let setup = try Setup()
        let (_, secret) = try await setup.create()
        await setup.tokens.refresh()
        for attempt in 0..<12 {
            _ = await setup.decide("alice", "wrong-\(attempt)", Self.pull.0, Self.pull.1)
        }
        #expect(await setup.decide("alice", "alice-pw", Self.pull.0, Self.pull.1).status == 401)
        let started = ContinuousClock.now
        #expect(await setup.decide("alice", secret.text, Self.pull.0, Self.pull.1).status == 200)
        #expect(started.duration(to: .now) < .milliseconds(50))
    }

    @Test func scopesAreCheckedBeforeTheyAreStored() async throws {
        let setup = try Setup()
        #expect(throws: TokenScopeError.self) { try TokenScope(policy: "registry", kind: .registry, resources: ["team/*"], permissions: ["write"]) }
        #expect(throws: TokenScopeError.self) { try TokenScope(policy: "registry", kind: .registry, resources: [], permissions: ["pull"]) }
        #expect(throws: TokenScopeError.self) { try TokenScope(policy: "wiki", kind: .http, resources: ["wiki/**"], permissions: ["GET"]) }
        #expect(throws: TokenScopeError.self) { try TokenScope(policy: "wiki", kind: .http, resources: ["/wiki/**"], permissions: ["G T"]) }
        #expect(throws: TokenRequestError.self) { try setup.engine.validate(try TokenScope(policy: "wiki", kind: .http, resources: ["/w/**"], permissions: ["GET"])) }
        #expect(throws: TokenRequestError.self) { try setup.engine.validate(try TokenScope(policy: "registry", kind: .http, resources: ["/w/**"], permissions: ["GET"])) }
        await #expect(throws: TokenRequestError.self) { _ = try await setup.create(lifetime: .seconds(366 * 86_400)) }
    }

    @Test func httpPolicyTokensNarrowToPathsAndMethods() async throws {
        let setup = try Setup()
        let wiki = Policy(name: "wiki", kind: .http, rules: [
            Rule(label: "wiki#1", users: ["*"], groups: [], anonymous: false, resources: [try Glob("/**")], allowed: nil),
        ])
        let engine = DecisionEngine(realm: "Wiki", defaultPolicy: "wiki", policies: [wiki], backends: setup.engine.backends, tokens: setup.tokens)
        let owner = try await engine.tokenOwner(named: "alice")
        let scope = try TokenScope(policy: "wiki", kind: .http, resources: ["/wiki/**"], permissions: ["GET", "HEAD"])
        try engine.validate(scope)
        let (_, secret) = try await setup.tokens.create(owner: owner, name: "bot", scope: scope, lifetime: .seconds(60))
        func decide(_ method: String, _ path: String) async -> Decision {
            await engine.decide(AuthRequest(credentials: .password(user: "alice", password: secret.text), method: method, originalURIs: [path]))
        }
        #expect(await decide("GET", "/wiki/Page").status == 200)
        let post = await decide("POST", "/wiki/Page")
        #expect(post.status == 403 && post.rule == "token-scope")
        let elsewhere = await decide("GET", "/admin/")
        #expect(elsewhere.status == 403 && elsewhere.rule == "token-scope")
        // alice's registry token is for the other policy.
        let (_, registryToken) = try await setup.create()
        let crossed = await engine.decide(AuthRequest(credentials: .password(user: "alice", password: registryToken.text), method: "GET", originalURIs: ["/wiki/Page"]))
        #expect(crossed.status == 403 && crossed.reason.contains("policy registry"))
    }
}
