// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
import GatehouseCore
import Logging
import Testing

/// http policies judge the path the upstream application will serve, and nothing else.
@Suite("http policies: paths as upstreams read them, methods, networks, identity upstream")
struct HTTPPolicyTests {
    /// `/wiki/admin/**` is for wiki-admins; everyone else is explicitly denied there; the rest
    /// of `/wiki/**` is open to any user; `/build/**` may be written only from the build farm.
    static let yaml = """
        backends: [{name: local, type: htpasswd, file: htpasswd, groups_file: htgroups}]
        default_policy: wiki
        policies:
          wiki:
            type: http
            rules:
              - {groups: [wiki-admins], paths: ["/wiki/admin/**"]}
              - {users: ["*"], methods: [], paths: ["/wiki/admin/**"]}
              - {users: ["*"], methods: [GET, HEAD], paths: ["/wiki/**"]}
              - {users: ["*"], methods: [GET, PUT], paths: ["/build/**"], networks: [10.0.0.0/8, "2001:db8::/32"]}
              - {users: ["*"], methods: [GET], paths: ["/build/**"]}
          slim:
            type: http
            upstream_groups: ["team-*"]
            rules:
              - {users: ["*"], paths: ["/**"]}
        """

    static func engine() throws -> DecisionEngine {
        let directory = try makeTemporaryDirectory()
        let htpasswd = try ["alice", "bob"].map { try tool(["htpasswd", "-nbB", "-C", "4", $0, "\($0)-pw"]) }.joined(separator: "\n")
        try write(htpasswd, to: directory.appendingPathComponent("htpasswd"))
        try write("wiki-admins: alice\nteam-a: bob\nteam-b: bob\nother: bob\n", to: directory.appendingPathComponent("htgroups"))
        let configuration = try Configuration.parse(yaml: yaml, baseDirectory: directory.path)
        return try DecisionEngine(configuration: configuration, logger: Logger(label: "test"))
    }

    static func decide(_ engine: DecisionEngine, _ user: String, method: String = "GET", _ uri: String, policy: String? = nil, client: String? = nil) async -> Decision {
        await engine.decide(AuthRequest(credentials: .password(user: user, password: "\(user)-pw"), method: method, originalURIs: [uri], policyName: policy, clientAddress: client))
    }

    /// The path table: what bob (not a wiki admin) asks, and what the gate must answer. Each
    /// refused row is a path some upstream serves as `/wiki/admin/…` or resolves out of `/wiki/`.
    @Test(arguments: [
        // `;` parameters: Tomcat, Jetty, Spring drop them from each segment.
        ("/wiki/..;/admin", 403, "invalid-request"),
        ("/wiki/..;jsessionid=1/admin/x", 403, "invalid-request"),
        ("/wiki/.;x/admin/x", 403, "invalid-request"),
        ("/wiki/;x/admin/x", 403, "invalid-request"),
        ("/wiki/admin;x/secret", 403, "wiki#2"),
        ("/wiki/admin;/secret", 403, "wiki#2"),
        ("/wiki/page;jsessionid=ABC", 200, "wiki#3"),
        // Escaped ';' and '%' (double encoding), non-UTF-8 escapes.
        ("/wiki/admin%3Bx/secret", 403, "invalid-request"),
        ("/wiki/%252e%252e/admin", 403, "invalid-request"),
        ("/wiki/%25", 403, "invalid-request"),
        ("/wiki/%C0%AE%C0%AE/admin", 403, "invalid-request"),
        ("/wiki/caf%C3%A9", 200, "wiki#3"),
        // IIS / Windows drop a trailing dot or space from a segment.
        ("/wiki/admin./secret", 403, "invalid-request"),
        ("/wiki/admin%20/secret", 403, "invalid-request"),
        // Letter case: IIS, ASP.NET, Express match paths case-insensitively.
        ("/wiki/ADMIN/secret", 403, "wiki#2"),
        ("/wiki/Admin/secret", 403, "wiki#2"),
        ("/WIKI/admin/secret", 403, "default-deny"),
        // Trailing slash: Express, Spring MVC < 6, Rails ignore it.
        ("/wiki/admin", 403, "wiki#2"),
        ("/wiki/admin/", 403, "wiki#2"),
        // A suffix: Rails formats, Spring suffix matching.
        ("/wiki/admin.json", 403, "wiki#2"),
        // Already refused by OriginalURI, still refused.
        ("/wiki/../admin", 403, "invalid-request"),
        ("/wiki/%2e%2e/admin", 403, "invalid-request"),
        ("/wiki/admin%2Fsecret", 403, "invalid-request"),
        ("/wiki//admin", 403, "invalid-request"),
        // Ordinary pages stay open.
        ("/wiki/", 200, "wiki#3"),
        ("/wiki/page", 200, "wiki#3"),
        ("/wiki/page/", 200, "wiki#3"),
        ("/wiki/page.html", 200, "wiki#3"),
        ("/wiki/Page/Sub", 200, "wiki#3"),
        ("/wiki/administrator", 200, "wiki#3"),
    ])
    func pathTable(uri: String, status: Int, rule: String) async throws {
        let engine = try Self.engine()
        let decision = await Self.decide(engine, "bob", uri)
        #expect(decision.status == status, "\(uri): \(decision.reason)")
        #expect(decision.rule == rule, "\(uri): \(decision.reason)")
    }

