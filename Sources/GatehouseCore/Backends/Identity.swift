// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// Who a request comes from once a backend has vouched for it.
public struct Identity: Sendable, Equatable {
    /// The canonical user name used by rules, headers and logs.
    public let user: String
    /// Group names, sorted.
    public let groups: [String]
    /// The `name` of the backend that vouched for the user.
    public let backend: String
    /// LDAP group names compare case-insensitively; htgroups names exactly.
    public let groupsAreCaseInsensitive: Bool
    /// Lower-cased groups, for case-insensitive membership without per-request work.
    let foldedGroups: Set<String>
    /// The directory's e-mail address for the user (LDAP `mail`, configurable), if any.
    public let email: String?
    /// The directory's display name for the user (LDAP `displayName`, configurable), if any.
    public let displayName: String?
    /// `X-Auth-Groups` with every group, encoded once when the identity is made (a verification)
    /// rather than on each cached request: a user in 300 groups is a 14 KB value.
    public let allGroupsHeader: UpstreamGroups

    public init(user: String, groups: [String], backend: String, groupsAreCaseInsensitive: Bool = false, email: String? = nil, displayName: String? = nil) {
        self.user = user
        self.groups = groups.sorted()
        self.backend = backend
        self.groupsAreCaseInsensitive = groupsAreCaseInsensitive
        self.foldedGroups = groupsAreCaseInsensitive ? Set(groups.map { $0.lowercased() }) : []
        self.email = email
        self.displayName = displayName
        self.allGroupsHeader = UpstreamGroups(self.groups)
    }

    /// Whether the user is in `group`.
    public func isMember(of group: String) -> Bool {
        if groupsAreCaseInsensitive { return foldedGroups.contains(group.lowercased()) }
        return groups.contains(group)
    }
}
