// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
@testable import GatehouseCore
import Logging
import Testing

/// The `active-directory` preset against a real Samba AD DC (Tests/Fixtures/samba-ad.sh):
/// login forms, nested and primary groups, account states and their sub-codes.
@Suite("Active Directory (Samba AD DC)", .serialized)
struct ActiveDirectoryTests {
    static func backend(_ configure: (inout LDAPConfiguration) -> Void = { _ in }) throws -> (LDAPBackend, DirectoryFixture) {
        let ad = try SharedActiveDirectory.get()
        var settings = LDAPConfiguration(name: "corp", preset: .activeDirectory, urls: [ad["AD_LDAPS_URL"]], bindDN: ad["AD_BIND_DN"], baseDN: ad["AD_BASE_DN"])
        settings.caFile = ad["AD_CA_FILE"]
        settings.bindPasswordFile = ad["AD_BIND_PASSWORD_FILE"]
        settings.timeout = .seconds(5)
        configure(&settings)
        return (try LDAPBackend(configuration: settings, logger: Logger(label: "test")), ad)
    }

    static func login(_ backend: LDAPBackend, _ user: String, _ password: String) async throws -> AuthenticationResult {
        try await backend.authenticate(try BasicCredentials(user: user, password: password))
    }

    @Test(arguments: ["alice", "ALICE", "alice@gatehouse.test", "alice@GATEHOUSE.TEST", "GATEHOUSE\\alice", "gatehouse\\alice"])
    func everyLoginFormIsOneCanonicalUser(login: String) async throws {
        let (backend, ad) = try Self.backend()
        let result = try await Self.login(backend, login, ad["AD_PASSWORD_ALICE"])
        guard case .authenticated(let identity) = result else {
            Issue.record("\(login): \(result)")
            return
        }
        #expect(identity.user == "alice")
        #expect(identity.groups.contains("registry-pushers"))
        #expect(identity.groups.contains("Domain Users"), "the primary group, which memberOf omits")
        // Read in the same search, for X-Auth-Email / X-Auth-Name.
        #expect(identity.email == "alice@gatehouse.test")
        #expect(identity.displayName == "Alice Liddell")
    }

    @Test func emailAndNameAttributesAreConfigurable() async throws {
        let (backend, ad) = try Self.backend {
            $0.emailAttribute = "userPrincipalName"
            $0.nameAttribute = nil
        }
        guard case .authenticated(let alice) = try await Self.login(backend, "alice", ad["AD_PASSWORD_ALICE"]) else {
            Issue.record("alice did not log in")
            return
        }
        #expect(alice.email == "alice@gatehouse.test")
        #expect(alice.displayName == nil)
        // bob has neither: nothing is made up.
        let (plain, _) = try Self.backend()
        guard case .authenticated(let bob) = try await Self.login(plain, "bob", ad["AD_PASSWORD_BOB"]) else {
            Issue.record("bob did not log in")
            return
        }
        #expect(bob.email == nil && bob.displayName == nil)
    }

    @Test(arguments: ["alice@evil.test", "EVIL\\alice", "alice@gatehouse.test.evil"])
    func otherDomainsAreUnknown(login: String) async throws {
        let (backend, ad) = try Self.backend()
        #expect(try await Self.login(backend, login, ad["AD_PASSWORD_ALICE"]) == .unknownUser)
    }

    @Test func nestedAndPrimaryGroups() async throws {
        let (backend, ad) = try Self.backend()
        guard case .authenticated(let bob) = try await Self.login(backend, "bob", ad["AD_PASSWORD_BOB"]) else {
            Issue.record("bob did not log in")
            return
        }
        #expect(Set(bob.groups).isSuperset(of: ["team-a", "developers", "Domain Users"]))
        guard case .authenticated(let carol) = try await Self.login(backend, "carol", ad["AD_PASSWORD_CAROL"]) else {
            Issue.record("carol did not log in")
            return
        }
        #expect(carol.groups == ["Domain Users"])
        let (flat, _) = try Self.backend { $0.nestedGroups = false }
        guard case .authenticated(let flatBob) = try await Self.login(flat, "bob", ad["AD_PASSWORD_BOB"]) else { return }
        #expect(flatBob.groups.contains("team-a") && !flatBob.groups.contains("developers"))
    }