    @Test func theAdminGroupStillReachesItsPages() async throws {
        let engine = try Self.engine()
        for uri in ["/wiki/admin/secret", "/wiki/admin;x/secret", "/wiki/ADMIN/secret", "/wiki/admin"] {
            let decision = await Self.decide(engine, "alice", uri)
            #expect(decision.status == 200, "\(uri): \(decision.reason)")
        }
    }

    @Test func rulesMatchThePathWithoutParameters() async throws {
        let engine = try Self.engine()
        let decision = await Self.decide(engine, "alice", "/wiki/admin;x/secret")
        #expect(decision.path == "/wiki/admin/secret")
        #expect(decision.repository == nil)
    }

    @Test(arguments: [
        ("GET", 200), ("HEAD", 200), ("get", 403), ("Get", 403), ("POST", 403),
        ("G ET", 403), ("GET\u{0}", 403), ("", 403), ("GET\r\nX: y", 403),
    ])
    func methodsAreCaseSensitiveTokens(method: String, status: Int) async throws {
        let engine = try Self.engine()
        let decision = await Self.decide(engine, "bob", method: method, "/wiki/page")
        #expect(decision.status == status, "\(method.debugDescription): \(decision.reason)")
    }

    @Test func aNonTokenMethodIsAnInvalidRequestInRegistryPoliciesToo() async throws {
        let policy = Configuration.seedPolicy(pushGroup: "pushers")
        let uri = try OriginalURI(validating: "/v2/a/manifests/1")
        #expect(throws: URIRejection.self) { try policy.accesses(method: "GE T", uri: uri) }
        #expect(throws: URIRejection.self) { try policy.accesses(method: "get", uri: uri) }
    }

    @Test(arguments: [
        ("10.1.2.3", 200), ("10.255.0.1", 200), ("2001:db8::7", 200), ("::ffff:10.0.0.9", 200),
        ("192.168.1.10", 403), ("2001:db9::1", 403), (nil as String?, 403),
    ])
    func networksLimitWhereARuleApplies(client: String?, status: Int) async throws {
        let engine = try Self.engine()
        let put = await Self.decide(engine, "bob", method: "PUT", "/build/artifact", client: client)
        #expect(put.status == status, "\(client ?? "no address"): \(put.reason)")
        // Reads are for everyone, wherever they are.
        let get = await Self.decide(engine, "bob", "/build/artifact", client: client)
        #expect(get.status == 200)
    }

