// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Glibc

/// A token as `token list --json`, `token create --json` and the self-service endpoints show
/// it: everything but the secret, which only ``secret`` carries, once, when it was just made.
public struct TokenView: Encodable, Sendable {
    public let id: String
    public let name: String
    public let owner: String
    public let backend: String
    public let policy: String
    public let repositories: [String]?
    public let actions: [String]?
    public let paths: [String]?
    public let methods: [String]?
    public let createdAt: String
    public let expiresAt: String
    public let lastUsedAt: String?
    public let expired: Bool
    /// The `gth_…` secret: set only in the answer that created the token.
    public let token: String?

    public init(_ accessToken: AccessToken, secret: TokenSecret? = nil) {
        id = accessToken.id
        name = accessToken.name
        owner = accessToken.owner
        backend = accessToken.backend
        policy = accessToken.scope.policy
        let registry = accessToken.scope.kind == .registry
        repositories = registry ? accessToken.scope.resources : nil
        actions = registry ? accessToken.scope.permissions : nil
        paths = registry ? nil : accessToken.scope.resources
        methods = registry ? nil : accessToken.scope.permissions
        createdAt = Self.rfc3339(accessToken.createdAt)
        expiresAt = Self.rfc3339(accessToken.expiresAt)
        lastUsedAt = accessToken.lastUsedAt.map(Self.rfc3339)
        expired = accessToken.isExpired(at: TokenAuthority.now())
        token = secret?.text
    }

    enum CodingKeys: String, CodingKey {
        case id, name, owner, backend, policy, repositories, actions, paths, methods
        case createdAt = "created_at", expiresAt = "expires_at", lastUsedAt = "last_used_at", expired, token
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(name, forKey: .name)
        try container.encode(owner, forKey: .owner)
        try container.encode(backend, forKey: .backend)
        try container.encode(policy, forKey: .policy)
        try container.encodeIfPresent(repositories, forKey: .repositories)
        try container.encodeIfPresent(actions, forKey: .actions)
        try container.encodeIfPresent(paths, forKey: .paths)
        try container.encodeIfPresent(methods, forKey: .methods)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(expiresAt, forKey: .expiresAt)
        // Always present: null says "never used".
        try container.encode(lastUsedAt, forKey: .lastUsedAt)
        try container.encode(expired, forKey: .expired)
        try container.encodeIfPresent(token, forKey: .token)
    }

    /// `2026-12-04T18:11:01Z`.
    public static func rfc3339(_ seconds: Int64) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
