// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// An access token as the store keeps it: who owns it, what it may do, until when. The secret
/// itself is never kept, only its SHA-256 (``TokenSecret``).
public struct AccessToken: Sendable, Equatable {
    /// 16 lowercase hex digits; also the second part of the secret, so a login finds the token
    /// without a search.
    public let id: String
    /// SHA-256 of the whole `gth_…` string.
    public let secretHash: [UInt8]
    /// The canonical user name the backend gave when the token was made.
    public let owner: String
    /// The backend that knows the owner; the owner is looked up there on every cache miss.
    public let backend: String
    /// The owner's label for the token ("ci", "laptop").
    public let name: String
    public let scope: TokenScope
    /// Seconds since 1970.
    public let createdAt: Int64
    public let expiresAt: Int64
    public var lastUsedAt: Int64?

    public init(id: String, secretHash: [UInt8], owner: String, backend: String, name: String, scope: TokenScope, createdAt: Int64, expiresAt: Int64, lastUsedAt: Int64? = nil) {
        self.id = id
        self.secretHash = secretHash
        self.owner = owner
        self.backend = backend
        self.name = name
        self.scope = scope
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
    }

    public func isExpired(at now: Int64) -> Bool { expiresAt <= now }

    /// Whether `text` has the shape of an id (16 lowercase hex digits).
    public static func isID(_ text: String) -> Bool {
        text.utf8.count == TokenSecret.idLength && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

/// What a token may be used for, on top of what the rules give its owner: one policy, and
/// either repositories and registry actions or paths and methods. A token never adds a right.
public struct TokenScope: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// Repository globs and registry actions (`pull`, `push`, `delete`, `catalog`).
        case registry
        /// Path globs and HTTP methods.
        case http
    }

    public let policy: String
    public let kind: Kind
    /// Repository or path globs, as written.
    public let resources: [String]
    /// Actions or methods.
    public let permissions: [String]
    private let globs: [Glob]

    /// The registry actions a token may carry; `login` (`GET /v2/`) needs none: it grants nothing.
    public static let registryActions = RegistryAction.grantableNames

    public init(policy: String, kind: Kind, resources: [String], permissions: [String]) throws(TokenScopeError) {
        guard !resources.isEmpty else { throw TokenScopeError(kind == .registry ? "name at least one repository glob" : "name at least one path glob") }
        guard !permissions.isEmpty else { throw TokenScopeError(kind == .registry ? "name at least one action" : "name at least one method") }
        var globs: [Glob] = []
        for resource in resources {
            guard !resource.isEmpty, !resource.containsControlCharacter, !resource.contains("\n") else { throw TokenScopeError("\"\(resource)\" is not a glob") }
            if kind == .http, !resource.hasPrefix("/") { throw TokenScopeError("path glob \"\(resource)\" must start with /") }
            do { globs.append(try Glob(resource)) } catch { throw TokenScopeError(error.description) }
        }
        for permission in permissions {
            switch kind {
            case .registry:
                guard Self.registryActions.contains(permission) else {
                    throw TokenScopeError("\"\(permission)\" is not a registry action (\(Self.registryActions.joined(separator: ", ")))")
                }
            case .http:
                guard Policy.isToken(permission) else { throw TokenScopeError("\"\(permission)\" is not an HTTP method") }
            }
        }
        self.policy = policy
        self.kind = kind
        self.resources = resources
        self.permissions = Array(Set(permissions)).sorted()
        self.globs = globs
    }

    public static func == (lhs: TokenScope, rhs: TokenScope) -> Bool {
        lhs.policy == rhs.policy && lhs.kind == rhs.kind && lhs.resources == rhs.resources && lhs.permissions == rhs.permissions
    }

    /// Whether `access` is inside the scope. Paths are judged as the rules judged them (the
    /// canonical path); the rules alone answer for the other readings an upstream may serve.
    public func permits(_ access: Access, owner: String) -> Bool {
        if kind == .registry, access.action == RegistryAction.login.rawValue { return true }
        guard permissions.contains(access.action) else { return false }
        guard let resource = access.resource else { return kind == .registry && access.action == RegistryAction.catalog.rawValue }
        return globs.contains { $0.matches(resource, user: owner) }
    }

    /// `team/* (pull, push)`, for lists and logs.
    public var summary: String {
        resources.joined(separator: " ") + " (" + permissions.joined(separator: ", ") + ")"
    }
}

/// Why a scope was refused, in words for the command line and the self-service page.
public struct TokenScopeError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
