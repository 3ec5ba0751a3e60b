// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
@testable import GatehouseCore
import Logging
import Testing

/// Negotiate logins against the Samba AD DC (it is the KDC): a real `kinit`, a real service
/// ticket made by the GSS-API as a browser would, accepted with the keytab the fixture exported.
@Suite("Kerberos (Samba AD DC)", .serialized)
struct KerberosTests {
    final class Setup: @unchecked Sendable {
        let ad: DirectoryFixture
        let directory: URL
        let engine: DecisionEngine

        init(principals: [String]? = nil, keytab: String? = nil) throws {
            ad = try SharedActiveDirectory.get()
            directory = try makeTemporaryDirectory()
            // The GSS-API reads the client's krb5.conf per call; the acceptor needs none.
            setenv("KRB5_CONFIG", ad["AD_KRB5_CONF"], 1)
            var settings = LDAPConfiguration(name: "corp", preset: .activeDirectory, urls: [ad["AD_LDAPS_URL"]], bindDN: ad["AD_BIND_DN"], baseDN: ad["AD_BASE_DN"])
            settings.caFile = ad["AD_CA_FILE"]
            settings.bindPasswordFile = ad["AD_BIND_PASSWORD_FILE"]
            let backend = try LDAPBackend(configuration: settings, logger: Logger(label: "test"))
            let kerberos = try KerberosAcceptor(configuration: KerberosConfiguration(keytab: keytab ?? ad["AD_HTTP_KEYTAB"], principals: principals, backend: "corp"))
            let apps = Policy(name: "apps", kind: .http, rules: [
                Rule(label: "apps#1", users: [], groups: ["registry-pushers"], anonymous: false, resources: [try Glob("/**")], allowed: nil),
            ], negotiate: true)
            let basicOnly = Policy(name: "basic", kind: .http, rules: apps.rules)
            engine = DecisionEngine(realm: "Apps", defaultPolicy: "apps", policies: [apps, basicOnly], backends: [backend], kerberos: kerberos)
        }

        /// A Negotiate header for `user`'s ticket to the service, as a browser makes it.
        func negotiate(_ user: String, password: String? = nil) throws -> String {
            let cache = directory.appendingPathComponent("cc-\(user)").path
            _ = try tool(["env", "KRB5_CONFIG=\(ad["AD_KRB5_CONF"])", "KRB5CCNAME=FILE:\(cache)", "kinit", user], input: (password ?? ad["AD_PASSWORD_\(user.uppercased())"]) + "\n")
            let token = try KerberosDiagnostics.serviceToken(cacheName: "FILE:\(cache)", service: ad["AD_HTTP_SPN"]).get()
            return "Negotiate " + Data(token).base64EncodedString()
        }

        func decide(_ header: String?, policy: String = "apps") async -> Decision {
            await engine.decide(AuthRequest(credentials: .authorizationHeaders(header.map { [$0] } ?? []), method: "GET", originalURIs: ["/app/page"], policyName: policy))
        }

        deinit { try? FileManager.default.removeItem(at: directory) }
    }

    @Test func aTicketLogsTheCanonicalUserIn() async throws {
        let setup = try Setup()
        let alice = await setup.decide(try setup.negotiate("alice"))
        #expect(alice.status == 200 && alice.user == "alice" && alice.principal == "alice@GATEHOUSE.TEST", "\(alice.reason) \(alice.logDetail ?? "")")
        #expect(alice.groups.contains { $0.lowercased() == "registry-pushers" })
        // kinit ALICE: the ticket says ALICE@REALM; the directory says who that is.
        let shouting = await setup.decide(try setup.negotiate("ALICE", password: setup.ad["AD_PASSWORD_ALICE"]))
        #expect(shouting.status == 200 && shouting.user == "alice" && shouting.principal == "ALICE@GATEHOUSE.TEST", "\(shouting.logDetail ?? "")")
        // bob has a ticket but not the group: 403, not 401.
        let bob = await setup.decide(try setup.negotiate("bob"))
        #expect(bob.status == 403 && bob.user == "bob")
    }

