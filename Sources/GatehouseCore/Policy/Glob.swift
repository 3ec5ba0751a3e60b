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
    private let wildcards: Int

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
        self.wildcards = tokens.count { $0 == .star || $0 == .doubleStar }
    }

    public static func == (lhs: Glob, rhs: Glob) -> Bool { lhs.tokens == rhs.tokens }

    /// Whether `text` matches, with `${user}` standing for `user` (nil: `${user}` matches nothing).
    /// `foldingCase` compares ASCII letters case-insensitively (how IIS or Express may read a
    /// path). Allocates nothing unless the pattern has two or more wildcards and must backtrack.
    public func matches(_ text: String, user: String?, foldingCase: Bool = false) -> Bool {
        var text = text
        var user = user ?? ""
        return text.withUTF8 { textBytes in
            user.withUTF8 { userBytes in
                var matcher = Matcher(tokens: tokens, text: textBytes, user: userBytes, memoize: wildcards > 1, foldingCase: foldingCase)
                return matcher.match(token: 0, position: 0)
            }
        }
    }

    /// Backtracking with memory of failed states: O(tokens × text) at worst.
    private struct Matcher {
        let tokens: [Token]
        let text: UnsafeBufferPointer<UInt8>
        let user: UnsafeBufferPointer<UInt8>
        let memoize: Bool
        let foldingCase: Bool
        var failed: Set<Int> = []

        init(tokens: [Token], text: UnsafeBufferPointer<UInt8>, user: UnsafeBufferPointer<UInt8>, memoize: Bool, foldingCase: Bool) {
            self.tokens = tokens
            self.text = text
            self.user = user
            self.memoize = memoize
            self.foldingCase = foldingCase
        }

        func hasPrefix(_ bytes: some Collection<UInt8>, at position: Int) -> Bool {
            guard text.count - position >= bytes.count else { return false }
            var index = position
            for byte in bytes {
                guard text[index] == byte || (foldingCase && Self.folded(text[index]) == Self.folded(byte)) else { return false }
                index += 1
            }
            return true
        }

        static func folded(_ byte: UInt8) -> UInt8 {
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
        }

        mutating func match(token: Int, position: Int) -> Bool {
            if token == tokens.count { return position == text.count }
            let key = token &* (text.count + 1) &+ position
            if memoize, failed.contains(key) { return false }
            let result: Bool
            switch tokens[token] {
            case .literal(let bytes):
                result = hasPrefix(bytes, at: position) && match(token: token + 1, position: position + bytes.count)
            case .user:
                // An empty or missing user never matches: `${user}/*` must not become `/*`.
                result = !user.isEmpty && hasPrefix(user, at: position) && match(token: token + 1, position: position + user.count)
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
            }
            if memoize, !result { failed.insert(key) }
            return result
        }
    }
}

/// Why a pattern was refused.
public struct GlobError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