    @Test(arguments: [
        ("dave", "DAVE", "account disabled"),
        ("erin", "ERIN", "must change the password"),
        ("frank", "FRANK", "account expired"),
        ("gina", "GINA", "account locked out"),
        ("hank", "HANK", "password expired"),
        ("alice", "nope", "invalid credentials"),
    ])
    func accountStatesAreRefusedWithTheirReason(user: String, passwordKey: String, reason: String) async throws {
        let (backend, ad) = try Self.backend()
        let password = passwordKey == "nope" ? "Wrong-Pass1" : ad["AD_PASSWORD_\(passwordKey)"]
        let result = try await Self.login(backend, user, password)
        guard case .rejected(let why) = result else {
            Issue.record("\(user): \(result)")
            return
        }
        #expect(why.contains(reason), "\(why)")
        // The client sees the same 401 whatever the reason.
        let engine = DecisionEngine(realm: "R", defaultPolicy: "registry", policies: [Configuration.seedPolicy(pushGroup: "registry-pushers")], backends: [backend])
        let decision = await engine.decide(AuthRequest(credentials: .password(user: user, password: password), method: "GET", originalURIs: ["/v2/"]))
        #expect(decision.status == 401 && decision.reason == DecisionEngine.invalidCredentials)
        #expect(decision.logDetail?.contains(reason) == true)
    }

    @Test func namesWithCommasAndUTF8() async throws {
        let (backend, ad) = try Self.backend()
        guard case .authenticated(let jdoe) = try await Self.login(backend, "jdoe", ad["AD_PASSWORD_JDOE"]) else {
            Issue.record("jdoe did not log in")
            return
        }
        #expect(jdoe.groups.contains("registry-pushers"))
        guard case .authenticated(let jörg) = try await Self.login(backend, "jörg", ad["AD_PASSWORD_JOERG"]) else {
            Issue.record("jörg did not log in")
            return
        }
        #expect(jörg.user == "jörg")
    }

    @Test func rulesMatchADGroupsCaseInsensitively() async throws {
        let (backend, ad) = try Self.backend()
        let engine = DecisionEngine(realm: "R", defaultPolicy: "registry", policies: [Configuration.seedPolicy(pushGroup: "Registry-Pushers")], backends: [backend])
        let push = await engine.decide(AuthRequest(credentials: .password(user: "GATEHOUSE\\alice", password: ad["AD_PASSWORD_ALICE"]), method: "PUT", originalURIs: ["/v2/alice/app/manifests/1"]))
        #expect(push.status == 200 && push.user == "alice")
        let carolPush = await engine.decide(AuthRequest(credentials: .password(user: "carol", password: ad["AD_PASSWORD_CAROL"]), method: "PUT", originalURIs: ["/v2/a/manifests/1"]))
        #expect(carolPush.status == 403)
    }

    @Test func everyLoginFormCountsAgainstOneLockout() async throws {
        let (backend, ad) = try Self.backend()
        var lockout = LockoutConfiguration()
        lockout.maxFailures = 3
        let engine = DecisionEngine(realm: "R", defaultPolicy: "registry", policies: [Configuration.seedPolicy(pushGroup: "registry-pushers")], backends: [backend], lockout: lockout)
        for login in ["alice", "ALICE@gatehouse.test", "GATEHOUSE\\Alice"] {
            let guess = await engine.decide(AuthRequest(credentials: .password(user: login, password: "Guess-\(login.count)"), method: "GET", originalURIs: ["/v2/"]))
            #expect(guess.status == 401)
        }
        let right = await engine.decide(AuthRequest(credentials: .password(user: "alice", password: ad["AD_PASSWORD_ALICE"]), method: "GET", originalURIs: ["/v2/"]))
        #expect(right.status == 401 && right.logDetail?.contains("locked out") == true, "\(right.logDetail ?? "")")
    }

    @Test func ldapTestExplainsSubCodes() throws {
        let (backend, ad) = try Self.backend()
        let steps = LDAPDiagnostics.run(backend.configuration, user: "dave", password: ad["AD_PASSWORD_DAVE"])
        let bind = try #require(steps.first { $0.name == "user bind" })
        #expect(!bind.succeeded)
        #expect(bind.detail.contains("533") || bind.detail.contains("disabled"))
        let good = LDAPDiagnostics.run(backend.configuration, user: "alice@gatehouse.test", password: ad["AD_PASSWORD_ALICE"])
        let failed = good.filter { !$0.succeeded }.map { $0.detail }
        #expect(failed.isEmpty, "\(failed)")
        #expect(good.last?.detail.contains("registry-pushers") == true)
    }

    @Test func startTLSOnPort389() async throws {
        let (backend, ad) = try Self.backend { settings in
            settings.urls = [(try? SharedActiveDirectory.get())?["AD_LDAP_URL"] ?? ""]
            settings.startTLS = true
        }
        guard case .authenticated = try await Self.login(backend, "alice", ad["AD_PASSWORD_ALICE"]) else {
            Issue.record("StartTLS login failed")
            return
        }
    }
}
