// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
import GatehouseTestSupport
import Testing

/// Runs a tool that ships with Debian (htpasswd, openssl, mkpasswd, slappasswd) and returns its
/// standard output without the final newline.
func tool(_ arguments: [String], input: String? = nil) throws -> String {
    let result = try ChildProcess.run(arguments, input: input ?? "")
    guard result.status == 0 else { throw ToolFailed(arguments: arguments, status: result.status) }
    var text = result.output
    while text.hasSuffix("\n") { text.removeLast() }
    return text
}

struct ToolFailed: Error, CustomStringConvertible {
    let arguments: [String]
    let status: Int32
    var description: String { "\(arguments.joined(separator: " ")) exited \(status)" }
}

/// A fresh directory under the system temp directory, removed by the caller.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func write(_ text: String, to url: URL) throws {
    try Data(text.utf8).write(to: url)
}
