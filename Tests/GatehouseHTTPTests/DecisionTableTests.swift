// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// Over 300 decisions through `/auth`, each with its exact status and headers: every OCI
/// distribution endpoint with its methods, tricky names, mounts, refusals, globs, first-match
/// order, anonymous rules and an http policy.
@Suite("Decision table")
struct DecisionTableTests {
    static let yaml = """
        backends:
          - {name: local, type: htpasswd, file: htpasswd, groups_file: htgroups}
        default_policy: registry
        policies:
          registry:
            type: registry
            rules:
              - {name: admins, groups: [registry-admins], allow: [pull, push, delete, catalog]}
              - {name: own-namespace, users: ["*"], repositories: ["${user}/**"], allow: [pull, push]}
              - {name: blocked, users: [mallory], allow: []}
              - {name: pushers, groups: [pushers], repositories: ["team/**"], allow: [pull, push]}
              - {name: readers, users: ["*"], allow: [pull]}
              - {name: public, anonymous: true, repositories: ["public/*"], allow: [pull]}
          wiki:
            type: http
            rules:
              - {name: wiki-edit, groups: [pushers], paths: ["/wiki/**"]}
              - {name: wiki-read, users: ["*"], methods: [GET, HEAD], paths: ["/wiki/**"]}
              - {name: public-assets, anonymous: true, methods: [GET], paths: ["/assets/*"]}
        """

    /// Columns, in order, of every row's expectations.
    static let requesters: [String?] = ["admin", "pusher", "reader", "mallory", nil]
    static let d = "sha256:" + String(repeating: "c3", count: 32)

    static let pull7 = "200 admins|200 pushers|200 readers|403 blocked|401 default-deny"
    static let push9 = "200 admins|200 pushers|403 readers|403 blocked|401 default-deny"
    static let delete10 = "200 admins|403 pushers|403 readers|403 blocked|401 default-deny"
    static let invalid = "403 invalid-request|403 invalid-request|403 invalid-request|403 invalid-request|403 invalid-request"
    static let login = "200 login|200 login|200 login|200 login|401 login"

