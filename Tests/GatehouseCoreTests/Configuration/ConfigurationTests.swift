// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
import GatehouseCore
import Testing

@Suite("Configuration")
struct ConfigurationTests {
    static func withFiles<T>(_ body: (URL) throws -> T) throws -> T {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write("alice:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\n", to: directory.appendingPathComponent("htpasswd"))
        try write("pushers: alice\n", to: directory.appendingPathComponent("htgroups"))
        return try body(directory)
    }

    static let specExample = """
        listen: 127.0.0.1:9180
        realm: Registry
        trusted_proxies: [127.0.0.1/32, "::1/128"]
        default_policy: registry
        backends:
          - name: local
            type: htpasswd
            file: htpasswd
            groups_file: htgroups
        cache: {ttl: 5m, negative_ttl: 10s, stale_grace: 15m, max_entries: 100000}
        lockout: {max_failures: 10, window: 5m}
        log: {level: info, format: text}
        policies:
          registry:
            type: registry
            rules:
              - {groups: [registry-admins], allow: [pull, push, delete, catalog]}
              - {users: ["*"], repositories: ["${user}/*"], allow: [pull, push]}
              - {groups: [pushers], allow: [pull, push]}
              - {users: ["*"], allow: [pull]}
              - {anonymous: true, repositories: ["public/*"], allow: [pull]}
          wiki:
            type: http
            rules:
              - {users: ["*"], methods: [GET, HEAD], paths: ["/wiki/*"]}
        """

    @Test func specExampleLoads() throws {
        try Self.withFiles { directory in
            let configuration = try Configuration.parse(yaml: Self.specExample, baseDirectory: directory.path)
            #expect(configuration.listen == .tcp(host: "127.0.0.1", port: 9180))
            #expect(configuration.defaultPolicy == "registry")
            #expect(configuration.policies.map(\.name) == ["registry", "wiki"])
            #expect(configuration.policies[0].rules.count == 5)
            #expect(configuration.policies[0].rules[1].label == "registry#2")
            #expect(configuration.cache.ttl == .seconds(300))
            #expect(configuration.lockout.window == .seconds(300))
            #expect(configuration.backends == [.htpasswd(name: "local", file: directory.path + "/htpasswd", groupsFile: directory.path + "/htgroups")])
        }
    }

    @Test func operationsKeys() throws {
        try Self.withFiles { directory in
            let yaml = Self.specExample.replacingOccurrences(of: "listen: 127.0.0.1:9180", with: "listen: unix:/run/gatehouse/gatehouse.sock\nlisten_mode: \"0640\"\nlisten_group: www-data\nidle_timeout: 2m")
            let configuration = try Configuration.parse(yaml: yaml, baseDirectory: directory.path)
            #expect(configuration.listen == .unix(path: "/run/gatehouse/gatehouse.sock"))
            #expect(configuration.listenMode == 0o640)
            #expect(configuration.listenGroup == "www-data")
            #expect(configuration.idleTimeout == .seconds(120))
            #expect(configuration.referencedFiles == [directory.path + "/htpasswd", directory.path + "/htgroups"])
            let defaults = try Configuration.parse(yaml: Self.specExample, baseDirectory: directory.path)
            #expect(defaults.listenMode == 0o660)
            #expect(defaults.listenGroup == nil)
            #expect(defaults.idleTimeout == .seconds(75))
        }
    }

