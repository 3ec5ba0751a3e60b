// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
@testable import GatehouseCore
@testable import GatehouseTokenStores
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

    /// A token's owner is looked up with the service account, no password: the account states
    /// a bind would refuse are refused here too, and a disabled account's token dies with it.
    @Test func tokenOwnersAreCheckedWithoutAPassword() async throws {
        let (backend, ad) = try Self.backend()
        guard case .authenticated(let alice) = try await backend.account(of: "ALICE") else {
            Issue.record("alice is not a usable owner")
            return
        }
        #expect(alice.user == "alice" && alice.isMember(of: "registry-pushers"))
        for (user, reason) in [("dave", "account disabled"), ("frank", "account expired"), ("gina", "account locked out"), ("hank", "password expired")] {
            let result = try await backend.account(of: user)
            guard case .rejected(let why) = result else {
                Issue.record("\(user): \(result)")
                continue
            }
            #expect(why.contains(reason), "\(user): \(why)")
        }
        #expect(try await backend.account(of: "nobody") == .unknownUser)

        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let tokens = TokenAuthority(settings: TokenConfiguration(store: .sqlite(path: directory.appendingPathComponent("t.db").path)), logger: Logger(label: "test"))
        var cache = CacheConfiguration()
        cache.ttl = .seconds(1)
        let engine = DecisionEngine(realm: "R", defaultPolicy: "registry", policies: [Configuration.seedPolicy(pushGroup: "registry-pushers")], backends: [backend], cache: cache, tokens: tokens)
        let owner = try await engine.tokenOwner(named: "carol")
        let (_, secret) = try await tokens.create(owner: owner, name: "ci", scope: try TokenScope(policy: "registry", kind: .registry, resources: ["**"], permissions: ["pull"]), lifetime: .seconds(600))
        let pull = { (user: String) in await engine.decide(AuthRequest(credentials: .password(user: user, password: secret.text), method: "GET", originalURIs: ["/v2/team/app/tags/list"])) }
        #expect(await pull("carol").status == 200)
        // Any login form of the owner's name is the owner.
        #expect(await pull("GATEHOUSE\\carol").status == 200)
        #expect(await pull("bob").status == 401)

        let carolDN = "CN=carol,\(ad["AD_USERS_DN"])"
        func setAccountControl(_ value: Int) throws {
            let change = "dn: \(carolDN)\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: \(value)\n"
            _ = try tool(["env", "LDAPTLS_CACERT=\(ad["AD_CA_FILE"])", "ldapmodify", "-x", "-H", ad["AD_LDAPS_URL"], "-D", "CN=Administrator,\(ad["AD_USERS_DN"])", "-w", ad["AD_ADMIN_PASSWORD"]], input: change)
        }
        try setAccountControl(514)
        defer { try? setAccountControl(512) }
        try await Task.sleep(for: .milliseconds(1200))
        let disabled = await pull("carol")
        #expect(disabled.status == 401 && disabled.logDetail?.contains("account disabled") == true, "\(disabled.logDetail ?? "-")")
    }
}
