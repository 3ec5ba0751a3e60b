// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
import GatehouseCore
@testable import GatehouseHTTP
import GatehouseTestSupport
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// `/auth` as nginx and curl see it, on real htpasswd/htgroups files.
@Suite("/auth endpoint")
struct AuthEndpointTests {
    final class Fixture {
        let directory: URL
        var configuration: Configuration

        init(trustedProxies: [String] = ["127.0.0.1/32", "::1/128"]) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-http-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let passwords = directory.appendingPathComponent("htpasswd").path
            // {SHA} keeps these tests fast; every format is covered by the core tests.
            try Data("reader:{SHA}\(Self.sha("reader-pw"))\npusher:{SHA}\(Self.sha("pusher-pw"))\njörg:{SHA}\(Self.sha("jörg-pw"))\n".utf8)
                .write(to: URL(fileURLWithPath: passwords))
            let groups = directory.appendingPathComponent("htgroups").path
            try Data("pushers: pusher jörg\nreaders: reader\nops,admins: jörg\n100%: jörg\n".utf8).write(to: URL(fileURLWithPath: groups))
            configuration = Configuration.embeddedDefaults(htpasswd: passwords, groups: groups)
            configuration.listen = .tcp(host: "127.0.0.1", port: 0)
            configuration.realm = "Registry"
            configuration.trustedProxies = trustedProxies.compactMap(IPNetwork.init(parsing:))
            let wiki = Policy(
                name: "wiki",
                kind: .http,
                rules: [Rule(label: "wiki#1", users: ["*"], groups: [], anonymous: false, resources: [try Glob("/wiki/**")], allowed: ["GET", "HEAD"])]
            )
            configuration.policies.append(wiki)
        }

        deinit { try? FileManager.default.removeItem(at: directory) }

        static func sha(_ password: String) -> String {
            // The same value `htpasswd -s` writes.
            var hasher = SHA1Helper()
            return hasher.base64(password)
        }

