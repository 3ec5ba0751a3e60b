// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// The JSON a person reads: the body of `/auth?explain` and the output of `gatehouse check --json`.
public struct DecisionExplanation: Codable, Sendable, Equatable {
    public let decision: Decision.Outcome
    public let status: Int
    public let policy: String
    public let client: String?
    public let user: String?
    public let groups: [String]
    public let backend: String?
    public let action: String?
    public let repository: String?
    public let rule: String
    public let reason: String
    public let cached: Bool
    public let trace: [RuleTrace]

    public init(_ decision: Decision) {
        self.decision = decision.outcome
        status = decision.status
        policy = decision.policy
        client = decision.client
        user = decision.user
        groups = decision.groups
        backend = decision.backend
        action = decision.action
        repository = decision.repository
        rule = decision.rule
        reason = decision.reason
        cached = decision.cached
        trace = decision.trace
    }

    /// Pretty-printed, sorted keys, no escaped slashes: stable for people and diff tools.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
