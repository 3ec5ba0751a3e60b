// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Glibc

/// A real directory server started by `Tests/Fixtures/slapd.sh` or `samba-ad.sh`, described by
/// the `env` file the script writes.
final class DirectoryFixture: @unchecked Sendable {
    let directory: URL
    let script: String
    let env: [String: String]

    static var repositoryRoot: URL {
        // Tests/GatehouseCoreTests/Support/DirectoryFixture.swift → the repository.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Starts the server into a fresh directory.
    init(script: String, arguments: [String] = []) throws {
        self.script = Self.repositoryRoot.appendingPathComponent("Tests/Fixtures/\(script)").path
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-\(script)-\(UUID().uuidString.prefix(8))")
        try Self.start(script: self.script, directory: directory, arguments: arguments)
        env = try Self.readEnv(directory.appendingPathComponent("env"))
    }

    /// Runs the script with `system(3)`: the daemons it leaves behind inherit its output, and
    /// Foundation's Process was seen to wait forever for such a child on Linux.
    private static func start(script: String, directory: URL, arguments: [String]) throws {
        let log = directory.path + ".log"
        let command = (["bash", script, "start", directory.path] + arguments).map(shellQuote).joined(separator: " ")
        let status = system("\(command) > \(shellQuote(log)) 2>&1 < /dev/null")
        guard status == 0 else {
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw ToolFailed(arguments: ["\(script) start", output], status: status)
        }
    }

    static func shellQuote(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    static func readEnv(_ url: URL) throws -> [String: String] {
        var values: [String: String] = [:]
        for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return values
    }

    subscript(key: String) -> String { env[key] ?? "" }

    func stop() {
        _ = system("bash \(Self.shellQuote(script)) stop \(Self.shellQuote(directory.path)) > /dev/null 2>&1 < /dev/null")
    }

    /// Starts it again in the same directory (same data, same ports where possible).
    func restart() throws -> DirectoryFixture {
        try DirectoryFixture(existing: directory, script: script)
    }

    private init(existing: URL, script: String) throws {
        self.script = script
        directory = existing
        try Self.start(script: script, directory: existing, arguments: [])
        env = try Self.readEnv(existing.appendingPathComponent("env"))
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// One server per script for the whole test process, started on first use and stopped at exit:
/// a slapd shared by the LDAP suite, and the Samba AD DC, which needs the standard ports.
enum SharedFixture {
    nonisolated(unsafe) private static var fixtures: [String: DirectoryFixture] = [:]
    private static let lock = NSLock()

    static func get(_ script: String) throws -> DirectoryFixture {
        lock.lock()
        defer { lock.unlock() }
        if let fixture = fixtures[script] { return fixture }
        let started = try DirectoryFixture(script: script)
        if fixtures.isEmpty { atexit { SharedFixture.stopAll() } }
        fixtures[script] = started
        return started
    }

    private static func stopAll() {
        for fixture in fixtures.values { fixture.stop() }
    }
}

enum SharedSlapd {
    static func get() throws -> DirectoryFixture { try SharedFixture.get("slapd.sh") }
}

enum SharedActiveDirectory {
    static func get() throws -> DirectoryFixture { try SharedFixture.get("samba-ad.sh") }
}