        func application() throws -> some ApplicationProtocol {
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            return try buildApplication(configuration: configuration, logger: logger)
        }
    }

    static func headers(user: String? = nil, password: String = "", method: String? = nil, uri: String? = nil, extra: [(String, String)] = []) -> HTTPFields {
        var fields = HTTPFields()
        if let user { fields[.authorization] = "Basic " + Data("\(user):\(password)".utf8).base64EncodedString() }
        if let method { fields[HTTPField.Name("X-Original-Method")!] = method }
        if let uri { fields[HTTPField.Name("X-Original-URI")!] = uri }
        for (name, value) in extra { fields.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        return fields
    }

    static let decision = HTTPField.Name("X-Auth-Decision")!
    static let rule = HTTPField.Name("X-Auth-Rule")!
    static let reason = HTTPField.Name("X-Auth-Reason")!
    static let user = HTTPField.Name("X-Auth-User")!
    static let groups = HTTPField.Name("X-Auth-Groups")!
    static let backend = HTTPField.Name("X-Auth-Backend")!

    @Test(arguments: [TestingSetup.router, .live])
    func allowedPushCarriesTheIdentity(setup: TestingSetup) async throws {
        let fixture = try Fixture()
        try await fixture.application().test(setup) { client in
            try await client.execute(uri: "/auth", method: .get, headers: Self.headers(user: "pusher", password: "pusher-pw", method: "PUT", uri: "/v2/team/app/manifests/1")) { response in
                #expect(response.status == .ok)
                #expect(response.headers[Self.user] == "pusher")
                #expect(response.headers[Self.groups] == "pushers")
                #expect(response.headers[Self.backend] == "local")
                #expect(response.headers[Self.decision] == "allow")
                #expect(response.headers[Self.rule] == "registry#1")
                #expect(response.headers[Self.reason]?.isEmpty == false)
                #expect(response.body.readableBytes == 0)
                #expect(response.headers[.wwwAuthenticate] == nil)
            }
        }
    }

    @Test(arguments: [TestingSetup.router, .live])
    func readerPushIsForbidden(setup: TestingSetup) async throws {
        let fixture = try Fixture()
        try await fixture.application().test(setup) { client in
            try await client.execute(uri: "/auth", method: .get, headers: Self.headers(user: "reader", password: "reader-pw", method: "PUT", uri: "/v2/team/app/manifests/1")) { response in
                #expect(response.status == .forbidden)
                #expect(response.headers[Self.decision] == "deny")
                #expect(response.headers[Self.rule] == "registry#2")
                #expect(response.headers[Self.user] == nil, "only an allowed request names its user")
                #expect(response.headers[.wwwAuthenticate] == nil)
                #expect(response.body.readableBytes == 0)
            }
        }
    }

    @Test(arguments: [
        (nil as String?, "", "/v2/"),
        ("reader", "wrong", "/v2/"),
        ("nobody", "wrong", "/v2/team/app/manifests/1"),
        (nil, "", "/v2/team/app/manifests/1"),
    ])
    func challenges(user: String?, password: String, uri: String) async throws {
        let fixture = try Fixture()
        try await fixture.application().test(.live) { client in
            try await client.execute(uri: "/auth", method: .get, headers: Self.headers(user: user, password: password, uri: uri)) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[values: .wwwAuthenticate] == [#"Basic realm="Registry", charset="UTF-8""#])
                #expect(response.headers[Self.decision] == "challenge")
                #expect(response.headers[.contentLength] == "0", "a body would make nginx drop the keep-alive connection")
                #expect(response.headers[Self.user] == nil)
            }
        }
    }

    @Test func wrongPasswordAndUnknownUserAnswerTheSame() async throws {
        let fixture = try Fixture()
        try await fixture.application().test(.router) { client in
            let wrong = try await client.execute(uri: "/auth", method: .get, headers: Self.headers(user: "reader", password: "x", uri: "/v2/"))
            let unknown = try await client.execute(uri: "/auth", method: .get, headers: Self.headers(user: "ghost", password: "x", uri: "/v2/"))
            #expect(wrong.status == unknown.status)
            #expect(wrong.headers[Self.reason] == unknown.headers[Self.reason])
            #expect(wrong.headers[Self.rule] == unknown.headers[Self.rule])
        }
    }

    @Test(arguments: [
        ("/v2/team/../admin/manifests/1", "GET"),
        ("/v2/team%2Fapp/manifests/1", "GET"),
        ("/v2/team/app/manifests/1#x", "GET"),
        ("/v2/nothing-here", "GET"),
        ("/v2/team/app/manifests/1", "PATCH"),
    ])
    func dangerousTargetsAreForbidden(uri: String, method: String) async throws {
        let fixture = try Fixture()
        try await fixture.application().test(.router) { client in
            try await client.execute(uri: "/auth", method: .get, headers: Self.headers(user: "pusher", password: "pusher-pw", method: method, uri: uri)) { response in
                #expect(response.status == .forbidden)
                #expect(response.headers[Self.rule] == "invalid-request")
            }
        }
    }

    @Test func missingOrDuplicatedOriginalURIIsNeverAllowed() async throws {
        let fixture = try Fixture()
        try await fixture.application().test(.router) { client in
            let missing = try await client.execute(uri: "/auth", method: .get, headers: Self.headers(user: "pusher", password: "pusher-pw"))
            #expect(missing.status == .forbidden)
            let doubled = try await client.execute(
                uri: "/auth",
                method: .get,
                headers: Self.headers(user: "pusher", password: "pusher-pw", uri: "/v2/a/manifests/1", extra: [("X-Original-URI", "/v2/b/manifests/1")])
            )
            #expect(doubled.status == .forbidden)
        }
    }

    @Test func methodFallsBackToTheSubrequestsOwn() async throws {
        let fixture = try Fixture()
        try await fixture.application().test(.router) { client in
            let put = try await client.execute(uri: "/auth", method: .put, headers: Self.headers(user: "reader", password: "reader-pw", uri: "/v2/a/manifests/1"))
            #expect(put.status == .forbidden)
            let get = try await client.execute(uri: "/auth", method: .get, headers: Self.headers(user: "reader", password: "reader-pw", uri: "/v2/a/manifests/1"))
            #expect(get.status == .ok)
        }
    }

    @Test func namedPoliciesAndUnknownOnes() async throws {
        let fixture = try Fixture()
        try await fixture.application().test(.router) { client in
            let page = try await client.execute(uri: "/auth/wiki", method: .get, headers: Self.headers(user: "reader", password: "reader-pw", uri: "/wiki/Home?action=view"))
            #expect(page.status == .ok && page.headers[Self.rule] == "wiki#1")
            let edit = try await client.execute(uri: "/auth/wiki", method: .get, headers: Self.headers(user: "reader", password: "reader-pw", method: "POST", uri: "/wiki/Home"))
            #expect(edit.status == .forbidden)
            let unknown = try await client.execute(uri: "/auth/nope", method: .get, headers: Self.headers(user: "reader", password: "reader-pw", uri: "/v2/"))
            #expect(unknown.status == .notFound)
            // An empty policy name (an nginx variable left unset) is not the default policy.
            for path in ["/auth/", "/auth//registry", "/auth/registry/"] {
                let response = try await client.execute(uri: path, method: .get, headers: Self.headers(user: "reader", password: "reader-pw", uri: "/v2/"))
                #expect(response.status == .notFound, "\(path)")
            }
            let named = try await client.execute(uri: "/auth/registry", method: .get, headers: Self.headers(user: "reader", password: "reader-pw", uri: "/v2/"))
            #expect(named.status == .ok)
        }
    }

    @Test func explainReturnsJSONForPeople() async throws {
        let fixture = try Fixture()
        try await fixture.application().test(.router) { client in
            try await client.execute(uri: "/auth?explain", method: .get, headers: Self.headers(user: "reader", password: "reader-pw", method: "PUT", uri: "/v2/team/app/manifests/1")) { response in
                #expect(response.status == .forbidden)
                #expect(response.headers[.contentType] == "application/json; charset=utf-8")
                let explanation = try JSONDecoder().decode(DecisionExplanation.self, from: Data(response.body.readableBytesView))
                #expect(explanation.decision == .deny)
                #expect(explanation.status == 403)
                #expect(explanation.user == "reader")
                #expect(explanation.groups == ["readers"])
                #expect(explanation.action == "push")
                #expect(explanation.repository == "team/app")
                #expect(explanation.rule == "registry#2")
                #expect(explanation.trace.map(\.rule) == ["registry#1", "registry#2"])
                #expect(!explanation.cached)
            }
        }
    }

    @Test func nonASCIIUserNamesSurviveIntoHeaders() async throws {
        let fixture = try Fixture()
        try await fixture.application().test(.live) { client in
            try await client.execute(uri: "/auth", method: .get, headers: Self.headers(user: "jörg", password: "jörg-pw", method: "PUT", uri: "/v2/a/manifests/1")) { response in
                #expect(response.status == .ok)
                #expect(response.headers[Self.user] == "jörg")
            }
        }
    }

    /// A group name may contain a comma (an AD cn can; so can an htgroups name). Upstream apps
    /// split X-Auth-Groups at commas, so a group `ops,admins` must not read as `admins`.
    @Test func groupNamesWithCommasStayOneGroup() async throws {
        let fixture = try Fixture()
        try await fixture.application().test(.router) { client in
            try await client.execute(uri: "/auth", method: .get, headers: Self.headers(user: "jörg", password: "jörg-pw", method: "PUT", uri: "/v2/a/manifests/1")) { response in
                #expect(response.status == .ok)
                let groups = response.headers[Self.groups] ?? ""
                #expect(groups == "100%25,ops%2Cadmins,pushers")
                #expect(!groups.split(separator: ",").contains("admins"))
                #expect(groups.split(separator: ",").map { $0.removingPercentEncoding } == ["100%", "ops,admins", "pushers"])
            }
        }
    }

    @Test(arguments: [
        (["127.0.0.1/32"], "203.0.113.7", [String](), "203.0.113.7"),
        (["127.0.0.1/32"], nil, ["198.51.100.1, 203.0.113.9"], "203.0.113.9"),
        (["127.0.0.1/32", "203.0.113.0/24"], nil, ["198.51.100.1, 203.0.113.9"], "198.51.100.1"),
        (["127.0.0.1/32"], "not-an-address", ["also bad"], "127.0.0.1"),
        ([String](), "203.0.113.7", ["198.51.100.1"], "127.0.0.1"),
    ] as [([String], String?, [String], String)])
    func clientAddressIsBelievedOnlyFromTrustedProxies(trusted: [String], realIP: String?, forwardedFor: [String], expected: String) throws {
        let peer = try SocketAddress(ipAddress: "127.0.0.1", port: 40000)
        let networks = trusted.compactMap(IPNetwork.init(parsing:))
        #expect(ClientAddress.resolve(peer: peer, realIP: realIP, forwardedFor: forwardedFor, trustedProxies: networks) == expected)
    }

    @Test func clientAddressReachesTheExplanation() async throws {
        let fixture = try Fixture()
        try await fixture.application().test(.live) { client in
            try await client.execute(uri: "/auth?explain", method: .get, headers: Self.headers(user: "reader", password: "reader-pw", uri: "/v2/")) { response in
                let explanation = try JSONDecoder().decode(DecisionExplanation.self, from: Data(response.body.readableBytesView))
                #expect(explanation.client == "127.0.0.1" || explanation.client == "::1")
            }
        }
    }

    @Test func healthAndReadiness() async throws {
        let fixture = try Fixture()
        try await fixture.application().test(.router) { client in
            let health = try await client.execute(uri: "/healthz", method: .get)
            #expect(health.status == .ok)
            let ready = try await client.execute(uri: "/readyz", method: .get)
            #expect(ready.status == .ok)
        }
    }

    @Test func keepAliveSurvivesEveryKindOfAnswer() async throws {
        let fixture = try Fixture()
        try await fixture.application().test(.live) { client in
            // One connection, answered 401, 403, 200 in turn: none of them may close it.
            let challenge = try await client.execute(uri: "/auth", method: .get, headers: Self.headers(uri: "/v2/"))
            #expect(challenge.status == .unauthorized && challenge.headers[.connection] != "close")
            let deny = try await client.execute(uri: "/auth", method: .get, headers: Self.headers(user: "reader", password: "reader-pw", method: "DELETE", uri: "/v2/a/manifests/1"))
            #expect(deny.status == .forbidden && deny.headers[.connection] != "close")
            let allow = try await client.execute(uri: "/auth", method: .get, headers: Self.headers(user: "reader", password: "reader-pw", uri: "/v2/"))
            #expect(allow.status == .ok)
        }
    }
}

/// `{SHA}` values for the fixture, computed like `htpasswd -s`.
struct SHA1Helper {
    mutating func base64(_ password: String) -> String {
        let line = (try? ChildProcess.run(["htpasswd", "-nbs", "u", password]).output) ?? ""
        return String(line.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("u:{SHA}".count))
    }
}
