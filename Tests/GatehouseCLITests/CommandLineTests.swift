// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
import GatehouseTestSupport
import Testing

/// The `gatehouse` binary as an operator runs it: output and exit codes.
@Suite("gatehouse command line")
struct CommandLineTests {
    struct Result {
        let status: Int32
        let output: String
        let error: String
    }

    /// The binary next to the test bundle, or `GATEHOUSE_BIN`.
    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["GATEHOUSE_BIN"] { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("gatehouse")
    }

    static func run(_ arguments: [String], input: String = "", executable: URL = binary) throws -> Result {
        let child = try ChildProcess.run([executable.path] + arguments, input: input)
        return Result(status: child.status, output: child.output, error: child.error)
    }

    final class Files {
        let directory: URL
        var htpasswd: String { directory.appendingPathComponent("htpasswd").path }
        var htgroups: String { directory.appendingPathComponent("htgroups").path }
        var config: String { directory.appendingPathComponent("gatehouse.yaml").path }

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-cli-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let reader = try CommandLineTests.run(["hash", "--cost", "5", "reader"], input: "reader-pw\n")
            let pusher = try CommandLineTests.run(["hash", "--algorithm", "sha512", "pusher"], input: "pusher-pw")
            try Data((reader.output + pusher.output).utf8).write(to: URL(fileURLWithPath: htpasswd))
            try Data("pushers: pusher\n".utf8).write(to: URL(fileURLWithPath: htgroups))
        }

        deinit { try? FileManager.default.removeItem(at: directory) }
    }

    @Test(arguments: ["bcrypt", "sha512", "apr1"])
    func hashWritesLinesApacheVerifies(algorithm: String) throws {
        let files = try Files()
        let result = try Self.run(["hash", "--algorithm", algorithm, "alice"], input: "s3cret pässword\n")
        #expect(result.status == 0)
        #expect(result.output.hasPrefix("alice:"))
        try Data(result.output.utf8).write(to: URL(fileURLWithPath: files.htpasswd))
        let verify = try Self.run(["-vb", files.htpasswd, "alice", "s3cret pässword"], executable: URL(fileURLWithPath: "/usr/bin/htpasswd"))
        #expect(verify.status == 0, "\(verify.error)")
        let wrong = try Self.run(["-vb", files.htpasswd, "alice", "s3cret"], executable: URL(fileURLWithPath: "/usr/bin/htpasswd"))
        #expect(wrong.status != 0)
    }

    @Test func hashRefusesAnEmptyPassword() throws {
        let result = try Self.run(["hash", "alice"], input: "\n")
        #expect(result.status == 2)
        #expect(result.output.isEmpty)
        #expect(result.error.contains("empty"))
    }

    @Test(arguments: [
        (["--method", "PUT", "--uri", "/v2/team/app/manifests/1", "--user", "pusher", "--password-stdin"], "pusher-pw", Int32(0)),
        (["--method", "PUT", "--uri", "/v2/team/app/manifests/1", "--user", "reader", "--password-stdin"], "reader-pw", 1),
        (["--uri", "/v2/team/app/manifests/1", "--user", "reader", "--password-stdin"], "wrong", 1),
        (["--uri", "/v2/", "--anonymous"], "", 1),
        (["--method", "PUT", "--uri", "/v2/a/manifests/1", "--user", "pusher", "--assume-authenticated"], "", 0),
        (["--uri", "/v2/", "--user", "reader", "--assume-authenticated", "--policy", "nope"], "", 2),
        (["--uri", "/v2/", "--user", "reader"], "", 2),
        (["--uri", "/v2/", "--user", "reader", "--anonymous", "--assume-authenticated"], "", 2),
    ])
    func checkExitCodes(arguments: [String], input: String, status: Int32) throws {
        let files = try Files()
        let result = try Self.run(["check", "--htpasswd", files.htpasswd, "--groups", files.htgroups] + arguments, input: input)
        #expect(result.status == status, "\(result.output)\(result.error)")
    }

    @Test func checkPrintsTheTraceAndJSON() throws {
        let files = try Files()
        let base = ["check", "--htpasswd", files.htpasswd, "--groups", files.htgroups, "--method", "PUT", "--uri", "/v2/team/app/manifests/1", "--user", "reader", "--password-stdin"]
        let text = try Self.run(base, input: "reader-pw")
        #expect(text.output.contains("decision:   deny (403)"))
        #expect(text.output.contains("registry#1  skipped: not about this requester"))
        #expect(text.output.contains("registry#2  matched: does not allow push"))
        #expect(!text.output.contains("reader-pw"))
        let json = try Self.run(base + ["--json"], input: "reader-pw")
        let object = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        #expect(object?["decision"] as? String == "deny")
        #expect(object?["rule"] as? String == "registry#2")
        #expect(object?["action"] as? String == "push")
    }

    @Test func configCheckListsEveryError() throws {
        let files = try Files()
        try Data("""
            listen: nowhere
            backends:
              - {name: local, type: htpasswd, file: \(files.htpasswd)}
            policies:
              registry:
                type: registry
                rules:
                  - {users: ["*"], allow: [pul]}
                  - {groups: [x], allow: [pull], colour: blue}
            """.utf8).write(to: URL(fileURLWithPath: files.config))
        let result = try Self.run(["config", "check", "--config", files.config])
        #expect(result.status == 1)
        #expect(result.error.contains("line 1: listen:"))
        #expect(result.error.contains("line 8: policies.registry.rules[1].allow:"))
        #expect(result.error.contains("line 9: policies.registry.rules[2].colour: unknown key"))
    }

    @Test func configCheckAcceptsAGoodFile() throws {
        let files = try Files()
        try Data("""
            backends:
              - {name: local, type: htpasswd, file: htpasswd, groups_file: htgroups}
            policies:
              registry:
                type: registry
                rules:
                  - {groups: [pushers], allow: [pull, push]}
            """.utf8).write(to: URL(fileURLWithPath: files.config))
        let result = try Self.run(["config", "check", "--config", files.config])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("ok"))
        let check = try Self.run(["check", "--config", files.config, "--method", "PUT", "--uri", "/v2/x/manifests/1", "--user", "pusher", "--password-stdin"], input: "pusher-pw")
        #expect(check.status == 0, "\(check.output)")
    }

    @Test func serveRefusesABrokenConfigWithExitCode2() throws {
        let files = try Files()
        try Data("listen: [\n".utf8).write(to: URL(fileURLWithPath: files.config))
        let result = try Self.run(["serve", "--config", files.config])
        #expect(result.status == 2)
        #expect(!result.error.isEmpty)
    }
}