    /// (policy, method, X-Original-URI, expectations for admin|pusher|reader|mallory|anonymous)
    static let rows: [(String, String, String, String)] = [
        ("registry", "GET", "/v2/", login),
        ("registry", "HEAD", "/v2/", login),
        ("registry", "POST", "/v2/", invalid),
        ("registry", "GET", "/v2/_catalog", "200 admins|403 readers|403 readers|403 blocked|401 default-deny"),
        ("registry", "GET", "/v2/_catalog?n=10&last=a", "200 admins|403 readers|403 readers|403 blocked|401 default-deny"),
        ("registry", "PUT", "/v2/_catalog", invalid),
        ("registry", "GET", "/v2/team/app/manifests/latest", pull7),
        ("registry", "HEAD", "/v2/team/app/manifests/\(d)", pull7),
        ("registry", "PUT", "/v2/team/app/manifests/v1", push9),
        ("registry", "DELETE", "/v2/team/app/manifests/\(d)", delete10),
        ("registry", "POST", "/v2/team/app/manifests/latest", invalid),
        ("registry", "GET", "/v2/team/app/blobs/\(d)", pull7),
        ("registry", "HEAD", "/v2/team/app/blobs/\(d)", pull7),
        ("registry", "DELETE", "/v2/team/app/blobs/\(d)", delete10),
        ("registry", "PUT", "/v2/team/app/blobs/\(d)", invalid),
        ("registry", "GET", "/v2/team/app/tags/list", pull7),
        ("registry", "GET", "/v2/team/app/tags/list?n=5&last=v1", pull7),
        ("registry", "GET", "/v2/team/app/referrers/\(d)", pull7),
        ("registry", "POST", "/v2/team/app/blobs/uploads/", push9),
        ("registry", "PATCH", "/v2/team/app/blobs/uploads/0f3c-9b1a?_state=x", push9),
        ("registry", "PUT", "/v2/team/app/blobs/uploads/0f3c-9b1a?_state=x&digest=\(d)", push9),
        ("registry", "GET", "/v2/team/app/blobs/uploads/0f3c-9b1a", push9),
        ("registry", "DELETE", "/v2/team/app/blobs/uploads/0f3c-9b1a", push9),
        ("registry", "POST", "/v2/team/app/blobs/uploads/?mount=\(d)&from=public%2Ftools", push9),
        ("registry", "POST", "/v2/mallory/x/blobs/uploads/?mount=\(d)&from=team%2Fapp", "200 admins|403 readers|403 readers|403 blocked|401 default-deny"),
        ("registry", "GET", "/v2/public/tools/manifests/latest", "200 admins|200 readers|200 readers|403 blocked|200 public"),
        ("registry", "PUT", "/v2/public/tools/manifests/1", "200 admins|403 readers|403 readers|403 blocked|401 public"),
        ("registry", "GET", "/v2/public/tools/tags/list", "200 admins|200 readers|200 readers|403 blocked|200 public"),
        ("registry", "GET", "/v2/public/tools/sub/manifests/1", "200 admins|200 readers|200 readers|403 blocked|401 default-deny"),
        ("registry", "PUT", "/v2/reader/own/manifests/1", "200 admins|403 readers|200 own-namespace|403 blocked|401 default-deny"),
        ("registry", "GET", "/v2/reader/own/manifests/1", "200 admins|200 readers|200 own-namespace|403 blocked|401 default-deny"),
        ("registry", "DELETE", "/v2/reader/own/manifests/\(d)", "200 admins|403 readers|403 own-namespace|403 blocked|401 default-deny"),
        ("registry", "PUT", "/v2/mallory/deep/x/manifests/1", "200 admins|403 readers|403 readers|200 own-namespace|401 default-deny"),
        ("registry", "GET", "/v2/team/blobs/manifests/latest", pull7),
        ("registry", "PUT", "/v2/team/tags/list/manifests/1", push9),
        ("registry", "GET", "/v2/team/a/blobs/uploads/blobs/\(d)", pull7),
        ("registry", "GET", "/v2/team/app/manifests/latest?x=1", pull7),
        ("registry", "GET", "/v2/team/../app/manifests/1", invalid),
        ("registry", "GET", "/v2/team/%2e%2e/app/manifests/1", invalid),
        ("registry", "GET", "/v2/team%2Fapp/manifests/1", invalid),
        ("registry", "GET", "/v2//team/app/manifests/1", invalid),
        ("registry", "GET", "/v2/team/app/manifests/1#f", invalid),
        ("registry", "GET", "/v2/Team/app/manifests/1", invalid),
        ("registry", "GET", "/v2/team\\app/manifests/1", invalid),
        ("registry", "GET", "/v2/team/app/nothing/here", invalid),
        ("registry", "GET", "/v3/team/app/manifests/1", invalid),
        ("registry", "POST", "/v2/x/blobs/uploads/?mount=\(d)", invalid),
        ("registry", "POST", "/v2/x/blobs/uploads/?mount=\(d)&from=a&from=b", invalid),
        ("registry", "GET", "http://evil.example/v2/", invalid),
        ("registry", "GET", "/v2/team/app/manifests/1?a=1;b=2", invalid),
        ("registry", "GET", "/v2/team/app/manifests/lat%65st", invalid),
        ("registry", "PATCH", "/v2/team/app/manifests/1", invalid),
        ("registry", "GET", "/v2/team/app/blobs/uploads", invalid),
        ("registry", "GET", "/v2/_catalog/x", invalid),
        ("wiki", "GET", "/wiki/Home", "200 wiki-read|200 wiki-edit|200 wiki-read|200 wiki-edit|401 default-deny"),
        ("wiki", "POST", "/wiki/Home", "403 wiki-read|200 wiki-edit|403 wiki-read|200 wiki-edit|401 default-deny"),
        ("wiki", "GET", "/assets/app.css", "200 public-assets|200 public-assets|200 public-assets|200 public-assets|200 public-assets"),
        ("wiki", "DELETE", "/assets/app.css", "403 public-assets|403 public-assets|403 public-assets|403 public-assets|401 public-assets"),
        ("wiki", "GET", "/other", "403 default-deny|403 default-deny|403 default-deny|403 default-deny|401 default-deny"),
        ("wiki", "GET", "/wiki/../admin", invalid),
        ("wiki", "GET", "/%77iki/x", "200 wiki-read|200 wiki-edit|200 wiki-read|200 wiki-edit|401 default-deny"),
    ]

