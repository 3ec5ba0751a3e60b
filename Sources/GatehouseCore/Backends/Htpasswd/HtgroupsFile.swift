// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// The parsed contents of an Apache `AuthGroupFile`: `group: user1 user2 …` per line.
///
/// A group may span several lines; its members are the union. Names are Swift strings, so
/// they compare by canonical equivalence (`\u{212A}elly`, with a Kelvin sign, is `Kelly`);
/// Apache compares bytes. The htpasswd backend asks for the groups of the name its password
/// file spells, so a look-alike login gets the groups of the entry it matched, no more.
public struct HtgroupsFile: Sendable {
    /// For each user, the groups that list it.
    public let groupsByUser: [String: Set<String>]
    /// Lines that were skipped, with the reason.
    public let diagnostics: [FileDiagnostic]

    /// An empty file: nobody is in any group.
    public init() {
        groupsByUser = [:]
        diagnostics = []
    }

    /// Parses the text of a group file; `path` only labels diagnostics.
    public init(parsing text: String, path: String) {
        var groupsByUser: [String: Set<String>] = [:]
        var diagnostics: [FileDiagnostic] = []
        for (offset, text) in text.fileLines.enumerated() {
            // By scalar, as Apache reads by byte: a combining mark after a space or `:` would
            // otherwise hide the delimiter inside one Character.
            let trimmed = text.unicodeScalars.drop(while: { $0 == " " || $0 == "\t" })
            if trimmed.isEmpty || trimmed.first == "#" { continue }
            guard let colon = trimmed.firstIndex(of: ":") else {
                diagnostics.append(FileDiagnostic(path: path, line: offset + 1, message: "no ':' after the group name; line skipped"))
                continue
            }
            let group = trimmed[..<colon].trimmingSpaces
            guard !group.isEmpty, !group.unicodeScalars.contains(" "), !group.unicodeScalars.contains("\t"), !group.containsControlCharacter else {
                diagnostics.append(FileDiagnostic(path: path, line: offset + 1, message: "invalid group name; line skipped"))
                continue
            }
            let members = trimmed[trimmed.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" })
            for member in members {
                let user = String(member)
                guard !user.containsControlCharacter else { continue }
                groupsByUser[user, default: []].insert(group)
            }
        }
        self.groupsByUser = groupsByUser
        self.diagnostics = diagnostics
    }

    /// The sorted groups of `user`.
    public func groups(of user: String) -> [String] {
        (groupsByUser[user] ?? []).sorted()
    }
}
