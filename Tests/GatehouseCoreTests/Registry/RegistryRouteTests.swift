// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import GatehouseCore
import Testing

@Suite("Registry action table")
struct RegistryRouteTests {
    static let digest = "sha256:" + String(repeating: "ab", count: 32)

    static func accesses(_ method: String, _ uri: String) throws -> [String] {
        let parsed = try OriginalURI(validating: uri)
        return try RegistryRoute.accesses(method: method, uri: parsed).map(\.description)
    }

    @Test(arguments: [
        ("GET", "/v2/", ["login"]),
        ("HEAD", "/v2/", ["login"]),
        ("GET", "/v2/_catalog", ["catalog"]),
        ("GET", "/v2/_catalog?n=100&last=team%2Fapp", ["catalog"]),
        ("GET", "/v2/team/app/manifests/latest", ["pull on team/app"]),
        ("HEAD", "/v2/team/app/manifests/\(digest)", ["pull on team/app"]),
        ("GET", "/v2/team/app/blobs/\(digest)", ["pull on team/app"]),
        ("HEAD", "/v2/team/app/blobs/\(digest)", ["pull on team/app"]),
        ("GET", "/v2/team/app/tags/list", ["pull on team/app"]),
        ("GET", "/v2/team/app/tags/list?n=10&last=v1", ["pull on team/app"]),
        ("GET", "/v2/team/app/referrers/\(digest)", ["pull on team/app"]),
        ("POST", "/v2/team/app/blobs/uploads/", ["push on team/app"]),
        ("PATCH", "/v2/team/app/blobs/uploads/6f1c1a54-4f0e-4b8e-9a53-51d4a0c1f1e2?_state=abc%3D%3D", ["push on team/app"]),
        ("PUT", "/v2/team/app/blobs/uploads/6f1c1a54-4f0e-4b8e-9a53-51d4a0c1f1e2?_state=x&digest=\(digest)", ["push on team/app"]),
        ("GET", "/v2/team/app/blobs/uploads/6f1c1a54", ["push on team/app"]),
        ("DELETE", "/v2/team/app/blobs/uploads/6f1c1a54", ["push on team/app"]),
        ("PUT", "/v2/team/app/manifests/v1.2.3", ["push on team/app"]),
        ("DELETE", "/v2/team/app/manifests/\(digest)", ["delete on team/app"]),
        ("DELETE", "/v2/team/app/blobs/\(digest)", ["delete on team/app"]),
        ("POST", "/v2/team/new/blobs/uploads/?mount=\(digest)&from=other%2Fsecret", ["push on team/new", "pull on other/secret"]),
        ("POST", "/v2/team/new/blobs/uploads/?from=other%2Fsecret", ["push on team/new"]),
        // Components that look like endpoint words: routed by the trailing segments.
        ("GET", "/v2/blobs/manifests/manifests/latest", ["pull on blobs/manifests"]),
        ("GET", "/v2/a/blobs/uploads/blobs/\(digest)", ["pull on a/blobs/uploads"]),
        ("PUT", "/v2/tags/list/manifests/1", ["push on tags/list"]),
        ("GET", "/v2/my-team__x/app.v2/manifests/latest", ["pull on my-team__x/app.v2"]),
    ])
    func actionTable(method: String, uri: String, expected: [String]) throws {
        #expect(try Self.accesses(method, uri) == expected)
    }

    @Test(arguments: [
        ("POST", "/v2/"),
        ("GET", "/v2"),
        ("GET", "/"),
        ("GET", "/v1/team/app/manifests/latest"),
        ("PUT", "/v2/_catalog"),
        ("POST", "/v2/team/app/manifests/latest"),
        ("PATCH", "/v2/team/app/manifests/latest"),
        ("PUT", "/v2/team/app/blobs/\(digest)"),
        ("POST", "/v2/team/app/blobs/uploads"),
        ("GET", "/v2/team/app/blobs/uploads/"),
        ("PUT", "/v2/team/app/tags/list"),
        ("GET", "/v2/team/app/tags/lists"),
        ("GET", "/v2/team/app/blobs/notadigest"),
        ("GET", "/v2/team/app"),
        ("GET", "/v2/manifests/latest"),
        ("GET", "/v2/Team/App/manifests/latest"),
        ("GET", "/v2/team//app/manifests/latest"),
        ("GET", "/v2/team/../admin/manifests/latest"),
        ("GET", "/v2/team/./app/manifests/latest"),
        ("GET", "/v2/team%2Fapp/manifests/latest"),
        ("GET", "/v2/team/app%2E/manifests/latest"),
        ("GET", "/v2/%74eam/app/manifests/latest"),
        ("GET", "/v2/team\\app/manifests/latest"),
        ("GET", "/v2/team/app/manifests/latest#frag"),
        ("GET", "/v2/team/app/manifests/lat%00est"),
        ("GET", "/v2/team/app/manifests/latest\u{0}"),
        ("GET", "/v2/team/app/manifests/lätest"),
        ("GET", "/v2/team app/manifests/latest"),
        ("GET", "http://registry.example/v2/team/app/manifests/latest"),
        ("GET", "*"),
        ("GET", ""),
        ("GET", "/v2/team/app/manifests/latest?a=1;b=2"),
        ("GET", "/v2/" + String(repeating: "a", count: 300) + "/manifests/latest"),
        ("GET", "/v2/a/manifests/" + String(repeating: "t", count: 129)),
        ("GET", "/v2/x/manifests/latest?" + String(repeating: "q", count: 9000)),
        ("GET", "/v2/team-/app/manifests/latest"),
        ("GET", "/v2/team/app/manifests/-latest"),
        ("POST", "/v2/team/new/blobs/uploads/?mount=\(digest)&from=other&from=team%2Fnew"),
        ("POST", "/v2/team/new/blobs/uploads/?mount=\(digest)&from=..%2Fx"),
        ("POST", "/v2/team/new/blobs/uploads/?mount=\(digest)"),
        ("POST", "/v2/team/new/blobs/uploads/?mount=nodigest&from=other"),
        ("POST", "/v2/team/new/blobs/uploads/?mount=\(digest)&from=%ZZ"),
        ("DELETE", "/v2/team/app/tags/list"),
        ("GET", "/v2/_catalog/extra"),
        // Methods are case-sensitive (RFC 9110); the registry would not know "get" either.
        ("get", "/v2/library/ubuntu/manifests/22.04"),
    ])
    func refusesEverythingElse(method: String, uri: String) {
        #expect(throws: URIRejection.self) { try Self.accesses(method, uri) }
    }

    @Test(arguments: [
        ("a", true), ("a/b/c", true), ("a.b_c__d-e---f", true), ("0/9", true),
        ("A", false), ("a/", false), ("/a", false), ("a..b", false), ("a___b", false), ("a-", false), ("_a", false), ("", false),
    ])
    func repositoryNameGrammar(name: String, valid: Bool) {
        #expect(RegistryRoute.isRepositoryName(name) == valid)
    }

    @Test func repositoryNamesStopAt255Characters() {
        #expect(RegistryRoute.isRepositoryName(String(repeating: "a", count: 255)))
        #expect(!RegistryRoute.isRepositoryName(String(repeating: "a", count: 256)))
    }
}
