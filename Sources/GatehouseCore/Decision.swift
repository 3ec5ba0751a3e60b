// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// The answer to an ``AuthRequest``, with enough detail to explain itself.
public struct Decision: Sendable, Equatable {
    /// The four answers nginx can act on.
    public enum Outcome: String, Sendable, Codable {
        /// 200: let the request through.
        case allow
        /// 403: authenticated but not permitted, or a refused request target.
        case deny
        /// 401 with `WWW-Authenticate`: credentials missing, malformed or wrong.
        case challenge
        /// 503: a backend the decision needs cannot be reached.
        case unavailable
    }

    public var outcome: Outcome
    /// The HTTP status for nginx: 200, 401, 403, 503, or 404 for an unknown policy.
    public var status: Int
    /// The policy that decided.
    public var policy: String
    /// The client's address as far as it could be trusted.
    public var client: String?
    /// The authenticated user, if any.
    public var user: String?
    /// The user's groups, sorted.
    public var groups: [String]
    /// The backend that vouched for the user.
    public var backend: String?
    /// The action (registry) or method (http) of the request, once known.
    public var action: String?
    /// The repository (registry) or path (http) of the request, once known.
    public var repository: String?
    /// The deciding rule (`registry#3`, a rule's name, `login`, `default-deny`, …).
    public var rule: String
    /// One sentence for `X-Auth-Reason`; never says whether a user exists.
    public var reason: String
    /// More detail for the operator's log (e.g. which of "unknown user" or "wrong password").
    public var logDetail: String?
    /// Whether the identity came from the credential cache.
    public var cached: Bool
    /// What each rule did.
    public var trace: [RuleTrace]

    static func make(
        _ outcome: Outcome,
        policy: String,
        rule: String,
        reason: String,
        status: Int? = nil
    ) -> Decision {
        Decision(
            outcome: outcome,
            status: status ?? outcome.defaultStatus,
            policy: policy,
            client: nil,
            user: nil,
            groups: [],
            backend: nil,
            action: nil,
            repository: nil,
            rule: rule,
            reason: reason,
            logDetail: nil,
            cached: false,
            trace: []
        )
    }
}

extension Decision.Outcome {
    var defaultStatus: Int {
        switch self {
        case .allow: 200
        case .deny: 403
        case .challenge: 401
        case .unavailable: 503
        }
    }
}
