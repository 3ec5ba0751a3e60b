// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// The parsed contents of an Apache/nginx htpasswd file: `user:hash[:comment]` per line.
///
/// `#` comments and blank lines are skipped. A malformed line is reported in ``diagnostics``
/// and skipped; a line whose hash nothing can verify keeps its user but locks the account, so
/// that a later backend cannot answer for a user this file claims.
public struct HtpasswdFile: Sendable {
    /// Users and their hashes; the first line for a user wins, as in Apache and nginx.
    public let entries: [String: PasswordHash]
    /// Lines that were skipped or locked, with the reason.
    public let diagnostics: [FileDiagnostic]

    /// Parses the text of an htpasswd file; `path` only labels diagnostics.
    public init(parsing text: String, path: String) {
        var entries: [String: PasswordHash] = [:]
        var diagnostics: [FileDiagnostic] = []
        for (offset, text) in text.fileLines.enumerated() {
            let number = offset + 1
            // By scalar, as nginx and Apache read by byte: a combining mark after `:` or `#`
            // would otherwise hide the delimiter inside one Character.
            let line = text.unicodeScalars
            let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
            if trimmed.isEmpty || trimmed.first == "#" { continue }
            guard let colon = line.firstIndex(of: ":") else {
                diagnostics.append(FileDiagnostic(path: path, line: number, message: "no ':' between user and hash; line skipped"))
                continue
            }
            let user = String(line[..<colon])
            let rest = line[line.index(after: colon)...]
            let field = String(rest.prefix(while: { $0 != ":" }))
            guard !user.isEmpty, !user.containsControlCharacter else {
                diagnostics.append(FileDiagnostic(path: path, line: number, message: "empty user name or control character; line skipped"))
                continue
            }
            guard entries[user] == nil else {
                diagnostics.append(FileDiagnostic(path: path, line: number, message: "user \"\(user)\" repeated; the first line wins"))
                continue
            }
            do {
                entries[user] = try PasswordHash(parsing: field)
            } catch {
                diagnostics.append(FileDiagnostic(path: path, line: number, message: "\(error); user \"\(user)\" is locked"))
                entries[user] = .locked
            }
        }
        self.entries = entries
        self.diagnostics = diagnostics
    }

    /// The hash that an unknown user is verified against: one of the most common cost class,
    /// so that "no such user" takes as long as "wrong password" for most users.
    var timingDummy: PasswordHash? {
        var counts: [String: Int] = [:]
        var representative: [String: PasswordHash] = [:]
        for hash in entries.values where hash != .locked {
            counts[hash.costClass, default: 0] += 1
            if representative[hash.costClass] == nil { representative[hash.costClass] = hash }
        }
        guard let common = counts.max(by: { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }) else { return nil }
        return representative[common.key]
    }
}