    static let passwords = ["admin": "admin-pw", "pusher": "pusher-pw", "reader": "reader-pw", "mallory": "mallory-pw"]

    static func makeApplication(directory: URL) throws -> some ApplicationProtocol {
        var users = ""
        for (user, password) in passwords.sorted(by: { $0.key < $1.key }) {
            users += "\(user):{PLAIN}\(password)\n"
        }
        try Data(users.utf8).write(to: directory.appendingPathComponent("htpasswd"))
        try Data("registry-admins: admin\npushers: pusher mallory\n".utf8).write(to: directory.appendingPathComponent("htgroups"))
        var configuration = try Configuration.parse(yaml: yaml, baseDirectory: directory.path)
        configuration.listen = .tcp(host: "127.0.0.1", port: 0)
        var logger = Logger(label: "table")
        logger.logLevel = .critical
        return try buildApplication(configuration: configuration, logger: logger)
    }

    @Test func everyRowDecidesExactly() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-table-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let decisions = try await Self.makeApplication(directory: directory).test(.router) { client in
            var count = 0
            for (policy, method, uri, expectations) in Self.rows {
                let columns = expectations.split(separator: "|")
                try #require(columns.count == Self.requesters.count, "\(uri)")
                for (requester, expectation) in zip(Self.requesters, columns) {
                    let parts = expectation.split(separator: " ")
                    let status = Int(parts[0])!
                    let rule = String(parts[1])
                    var headers = HTTPFields()
                    if let requester {
                        headers[.authorization] = "Basic " + Data("\(requester):\(Self.passwords[requester]!)".utf8).base64EncodedString()
                    }
                    headers[HTTPField.Name("X-Original-Method")!] = method
                    headers[HTTPField.Name("X-Original-URI")!] = uri
                    let path = policy == "registry" ? "/auth" : "/auth/\(policy)"
                    let who = requester ?? "anonymous"
                    for explain in [false, true] {
                        // The hot path (rule index) and the explain path (full trace) must agree.
                        let response = try await client.execute(uri: explain ? path + "?explain" : path, method: .get, headers: headers)
                        let context = "\(who) \(method) \(uri) explain=\(explain)"
                        #expect(response.status.code == status, "\(context)")
                        #expect(response.headers[HTTPField.Name("X-Auth-Rule")!] == rule, "\(context)")
                        let decision: String =
                            switch status {
                            case 200: "allow"
                            case 401: "challenge"
                            default: "deny"
                            }
                        #expect(response.headers[HTTPField.Name("X-Auth-Decision")!] == decision, "\(context)")
                        #expect(response.headers[HTTPField.Name("X-Auth-Reason")!]?.isEmpty == false, "\(context)")
                        let expectUser = status == 200 && requester != nil
                        #expect(response.headers[HTTPField.Name("X-Auth-User")!] == (expectUser ? requester : nil), "\(context)")
                        #expect((response.headers[HTTPField.Name("X-Auth-Backend")!] != nil) == expectUser, "\(context)")
                        #expect((response.headers[HTTPField.Name("X-Auth-Groups")!] != nil) == expectUser, "\(context)")
                        #expect(
                            response.headers[values: .wwwAuthenticate] == (status == 401 ? [#"Basic realm="Registry", charset="UTF-8""#] : []),
                            "\(context)"
                        )
                        #expect(explain || response.body.readableBytes == 0, "\(context)")
                    }
                    count += 1
                }
            }
            return count
        }
        #expect(decisions >= 300)
    }
}