    @Test func upstreamGroupsChooseWhatIsSentButRulesSeeAll() async throws {
        let engine = try Self.engine()
        let slim = await Self.decide(engine, "bob", "/x", policy: "slim")
        #expect(slim.status == 200)
        #expect(slim.groups == ["other", "team-a", "team-b"])
        #expect(slim.upstreamGroups.value == "team-a,team-b")
        let wiki = await Self.decide(engine, "bob", "/wiki/page")
        #expect(wiki.upstreamGroups.value == "other,team-a,team-b")
    }

    @Test func groupsAreSentWholeOrMarkedIncomplete() {
        // 300 groups of 46 characters: about 14 KB, sent whole.
        let three = (1...300).map { String(format: "GG-Corp-Application-Team%03d-Readers-Production", $0) }
        let all = UpstreamGroups(three)
        #expect(!all.truncated)
        #expect(all.value.split(separator: ",").map(String.init) == three)
        // 2,000 such groups do not fit: whole names only, a prefix of the sorted list, marked.
        let many = (1...2000).map { String(format: "GG-Corp-Application-Team%04d-Readers-Production", $0) }
        let cut = UpstreamGroups(many)
        #expect(cut.truncated)
        #expect(cut.value.utf8.count <= UpstreamGroups.maximumBytes)
        let sent = cut.value.split(separator: ",").map(String.init)
        #expect(sent == Array(many.prefix(sent.count)))
        #expect(cut.count == sent.count && cut.offered == 2000)
        // A name is never cut, even the one that would cross the limit.
        #expect(UpstreamGroups(["abc", "defgh"], maximumBytes: 8).value == "abc")
        // Separators and controls inside a name cannot split it or reach a header raw.
        #expect(UpstreamGroups(["ops,admins", "100%", "a\u{0}b"]).value == "ops%2Cadmins,100%25,a%00b")
    }

    @Test func explanationsCarryEveryFieldAlways() async throws {
        let engine = try Self.engine()
        let cases: [(String, String?, String)] = [
            ("/wiki/page", nil, "bob"),
            ("/wiki/..;/admin", nil, "bob"),
            ("/x", "slim", "nobody"),
            ("/x", "no-such-policy", "bob"),
        ]
        for (uri, policy, user) in cases {
            let decision = await Self.decide(engine, user, uri, policy: policy)
            let explanation = DecisionExplanation(decision, policyKind: engine.policies[decision.policy]?.kind)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(explanation.json().utf8)) as? [String: Any])
            for field in ["decision", "status", "user", "groups", "action", "repository", "rule", "reason", "cached"] {
                #expect(object.keys.contains(field), "\(uri): \(field) missing")
            }
            #expect(object.keys.contains("path") == (engine.policies[decision.policy]?.kind == .http), "\(uri): path")
            #expect(object["repository"] is NSNull, "\(uri): an http policy has no repository")
        }
        // Registry policies: repository filled, no path key.
        let registry = DecisionEngine(realm: "r", defaultPolicy: "registry", policies: [Configuration.seedPolicy(pushGroup: "p")], backends: [])
        let decision = await registry.decide(AuthRequest(credentials: .anonymous, method: "GET", originalURIs: ["/v2/a/manifests/1"]))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(DecisionExplanation(decision, policyKind: .registry).json().utf8)) as? [String: Any])
        #expect(object["repository"] as? String == "a")
        #expect(object["user"] is NSNull)
        #expect(!object.keys.contains("path"))
    }

    @Test(arguments: [
        ("networks: []", "leave the key out"),
        ("networks: [10.0.0.0/33]", "not an address or CIDR"),
        ("networks: [nonsense]", "not an address or CIDR"),
    ])
    func badNetworksAreNamed(fragment: String, message: String) throws {
        let yaml = """
            backends: [{name: local, type: htpasswd, file: /dev/null}]
            policies:
              wiki:
                type: http
                rules:
                  - {users: ["*"], \(fragment)}
            """
        #expect {
            _ = try Configuration.parse(yaml: yaml)
        } throws: { error in
            "\(error)".contains("policies.wiki.rules[1].networks") && "\(error)".contains(message)
        }
    }
}