    @Test func refusalsChallengeWithNegotiateAndSayWhy() async throws {
        let setup = try Setup()
        let none = await setup.decide(nil)
        #expect(none.status == 401)
        #expect(setup.engine.challenge(for: "apps") == "Negotiate")
        #expect(setup.engine.challenge(for: "basic").hasPrefix("Basic realm=\"Apps\""))

        let header = try setup.negotiate("alice")
        #expect(await setup.decide(header).status == 200)
        let replay = await setup.decide(header)
        #expect(replay.status == 401 && replay.logDetail?.lowercased().contains("replay") == true, "\(replay.logDetail ?? "-")")

        let ntlm = await setup.decide("Negotiate TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==")
        #expect(ntlm.status == 401 && ntlm.logDetail?.contains("NTLM") == true)
        let garbage = await setup.decide("Negotiate " + Data((0..<64).map { UInt8($0) }).base64EncodedString())
        #expect(garbage.status == 401 && garbage.reason == DecisionEngine.kerberosFailed)
        #expect(await setup.decide("Negotiate !!!").status == 401)
        // A policy without `negotiate` does not take tickets.
        let basicOnly = await setup.decide(try setup.negotiate("alice"), policy: "basic")
        #expect(basicOnly.status == 401 && basicOnly.reason.hasPrefix("malformed credentials"))
        // Basic still works where Negotiate is on.
        let basic = "Basic " + Data("alice:\(setup.ad["AD_PASSWORD_ALICE"])".utf8).base64EncodedString()
        #expect(await setup.decide(basic).status == 200)
    }

    @Test func serviceListAndAccountStatesAreEnforced() async throws {
        let narrow = try Setup(principals: ["HTTP/other.gatehouse.test@GATEHOUSE.TEST"])
        let wrongService = await narrow.decide(try narrow.negotiate("alice"))
        #expect(wrongService.status == 401 && wrongService.logDetail?.contains("kerberos.principals") == true, "\(wrongService.logDetail ?? "-")")

        let setup = try Setup()
        let header = try setup.negotiate("carol")
        let carolDN = "CN=carol,\(setup.ad["AD_USERS_DN"])"
        func setAccountControl(_ value: Int) throws {
            let change = "dn: \(carolDN)\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: \(value)\n"
            _ = try tool(["env", "LDAPTLS_CACERT=\(setup.ad["AD_CA_FILE"])", "ldapmodify", "-x", "-H", setup.ad["AD_LDAPS_URL"], "-D", "CN=Administrator,\(setup.ad["AD_USERS_DN"])", "-w", setup.ad["AD_ADMIN_PASSWORD"]], input: change)
        }
        try setAccountControl(514)
        defer { try? setAccountControl(512) }
        // A valid ticket of a now disabled account.
        let disabled = await setup.decide(header)
        #expect(disabled.status == 401 && disabled.logDetail?.contains("account disabled") == true, "\(disabled.logDetail ?? "-")")
    }

    @Test func kerberosTestChecksKeytabKDCAndSkew() throws {
        let setup = try Setup()
        let steps = KerberosDiagnostics.run(setup.engine.kerberos!, userPassword: ("alice", setup.ad["AD_PASSWORD_ALICE"]))
        let failed = steps.filter { !$0.succeeded }.map { "\($0.name): \($0.detail)" }
        #expect(failed.isEmpty, "\(failed)")
        #expect(steps.map(\.name) == ["keytab", "ticket from the KDC", "clock skew", "service ticket accepted"])
        #expect(steps.first?.detail.contains("aes256") == true, "\(steps.first?.detail ?? "")")
    }

    @Test func principalsSplitAtTheUnescapedAt() {
        #expect(KerberosAcceptor.split("alice@CORP.EXAMPLE")! == ("alice", "CORP.EXAMPLE"))
        #expect(KerberosAcceptor.split("alice\\@corp.example@CORP.EXAMPLE")! == ("alice@corp.example", "CORP.EXAMPLE"))
        #expect(KerberosAcceptor.split("HTTP/gate.corp.example@CORP.EXAMPLE")! == ("HTTP/gate.corp.example", "CORP.EXAMPLE"))
        #expect(KerberosAcceptor.split("alice") == nil)
        #expect(KerberosAcceptor.split("@CORP") == nil)
        #expect(KerberosAcceptor.isNTLM(Array("NTLMSSP\u{0}\u{1}".utf8)))
        #expect(!KerberosAcceptor.isNTLM([0x60, 0x82, 0x01]))
    }
}
