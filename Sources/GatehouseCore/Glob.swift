// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// A repository or path pattern: `*` matches within one `/`-separated segment, `**` across
/// segments, and `${user}` stands for the requesting user's name taken literally (a user
/// called `*` gets no wildcard).
///
/// ```swift
/// let glob = try Glob("${user}/**")
/// glob.matches("alice/tools/app", user: "alice")  // true
/// ```
public struct Glob: Sendable, Equatable, CustomStringConvertible {
    enum Token: Equatable, Sendable {
        case literal([UInt8])
        case star
        case doubleStar
        case user
    }

    /// The pattern as written in the configuration.
    public let description: String
    let tokens: [Token]

    /// Compiles a pattern; throws a sentence naming what is wrong.
    public init(_ pattern: String) throws(GlobError) {
        guard !pattern.isEmpty else { throw GlobError("an empty pattern matches nothing; leave the key out to match everywhere") }
        var tokens: [Token] = []
        var literal: [UInt8] = []
        let bytes = Array(pattern.utf8)
        var index = 0
        func flush() {
            if !literal.isEmpty { tokens.append(.literal(literal)) }
            literal = []
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "*") {
                flush()
                var run = 0
                while index < bytes.count, bytes[index] == UInt8(ascii: "*") {
                    run += 1
                    index += 1
                }
                guard run <= 2 else { throw GlobError("\"\(pattern)\" has more than two '*' in a row") }
                tokens.append(run == 2 ? .doubleStar : .star)
                continue
            }
            if byte == UInt8(ascii: "$") {
                let variable = Array("${user}".utf8)
                guard bytes[index...].starts(with: variable) else {
                    throw GlobError("\"\(pattern)\" uses '$' outside of ${user}, the only variable")
                }
                flush()
                tokens.append(.user)
                index += variable.count
                continue
            }
            guard byte >= 0x20, byte != 0x7F else { throw GlobError("\"\(pattern)\" contains a control character") }
            literal.append(byte)
            index += 1
        }
        flush()
        self.description = pattern
        self.tokens = tokens
    }

    /// Whether `text` matches, with `${user}` standing for `user` (nil: `${user}` matches nothing).
    public func matches(_ text: String, user: String?) -> Bool {
        var expanded: [Token] = []
        for token in tokens {
            if case .user = token {
                guard let user, !user.isEmpty else { return false }
                expanded.append(.literal(Array(user.utf8)))
            } else {
                expanded.append(token)
            }
        }
        var matcher = Matcher(tokens: expanded, text: Array(text.utf8))
        return matcher.match(token: 0, position: 0)
    }

    /// Backtracking with memory of failed states: O(tokens × text) at worst.
    private struct Matcher {
        let tokens: [Token]
        let text: [UInt8]
        var failed: Set<Int> = []

        mutating func match(token: Int, position: Int) -> Bool {
            if token == tokens.count { return position == text.count }
            let key = token &* (text.count + 1) &+ position
            if failed.contains(key) { return false }
            let result: Bool
            switch tokens[token] {
            case .literal(let bytes):
                result = text[position...].starts(with: bytes) && match(token: token + 1, position: position + bytes.count)
            case .star, .doubleStar:
                let crossesSegments = tokens[token] == .doubleStar
                var end = position
                var found = false
                while true {
                    if match(token: token + 1, position: end) {
                        found = true
                        break
                    }
                    guard end < text.count, crossesSegments || text[end] != UInt8(ascii: "/") else { break }
                    end += 1
                }
                result = found
            case .user:
                result = false
            }
            if !result { failed.insert(key) }
            return result
        }
    }
}

/// Why a pattern was refused.
public struct GlobError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
