// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// One line of a policy: who (`users`, `groups`, `anonymous`), where (`repositories` or
/// `paths`; nil = everywhere), and what is allowed there (`allow` actions for registry
/// policies, `methods` for http policies; nil = any method).
///
/// The first rule whose who and where match decides, as in docker_auth's ACLs.
public struct Rule: Sendable {
    /// How the rule is named in `X-Auth-Rule`: its `name`, else `<policy>#<position>`.
    public let label: String
    /// User names; `*` is any authenticated user.
    public let users: [String]
    /// Group names.
    public let groups: [String]
    /// Whether the rule also speaks for requests without credentials.
    public let anonymous: Bool
    /// Repository (registry) or path (http) patterns; nil matches every request.
    public let resources: [Glob]?
    /// Allowed actions (registry) or methods (http); nil allows every method of an http policy.
    public let allowed: Set<String>?
    /// Client networks the rule is limited to (`networks`); nil = from anywhere.
    public let networks: [IPNetwork]?

    public init(label: String, users: [String], groups: [String], anonymous: Bool, resources: [Glob]?, allowed: Set<String>?, networks: [IPNetwork]? = nil) {
        self.label = label
        self.users = users
        self.groups = groups
        self.anonymous = anonymous
        self.resources = resources
        self.allowed = allowed
        self.networks = networks
    }

    /// Whether the rule is about this requester. `anonymous: true` speaks for everyone, with or
    /// without credentials; `users: ["*"]` only for authenticated users.
    func appliesTo(_ identity: Identity?) -> Bool {
        if anonymous { return true }
        guard let identity else { return false }
        if users.contains(where: { $0 == "*" || $0 == identity.user }) { return true }
        return groups.contains { identity.isMember(of: $0) }
    }

    /// Whether the client's address is in one of `networks` (always, without `networks`). A
    /// client whose address is unknown (`gatehouse check` without one) is in none.
    func admits(_ client: ClientIP?) -> Bool {
        guard let networks else { return true }
        guard let client else { return false }
        return networks.contains { $0.contains(client) }
    }

    /// Whether the rule covers this resource; `${user}` in a pattern stands for `user`.
    func covers(_ resource: String?, user: String?, foldingCase: Bool = false) -> Bool {
        guard let resources else { return true }
        guard let resource else { return false }
        return resources.contains { $0.matches(resource, user: user, foldingCase: foldingCase) }
    }

    func allows(_ action: String) -> Bool {
        allowed?.contains(action) ?? true
    }
}
