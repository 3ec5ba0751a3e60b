// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// Where tokens live: an SQLite file (one instance) or PostgreSQL (several instances behind one
/// nginx). Servers poll ``changeCount()`` once a second and reload the live tokens when it
/// moved, which is how a revocation anywhere reaches every instance within 2 s.
public protocol TokenStore: Sendable {
    /// Creates or upgrades the schema (versioned migrations). Idempotent; safe to race.
    func prepare() async throws
    func insert(_ token: AccessToken) async throws
    /// Every token, or `owner`'s (by backend), expired ones included, newest first.
    func list(owner: (user: String, backend: String)?) async throws -> [AccessToken]
    /// Removes one token; false when there was none with that id (and owner, when given).
    func revoke(id: String, owner: (user: String, backend: String)?) async throws -> Bool
    /// Removes every token of a user (any backend); how many went.
    func revokeAll(user: String) async throws -> Int
    /// A number that changes whenever a token is created or revoked.
    func changeCount() async throws -> Int64
    /// Tokens that are neither expired nor revoked.
    func liveTokens(now: Int64) async throws -> [AccessToken]
    /// Last-used times, written in batches.
    func recordUse(_ times: [String: Int64]) async throws
    func close() async
}

/// A `tokens.store` value: `sqlite:/path/to/file.db` or `postgres://user[:password]@host[:port]/database[?sslmode=…]`.
public enum TokenStoreLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresLocation)

    public static let defaultValue = "sqlite:/var/lib/gatehouse/tokens.db"

    public init(parsing text: String, baseDirectory: String = ".") throws(TokenStoreLocationError) {
        if text.hasPrefix("sqlite:") {
            var path = String(text.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path.removeFirst(2) }
            guard !path.isEmpty, !path.containsControlCharacter else { throw TokenStoreLocationError("sqlite: needs a file path") }
            self = .sqlite(path: path.hasPrefix("/") ? path : baseDirectory + "/" + path)
        } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(try PostgresLocation(parsing: text))
        } else {
            throw TokenStoreLocationError("\"\(Self.redacted(text))\" is neither sqlite:/path nor postgres://…")
        }
    }

    /// The location without a password, for logs and `config check`.
    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite:\(path)"
        case .postgres(let location): location.description
        }
    }

    private static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@") else { return text }
        return "…" + text[at...]
    }
}

/// A PostgreSQL connection target.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public enum TLSMode: String, Sendable {
        /// Plain TCP: loopback or a trusted network only.
        case disable
        /// TLS with the server's certificate verified against the system's (or `sslrootcert`'s) CAs and its name.
        case verifyFull = "verify-full"
    }

    public let host: String
    public let port: Int
    public let user: String
    public let password: String?
    public let database: String
    public let tls: TLSMode
    public let rootCertificate: String?

    public init(parsing text: String) throws(TokenStoreLocationError) {
        var rest = Substring(text)
        rest = rest.drop(while: { $0 != ":" }).dropFirst(3)
        var query: [String: String] = [:]
        if let mark = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: mark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                query[String(parts[0])] = parts.count == 2 ? Self.percentDecoded(parts[1]) : ""
            }
            rest = rest[..<mark]
        }
        guard let at = rest.lastIndex(of: "@") else { throw TokenStoreLocationError("postgres:// needs user@host/database") }
        let credentials = rest[..<at]
        let hostPart = rest[rest.index(after: at)...]
        let userAndPassword = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        user = Self.percentDecoded(userAndPassword[0])
        password = userAndPassword.count == 2 ? Self.percentDecoded(userAndPassword[1]) : nil
        guard let slash = hostPart.firstIndex(of: "/") else { throw TokenStoreLocationError("postgres:// needs /database after the host") }
        database = Self.percentDecoded(hostPart[hostPart.index(after: slash)...])
        let hostAndPort = hostPart[..<slash]
        if hostAndPort.hasPrefix("["), let close = hostAndPort.firstIndex(of: "]") {
            host = String(hostAndPort[hostAndPort.index(after: hostAndPort.startIndex)..<close])
            let after = hostAndPort[hostAndPort.index(after: close)...]
            port = after.hasPrefix(":") ? Int(after.dropFirst()) ?? -1 : 5432
        } else if let colon = hostAndPort.lastIndex(of: ":") {
            host = String(hostAndPort[..<colon])
            port = Int(hostAndPort[hostAndPort.index(after: colon)...]) ?? -1
        } else {
            host = String(hostAndPort)
            port = 5432
        }
        guard !user.isEmpty, !host.isEmpty, !database.isEmpty else { throw TokenStoreLocationError("postgres:// needs a user, a host and a database") }
        guard (1...65535).contains(port) else { throw TokenStoreLocationError("postgres:// has a bad port") }
        // Verified TLS unless the operator says otherwise: the store holds who may push what.
        switch query["sslmode"] ?? "verify-full" {
        case "disable": tls = .disable
        case "verify-full": tls = .verifyFull
        case let other: throw TokenStoreLocationError("sslmode=\(other) is not supported: use verify-full (the default) or disable")
        }
        rootCertificate = query["sslrootcert"]
        for key in query.keys where !["sslmode", "sslrootcert"].contains(key) {
            throw TokenStoreLocationError("postgres:// parameter \(key) is not supported (sslmode, sslrootcert)")
        }
    }

    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(user)\(password == nil ? "" : ":…")@\(shownHost):\(port)/\(database)?sslmode=\(tls.rawValue)"
    }

    private static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A `tokens.store` value that cannot be used.