    @Test func watchedFilesNoticeEditsReplacementsAndRemovals() throws {
        try Self.withFiles { directory in
            let file = directory.appendingPathComponent("htpasswd").path
            let missing = directory.appendingPathComponent("later").path
            var watched = WatchedFiles(paths: [file, missing, file])
            #expect(watched.paths == [file, missing], "each file once")
            let changed1 = watched.refresh()
            #expect(!changed1, "nothing changed yet")
            try Data("alice:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\n".utf8).write(to: URL(fileURLWithPath: file))
            let rewritten = watched.refresh()
            #expect(!rewritten, "the same bytes written again are no change")
            try Data("alice:{PLAIN}x\n".utf8).write(to: URL(fileURLWithPath: file))
            let changed2 = watched.refresh()
            #expect(changed2, "an edit in place")
            let changed3 = watched.refresh()
            #expect(!changed3, "one edit is reported once")
            try Data("b".utf8).write(to: URL(fileURLWithPath: missing))
            let changed4 = watched.refresh()
            #expect(changed4, "a file that appears")
            try FileManager.default.removeItem(atPath: missing)
            let changed5 = watched.refresh()
            #expect(changed5, "a file that vanishes")
            let replacement = directory.appendingPathComponent("htpasswd.new").path
            try Data("alice:{PLAIN}y\n".utf8).write(to: URL(fileURLWithPath: replacement))
            #expect(rename(replacement, file) == 0)
            let changed6 = watched.refresh()
            #expect(changed6, "a file replaced by rename, as editors and config management do")
            try Data([0xFF, 0xFE, 0x01]).write(to: URL(fileURLWithPath: file))
            let changed7 = watched.refresh()
            #expect(changed7, "an edit that leaves the file invalid UTF-8")
            try Data([0xFF, 0xFE, 0x02]).write(to: URL(fileURLWithPath: file))
            let changed8 = watched.refresh()
            #expect(changed8, "and another one: bytes are compared, not text")
            #expect(WatchedFiles.unique([file, missing, file]) == watched.paths)
        }
    }

    @Test func everyErrorIsReportedWithKeyAndLine() throws {
        let yaml = """
            listen: somewhere
            realms: typo
            backends:
              - {name: local, type: htpasswd, file: /nonexistent/htpasswd}
              - {name: local, type: radius}
            cache: {ttl: five minutes}
            default_policy: nope
            policies:
              registry:
                type: registry
                rules:
                  - {allow: [pull]}
                  - {users: ["*"], allow: [pul]}
                  - {users: ["*"], repositories: ["a/***"], allow: [pull]}
                  - {users: ["*"], paths: ["/x"], allow: [pull]}
                  - {users: ["*"]}
              web:
                type: http
                rules:
                  - {users: ["*"], methods: [get]}
            """
        let errors = try #require(throws: ConfigurationErrors.self) { try Configuration.parse(yaml: yaml) }.errors
        let found = Set(errors.map { "\($0.line ?? 0) \($0.key)" })
        let expected: Set<String> = [
            "1 listen", "2 realms", "4 backends[1].file", "5 backends[2].type", "6 cache.ttl", "7 default_policy",
            "12 policies.registry.rules[1]", "13 policies.registry.rules[2].allow", "14 policies.registry.rules[3].repositories[1]",
            "15 policies.registry.rules[4].paths", "16 policies.registry.rules[5].allow", "20 policies.web.rules[1].methods",
        ]
        #expect(found == expected, "\(errors)")
        #expect(errors.allSatisfy { !$0.message.isEmpty })
    }

