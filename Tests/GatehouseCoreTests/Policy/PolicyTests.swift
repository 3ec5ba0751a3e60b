// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import GatehouseCore
import Testing

@Suite("Globs and rules")
struct PolicyTests {
    @Test(arguments: [
        ("team/*", "team/app", nil as String?, true),
        ("team/*", "team/app/sub", nil, false),
        ("team/**", "team/app/sub", nil, true),
        ("team/**", "team", nil, false),
        ("*", "app", nil, true),
        ("*", "team/app", nil, false),
        ("**", "a/b/c", nil, true),
        ("${user}/*", "alice/app", "alice", true),
        ("${user}/*", "bob/app", "alice", false),
        ("${user}/*", "alice/app", nil, false),
        // A user literally named "*" gets no wildcard.
        ("${user}/*", "x/app", "*", false),
        ("${user}/*", "*/app", "*", true),
        ("/wiki/*", "/wiki/page", nil, true),
        ("/wiki/*.md", "/wiki/page.md", nil, true),
        ("/wiki/*.md", "/wiki/dir/page.md", nil, false),
        ("/api/**/read", "/api/a/b/read", nil, true),
        ("lib*/*", "library/ubuntu", nil, true),
    ])
    func globs(pattern: String, text: String, user: String?, matches: Bool) throws {
        #expect(try Glob(pattern).matches(text, user: user) == matches)
    }

    @Test(arguments: ["", "a/***", "${username}/*", "$x", "a\u{1}b"])
    func badGlobs(pattern: String) {
        #expect(throws: GlobError.self) { try Glob(pattern) }
    }

    @Test func pathologicalPatternsStayFast() throws {
        let glob = try Glob("**a**a**a**a**a**a**b")
        // Memoised backtracking: O(tokens × length²) at worst, not exponential.
        #expect(!glob.matches(String(repeating: "a", count: 300), user: nil))
    }

    static func rule(_ n: Int, users: [String] = [], groups: [String] = [], anonymous: Bool = false, repos: [String]? = nil, allow: Set<String>?) -> Rule {
        Rule(label: "p#\(n)", users: users, groups: groups, anonymous: anonymous, resources: repos.map { $0.map { try! Glob($0) } }, allowed: allow)
    }

    static let policy = Policy(
        name: "p",
        kind: .registry,
        rules: [
            rule(1, groups: ["registry-admins"], allow: ["pull", "push", "delete", "catalog"]),
            rule(2, users: ["*"], repos: ["${user}/*"], allow: ["pull", "push"]),
            rule(3, users: ["mallory"], allow: []),
            rule(4, groups: ["pushers"], allow: ["pull", "push"]),
            rule(5, users: ["*"], allow: ["pull"]),
            rule(6, anonymous: true, repos: ["public/*"], allow: ["pull"]),
        ]
    )

    @Test(arguments: [
        ("admin", ["registry-admins"], "delete", "team/app", true, "p#1"),
        ("admin", ["registry-admins"], "catalog", nil, true, "p#1"),
        ("alice", [], "push", "alice/app", true, "p#2"),
        ("Alice", [], "push", "alice/app", true, "p#2"),
        ("alice", [], "push", "bob/app", false, "p#5"),
        ("alice", [], "pull", "bob/app", true, "p#5"),
        ("mallory", ["pushers"], "pull", "team/app", false, "p#3"),
        ("bob", ["pushers"], "push", "team/app", true, "p#4"),
        ("bob", ["pushers"], "delete", "team/app", false, "p#4"),
        ("carol", [], "catalog", nil, false, "p#5"),
        ("carol", ["Registry-Admins"], "delete", "team/app", false, "p#5"),
    ])
    func firstMatchingRuleDecides(user: String, groups: [String], action: String, repository: String?, allowed: Bool, rule: String) {
        let verdict = Self.policy.evaluate(Access(action: action, resource: repository), identity: Identity(user: user, groups: groups, backend: "t"))
        #expect(verdict.allowed == allowed)
        #expect(verdict.rule == rule)
    }

    @Test func ldapGroupsCompareCaseInsensitively() {
        let identity = Identity(user: "carol", groups: ["Registry-Admins"], backend: "corp", groupsAreCaseInsensitive: true)
        #expect(Self.policy.evaluate(Access(action: "delete", resource: "x"), identity: identity).allowed)
    }

    @Test func anonymousRulesAndLogin() {
        let pull = Self.policy.evaluate(Access(action: "pull", resource: "public/tools"), identity: nil)
        #expect(pull.allowed && pull.rule == "p#6")
        let privatePull = Self.policy.evaluate(Access(action: "pull", resource: "team/app"), identity: nil)
        #expect(!privatePull.allowed && privatePull.rule == "default-deny")
        #expect(!Self.policy.evaluate(Access(action: "login", resource: nil), identity: nil).allowed)
        #expect(Self.policy.evaluate(Access(action: "login", resource: nil), identity: Identity(user: "x", groups: [], backend: "t")).allowed)
    }

    @Test func noRulesMeansDeny() {
        let empty = Policy(name: "e", kind: .registry, rules: [])
        let verdict = empty.evaluate(Access(action: "pull", resource: "a"), identity: Identity(user: "x", groups: [], backend: "t"))
        #expect(!verdict.allowed && verdict.rule == "default-deny")
    }

    @Test func httpPoliciesMatchMethodsOnPaths() throws {
        let wiki = Policy(
            name: "wiki",
            kind: .http,
            rules: [
                Rule(label: "wiki#1", users: ["*"], groups: [], anonymous: false, resources: [try Glob("/wiki/**")], allowed: ["GET", "HEAD"]),
                Rule(label: "wiki#2", users: [], groups: ["editors"], anonymous: false, resources: nil, allowed: nil),
            ]
        )
        let reader = Identity(user: "r", groups: [], backend: "t")
        let editor = Identity(user: "e", groups: ["editors"], backend: "t")
        func access(_ method: String, _ uri: String) throws -> Access {
            try wiki.accesses(method: method, uri: try OriginalURI(validating: uri))[0]
        }
        #expect(wiki.evaluate(try access("GET", "/wiki/a/b?x=1"), identity: reader).allowed)
        #expect(!wiki.evaluate(try access("POST", "/wiki/a"), identity: reader).allowed)
        #expect(!wiki.evaluate(try access("GET", "/admin"), identity: reader).allowed)
        // An encoded letter is the same path: rules cannot be sidestepped by spelling.
        #expect(try access("GET", "/%77iki/x").resource == "/wiki/x")
        #expect(wiki.evaluate(try access("DELETE", "/anything"), identity: editor).allowed)
        #expect(throws: URIRejection.self) { try access("GET", "/wiki/%2e%2e/admin") }
    }
}