public struct TokenStoreLocationError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The store could not answer: the store is down, corrupt or refuses us.
public struct TokenStoreUnavailable: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The schema both stores share (PostgreSQL and SQLite accept the same SQL here). Times are
/// Unix seconds; the secret is only ever a SHA-256 in hex.
enum TokenSchema {
    /// Version n is `migrations[n - 1]`; a store records the last it applied. Append, never edit.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE gatehouse_tokens (
                id TEXT PRIMARY KEY,
                secret_sha256 TEXT NOT NULL,
                owner TEXT NOT NULL,
                backend TEXT NOT NULL,
                name TEXT NOT NULL,
                policy TEXT NOT NULL,
                kind TEXT NOT NULL,
                resources TEXT NOT NULL,
                permissions TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                last_used_at BIGINT
            )
            """,
            "CREATE INDEX gatehouse_tokens_owner ON gatehouse_tokens (owner)",
            "CREATE TABLE gatehouse_token_changes (singleton INTEGER PRIMARY KEY, count BIGINT NOT NULL)",
            "INSERT INTO gatehouse_token_changes (singleton, count) VALUES (1, 0)",
        ]
    ]

    static let columns = "id, secret_sha256, owner, backend, name, policy, kind, resources, permissions, created_at, expires_at, last_used_at"

    /// A row in `columns` order, read by either store.
    static func token(_ values: [TokenColumn]) throws(TokenStoreUnavailable) -> AccessToken {
        guard values.count == 12,
            case .text(let id) = values[0], case .text(let hash) = values[1], let secretHash = Hex.decode(hash),
            case .text(let owner) = values[2], case .text(let backend) = values[3], case .text(let name) = values[4],
            case .text(let policy) = values[5], case .text(let kindText) = values[6], let kind = TokenScope.Kind(rawValue: kindText),
            case .text(let resources) = values[7], case .text(let permissions) = values[8],
            case .integer(let created) = values[9], case .integer(let expires) = values[10]
        else { throw TokenStoreUnavailable("a row of gatehouse_tokens is not what this version wrote") }
        let scope: TokenScope
        do {
            scope = try TokenScope(policy: policy, kind: kind, resources: resources.split(separator: "\n").map(String.init), permissions: permissions.split(separator: ",").map(String.init))
        } catch {
            throw TokenStoreUnavailable("token \(id) has an unusable scope: \(error)")
        }
        var lastUsed: Int64?
        if case .integer(let value) = values[11] { lastUsed = value }
        return AccessToken(id: id, secretHash: secretHash, owner: owner, backend: backend, name: name, scope: scope, createdAt: created, expiresAt: expires, lastUsedAt: lastUsed)
    }

    /// A token's values in `columns` order.
    static func values(_ token: AccessToken) -> [TokenColumn] {
        [
            .text(token.id), .text(Hex.encode(token.secretHash)), .text(token.owner), .text(token.backend), .text(token.name),
            .text(token.scope.policy), .text(token.scope.kind.rawValue), .text(token.scope.resources.joined(separator: "\n")),
            .text(token.scope.permissions.joined(separator: ",")), .integer(token.createdAt), .integer(token.expiresAt),
            token.lastUsedAt.map(TokenColumn.integer) ?? .null,
        ]
    }
}

/// One column value, in the few types the schema uses.
package enum TokenColumn: Sendable, Equatable {
    case text(String)
    case integer(Int64)
    case null
}
