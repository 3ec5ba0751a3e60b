// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

// Fuzzes `HtpasswdFile(parsing:path:)` (and through it `PasswordHash(parsing:)`).
//
// Input: the text of an htpasswd file.
//
// Invariants (beyond not crashing):
// 1. Every entry's user is non-empty, has no ':' and no control character.
// 2. Differential: a reference reader that works on the file's Unicode scalars, the way nginx
//    and Apache work on its bytes (`user` is everything before the first ':' of a line, the
//    hash field runs to the next ':', `#` lines and blank lines are skipped, the first line for
//    a user wins), finds the same users, each with the hash that field parses to, and the same
//    diagnostics (line numbers).
// 3. Render → parse: writing the entries back as `user:hash` lines (the hash as the file
//    spells it; `{PLAIN}` keeps only a digest, so such entries are left out) and parsing again
//    gives the same entries and no diagnostic.
// 4. Every diagnostic's line number is a line of the file.
//
// Hash settings that make libxcrypt work for a long time on purpose (bcrypt cost above 4,
// sha-crypt with 10000 rounds or more, yescrypt/scrypt, SunMD5, sha1crypt) are skipped: one
// of them costs up to hours per input (`$2y$31$…`) and tells nothing about the parser.

import FuzzSupport
import GatehouseCore

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    warmUp(["alice:{PLAIN}x\nbob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n#c\n", "c:$1$salt$2vnaRpHa6Jxjz5n83ok8Z0\nd:x"], fuzz)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let file = text(data, size)
    // Known finding `grapheme` (see README): lines are read by Character, so ':', '#', space
    // or tab joined with a combining scalar is not seen where nginx and Apache see it.
    if isKnown("grapheme"), hasMergedDelimiter(file, [":", "#", " ", "\t"]) { return -1 }
    let lines = scalarLines(file)
    guard !lines.contains(where: isExpensive) else { return -1 }
    let parsed = HtpasswdFile(parsing: file, path: "fuzz")
    let lineCount = lines.count

    // 1.
    for user in parsed.entries.keys {
        invariant(!user.isEmpty, "an entry has an empty user")
        invariant(!user.unicodeScalars.contains(":"), "user \(shown(user)) contains ':'")
        invariant(!hasControl(user), "user \(shown(user)) contains a control character")
    }
    // 4.
    for diagnostic in parsed.diagnostics {
        invariant((1...lineCount).contains(diagnostic.line), "diagnostic on line \(diagnostic.line) of \(lineCount): \(diagnostic)")
    }
    // 2.
    let expected = reference(lines)
    invariant(Set(parsed.entries.keys) == Set(expected.entries.keys),
              "users \(parsed.entries.keys.sorted().map(shown).joined(separator: ", ")) but the reference reads \(expected.entries.keys.sorted().map(shown).joined(separator: ", "))")
    for (user, field) in expected.entries {
        let hash = (try? PasswordHash(parsing: string(field))) ?? .locked
        invariant(parsed.entries[user] == hash, "user \(shown(user)): \(String(describing: parsed.entries[user])), reference hash field \(shown(string(field)))")
    }
    invariant(parsed.diagnostics.map(\.line) == expected.diagnosticLines,
              "diagnostics on lines \(parsed.diagnostics.map(\.line)), reference \(expected.diagnosticLines)")
    // 3.
    var rendered = ""
    var renderedUsers: [String] = []
    for (user, hash) in parsed.entries.sorted(by: { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }) {
        guard let spelling = render(hash) else { continue }
        rendered += user + ":" + spelling + "\n"
        renderedUsers.append(user)
    }
    if isKnown("grapheme"), hasMergedDelimiter(rendered, [":", "#", " ", "\t"]) { return 0 }
    let again = HtpasswdFile(parsing: rendered, path: "rendered")
    invariant(again.diagnostics.isEmpty, "rendered file \(shown(rendered)) has diagnostics \(again.diagnostics)")
    invariant(again.entries.count == renderedUsers.count, "rendered \(renderedUsers.count) users, read back \(again.entries.count): \(shown(rendered))")
    for user in renderedUsers {
        invariant(again.entries[user] == parsed.entries[user], "user \(shown(user)) reads back as \(String(describing: again.entries[user])) from \(shown(rendered))")
    }
    return 0
}

/// How an htpasswd file spells `hash`; nil for `{PLAIN}`, of which only a digest is kept.
func render(_ hash: PasswordHash) -> String? {
    switch hash {
    case .crypt(let setting): setting
    case .apacheMD5(_, let full): full
    case .sha1(let digest): "{SHA}" + String(decoding: canonicalBase64(digest), as: UTF8.self)
    case .saltedSHA1(let digest, let salt): "{SSHA}" + String(decoding: canonicalBase64(digest + salt), as: UTF8.self)
    case .plain: nil
    case .locked: "!"
    }
}

struct Expected {
    var entries: [String: [Unicode.Scalar]] = [:]
    var diagnosticLines: [Int] = []
}

func reference(_ lines: [[Unicode.Scalar]]) -> Expected {
    var expected = Expected()
    for (offset, line) in lines.enumerated() {
        let number = offset + 1
        let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
        if trimmed.isEmpty || trimmed.first == "#" { continue }
        guard let colon = line.firstIndex(of: ":") else {
            expected.diagnosticLines.append(number)
            continue
        }
        let user = string(line[..<colon])
        let field = line[(colon + 1)...].prefix(while: { $0 != ":" })
        guard !user.isEmpty, !hasControl(user), expected.entries[user] == nil else {
            expected.diagnosticLines.append(number)
            continue
        }
        let fieldText = string(field)
        if (try? PasswordHash(parsing: fieldText)) == nil { expected.diagnosticLines.append(number) }
        expected.entries[user] = Array(field)
    }
    return expected
}

/// Whether a line's hash field asks libxcrypt for deliberate slowness.
func isExpensive(_ line: [Unicode.Scalar]) -> Bool {
    guard let colon = line.firstIndex(of: ":") else { return false }
    let field = string(line[(colon + 1)...].prefix(while: { $0 != ":" }))
    guard field.hasPrefix("$") else { return false }
    for slow in ["$y$", "$gy$", "$7$", "$sha1$", "$md5"] where field.hasPrefix(slow) { return true }
    if field.hasPrefix("$2") {
        // $2a$NN$, $2b$NN$, $2y$NN$, $2x$NN$, $2$NN$: only cost 04 (16 rounds) is cheap.
        let parts = field.split(separator: "$", omittingEmptySubsequences: false)
        return parts.count > 2 && parts[2] != "04"
    }
    if let range = field.firstRange(of: "rounds=") {
        let digits = field[range.upperBound...].prefix(while: { $0 != "$" })
        return digits.count > 4 || (Int(digits) ?? 0) >= 10_000
    }
    return false
}
