// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// A problem found in one line of an htpasswd or htgroups file. The line is skipped; the rest of
/// the file still serves.
public struct FileDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let line: Int
    public let message: String

    public var description: String { "\(path):\(line): \(message)" }
}

extension String {
    /// The file's lines without their terminators; `\r\n` files read the same as `\n` files.
    var fileLines: [Substring] {
        // "\r\n" is a single Character in Swift: split on both spellings.
        split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    }

    /// True when the string contains a C0 control character or DEL, which no name in our files may.
    var containsControlCharacter: Bool {
        unicodeScalars.contains { $0.properties.generalCategory == .control }
    }
}