    /// One case per class of error.
    @Test(arguments: [
        ("", "backends"),
        ("colour: blue", "colour"),
        ("realm: a\nrealm: b", ""),  // Yams refuses repeated keys itself, naming them
        ("realm: [a]", "realm"),
        ("realm: \"\"", "realm"),
        ("listen: somewhere", "listen"),
        ("backends: [{name: a, type: htpasswd}]", "backends[1].file"),
        ("backends: [{type: htpasswd, file: /etc/hostname}]", "backends[1].name"),
        ("backends: [{name: 'a b', type: htpasswd, file: /etc/hostname}]", "backends[1].name"),
        ("backends: [{name: a, type: htpasswd, file: /etc/hostname}, {name: a, type: htpasswd, file: /etc/hostname}]", "backends[2].name"),
        ("backends: [{name: a, type: kerberos}]", "backends[1].type"),
        ("backends: [{name: a, file: x}]", "backends[1].type"),
        ("backends: [{name: a, type: htpasswd, file: /nonexistent/x}]", "backends[1].file"),
        ("backends: [{name: a, type: htpasswd, file: /etc/hostname, groups_file: /nonexistent/g}]", "backends[1].groups_file"),
        ("backends: {name: a}", "backends"),
        ("cache: {ttl: 5 minutes}", "cache.ttl"),
        ("cache: {ttl: -5s}", "cache.ttl"),
        ("cache: {max_entries: lots}", "cache.max_entries"),
        ("lockout: {window: 5}", "lockout.window"),
        ("log: {level: loud}", "log.level"),
        ("log: {denials_only: maybe}", "log.denials_only"),
        ("default_policy: nope\npolicies: {registry: {type: registry, rules: []}}", "default_policy"),
        ("policies: {'a/b': {type: registry, rules: []}}", "policies.a/b"),
        ("policies: {registry: {rules: []}}", "policies.registry.type"),
        ("policies: {registry: {type: ldap, rules: []}}", "policies.registry.type"),
        ("policies: {registry: {type: registry, rules: [{allow: [pull]}]}}", "policies.registry.rules[1]"),
        ("policies: {registry: {type: registry, rules: [{users: ['*'], allow: [fly]}]}}", "policies.registry.rules[1].allow"),
        ("policies: {registry: {type: registry, rules: [{users: ['*'], allow: [login]}]}}", "policies.registry.rules[1].allow"),
        ("policies: {registry: {type: registry, rules: [{users: ['*']}]}}", "policies.registry.rules[1].allow"),
        ("policies: {registry: {type: registry, rules: [{users: ['*'], allow: [], repositories: ['a/***']}]}}", "policies.registry.rules[1].repositories[1]"),
        ("policies: {registry: {type: registry, rules: [{users: ['*'], allow: [], repositories: ['${who}/*']}]}}", "policies.registry.rules[1].repositories[1]"),
        ("policies: {registry: {type: registry, rules: [{users: ['*'], allow: [], repositories: []}]}}", "policies.registry.rules[1].repositories"),
        ("policies: {registry: {type: registry, rules: [{users: ['*'], allow: [], paths: ['/x']}]}}", "policies.registry.rules[1].paths"),
        ("policies: {web: {type: http, rules: [{users: ['*'], methods: [get]}]}}", "policies.web.rules[1].methods"),
        ("policies: {web: {type: http, rules: [{users: ['*'], paths: ['wiki/*']}]}}", "policies.web.rules[1].paths[1]"),
        ("policies: {web: {type: http, rules: [{users: ['*'], allow: [pull]}]}}", "policies.web.rules[1].allow"),
        ("policies: {web: {type: http, rules: [{users: ['*'], anonymous: yes-please}]}}", "policies.web.rules[1].anonymous"),
        ("backends: []\npolicies: {}", "backends"),
        ("listen: [1, 2]", "listen"),
        ("policies:\n  registry:\n    type: registry\n", "policies.registry.rules"),
        ("log: {format: xml}", "log.format"),
        ("listen_mode: \"0999\"", "listen_mode"),
        ("listen_mode: rw-rw----", "listen_mode"),
        ("listen_group: \"a:b\"", "listen_group"),
        ("backends: [{name: a, type: htpasswd, file: /tmp}]", "backends[1].file"),
        ("backends: [{name: a, type: htpasswd, file: \"\"}]", "backends[1].file"),
        ("listen_group: no-such-group-here", "listen_group"),
        ("idle_timeout: 500ms", "idle_timeout"),
        ("idle_timeout: forever", "idle_timeout"),
        ("lockout: {max_failures: -1}", "lockout.max_failures"),
        ("trusted_proxies: [10.0.0.0/33]", "trusted_proxies[1]"),
        ("policies:\n  a: {type: registry, rules: []}\n  b: {type: registry, rules: []}", "default_policy"),
        ("not: [valid", ""),
    ])
    func brokenConfigurationsNameTheKey(yaml: String, key: String) {
        let errors = (try? #require(throws: ConfigurationErrors.self) { try Configuration.parse(yaml: yaml) })?.errors ?? []
        #expect(errors.contains { $0.key == key }, "\(errors)")
    }

    /// Repeated keys are refused by Yams before our reader runs; its message quoted the whole
    /// file (values included) and, with a non-scalar key among them, named a different line
    /// from one parse to the next (fuzz finding yaml-duplicate-keys).
    @Test func repeatedKeysNameTheKeysButNotTheFile() throws {
        let plain = try #require(throws: ConfigurationErrors.self) {
            try Configuration.parse(yaml: "realm: a\nlisten: 127.0.0.1:9180\nrealm: top-secret-value\n")
        }.errors
        #expect(plain.count == 1)
        #expect(plain.first?.line == 1, "the first occurrence")
        #expect(plain.first?.message == "repeated key in one mapping: \"realm\" (each key may appear once)")
        #expect(!plain.description.contains("top-secret-value"))

        let finding = "b: 1\n? [a]\n: x\nb: 2\n? [a]\n: y\nc: 1\nc: 2\n"
        var seen: Set<String> = []
        for _ in 0..<40 {
            let errors = try #require(throws: ConfigurationErrors.self) { try Configuration.parse(yaml: finding) }.errors
            seen.insert(errors.map(\.description).joined(separator: "\n"))
        }
        #expect(seen == ["repeated keys in one mapping: \"b\", \"c\", (a key that is not a string) (each key may appear once)"])

        let tagged = try #require(throws: ConfigurationErrors.self) {
            try Configuration.parse(yaml: "1: x\n1: y\n\"1\": a\n\"1\": b\n")
        }.errors
        #expect(tagged.first?.line == nil, "1 and \"1\" tie in Yams' order, so no line is named")
    }

    @Test(arguments: [("500ms", 500), ("10s", 10_000), ("5m", 300_000), ("1h", 3_600_000)])
    func durations(text: String, milliseconds: Int64) throws {
        try Self.withFiles { directory in
            let yaml = "cache: {ttl: \(text)}\nbackends: [{name: l, type: htpasswd, file: htpasswd}]\npolicies: {registry: {type: registry, rules: []}}"
            let configuration = try Configuration.parse(yaml: yaml, baseDirectory: directory.path)
            #expect(configuration.cache.ttl == .milliseconds(milliseconds))
        }
    }

    @Test(arguments: [
        ("127.0.0.1:9180", ListenAddress.tcp(host: "127.0.0.1", port: 9180)),
        ("[::1]:80", .tcp(host: "::1", port: 80)),
        ("0.0.0.0:0", .tcp(host: "0.0.0.0", port: 0)),
        ("unix:/run/gatehouse.sock", .unix(path: "/run/gatehouse.sock")),
    ])
    func listenAddresses(text: String, expected: ListenAddress) {
        #expect(ListenAddress(parsing: text) == expected)
    }

    @Test(arguments: ["9180", "host:", ":80", "::1:80", "h:70000", "unix:relative", "[[x]:1", "[a b]:80", "a b:80", "[example.org]:80", "ho/st:80"])
    func badListenAddresses(text: String) {
        #expect(ListenAddress(parsing: text) == nil)
    }

    @Test func networks() throws {
        let v4 = try #require(IPNetwork(parsing: "10.1.0.0/16"))
        #expect(v4.contains("10.1.200.3"))
        #expect(!v4.contains("10.2.0.1"))
        #expect(v4.contains("::ffff:10.1.0.9"))
        let v6 = try #require(IPNetwork(parsing: "fd00::/8"))
        #expect(v6.contains("fd12::1"))
        #expect(!v6.contains("10.1.0.1"))
        #expect(IPNetwork(parsing: "127.0.0.1")!.contains("127.0.0.1"))
        #expect(IPNetwork(parsing: "nonsense") == nil)
    }
}
