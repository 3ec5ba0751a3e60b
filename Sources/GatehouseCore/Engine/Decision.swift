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
    /// The user's e-mail address from the directory (`X-Auth-Email`), if any.
    public var email: String?
    /// The user's display name from the directory (`X-Auth-Name`), if any.
    public var displayName: String?
    /// The action (registry) or method (http) of the request, once known.
    public var action: String?
    /// The repository of a registry request, once known.
    public var repository: String?
    /// The path of an http policy's request as rules judged it (`;` parameters removed).
    public var path: String?
    /// What `X-Auth-Groups` carries on an allowed request: the policy's `upstream_groups`,
    /// whole names only, and whether some had to be left out (``UpstreamGroups``).
    public var upstreamGroups = UpstreamGroups.none
    /// The deciding rule (`registry#3`, a rule's name, `login`, `default-deny`, …).
    public var rule: String
    /// One sentence for `X-Auth-Reason`; never says whether a user exists.
    public var reason: String
    /// More detail for the operator's log (e.g. which of "unknown user" or "wrong password").
    public var logDetail: String?
    /// Whether the identity came from the credential cache.
    public var cached: Bool
    /// The id of the access token the requester presented (never the secret).
    public var token: String?
    /// The Kerberos principal of a Negotiate login, as the ticket spelled it.
    public var principal: String?
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
            email: nil,
            displayName: nil,
            action: nil,
            repository: nil,
            path: nil,
            rule: rule,
            reason: reason,
            logDetail: nil,
            cached: false,
            token: nil,
            principal: nil,
            trace: []
        )
    }
}

extension Decision {
    /// Settles the outcome; the status follows from it (an unknown policy's 404 is made by
    /// ``make(_:policy:rule:reason:status:)`` alone).
    mutating func settle(_ outcome: Outcome, rule: String, reason: String) {
        self.outcome = outcome
        status = outcome.defaultStatus
        self.rule = rule
        self.reason = reason
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
