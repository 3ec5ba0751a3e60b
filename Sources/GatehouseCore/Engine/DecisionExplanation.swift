// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// The JSON a person reads: the body of `/auth?explain` and the output of `gatehouse check --json`.
///
/// Every field is always present, `null` where it does not apply (SPEC: the nine fields
/// decision, status, user, groups, action, repository, rule, reason, cached), so that a script
/// can read `.user` without first asking whether the key exists. http policies add `path`.
public struct DecisionExplanation: Codable, Sendable, Equatable {
    public let decision: Decision.Outcome
    public let status: Int
    public let policy: String
    public let client: String?
    public let user: String?
    public let groups: [String]
    public let groupsTruncated: Bool
    public let backend: String?
    public let email: String?
    public let displayName: String?
    public let action: String?
    public let repository: String?
    public let path: String?
    public let rule: String
    public let reason: String
    public let cached: Bool
    /// The id of the access token the requester presented, if any.
    public let token: String?
    /// The Kerberos principal of a Negotiate login, if any.
    public let principal: String?
    public let trace: [RuleTrace]
    /// Whether `path` is written: only for http policies.
    private let hasPath: Bool

    public init(_ decision: Decision, policyKind: Policy.Kind?) {
        self.decision = decision.outcome
        status = decision.status
        policy = decision.policy
        client = decision.client
        user = decision.user
        groups = decision.groups
        groupsTruncated = decision.upstreamGroups.truncated
        backend = decision.backend
        email = decision.email
        displayName = decision.displayName
        action = decision.action
        repository = decision.repository
        path = decision.path
        rule = decision.rule
        reason = decision.reason
        cached = decision.cached
        token = decision.token
        principal = decision.principal
        trace = decision.trace
        hasPath = policyKind == .http
    }

    private enum CodingKeys: String, CodingKey {
        case decision, status, policy, client, user, groups, backend, action, repository, path, rule, reason, cached, token, principal, trace
        case groupsTruncated = "groups_truncated"
        case email
        case displayName = "display_name"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        decision = try container.decode(Decision.Outcome.self, forKey: .decision)
        status = try container.decode(Int.self, forKey: .status)
        policy = try container.decode(String.self, forKey: .policy)
        client = try container.decodeIfPresent(String.self, forKey: .client)
        user = try container.decodeIfPresent(String.self, forKey: .user)
        groups = try container.decode([String].self, forKey: .groups)
        groupsTruncated = try container.decodeIfPresent(Bool.self, forKey: .groupsTruncated) ?? false
        backend = try container.decodeIfPresent(String.self, forKey: .backend)
        email = try container.decodeIfPresent(String.self, forKey: .email)
        displayName = try container.decodeIfPresent(String.self, forKey: .displayName)
        action = try container.decodeIfPresent(String.self, forKey: .action)
        repository = try container.decodeIfPresent(String.self, forKey: .repository)
        hasPath = container.contains(.path)
        path = try container.decodeIfPresent(String.self, forKey: .path)
        rule = try container.decode(String.self, forKey: .rule)
        reason = try container.decode(String.self, forKey: .reason)
        cached = try container.decode(Bool.self, forKey: .cached)
        token = try container.decodeIfPresent(String.self, forKey: .token)
        principal = try container.decodeIfPresent(String.self, forKey: .principal)
        trace = try container.decode([RuleTrace].self, forKey: .trace)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(decision, forKey: .decision)
        try container.encode(status, forKey: .status)
        try container.encode(policy, forKey: .policy)
        try container.encode(client, forKey: .client)
        try container.encode(user, forKey: .user)
        try container.encode(groups, forKey: .groups)
        try container.encode(groupsTruncated, forKey: .groupsTruncated)
        try container.encode(backend, forKey: .backend)
        try container.encode(email, forKey: .email)
        try container.encode(displayName, forKey: .displayName)
        try container.encode(action, forKey: .action)
        try container.encode(repository, forKey: .repository)
        if hasPath { try container.encode(path, forKey: .path) }
        try container.encode(rule, forKey: .rule)
        try container.encode(reason, forKey: .reason)
        try container.encode(cached, forKey: .cached)
        try container.encode(token, forKey: .token)
        try container.encode(principal, forKey: .principal)
        try container.encode(trace, forKey: .trace)
    }

    /// Pretty-printed, sorted keys, no escaped slashes: stable for people and diff tools.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
