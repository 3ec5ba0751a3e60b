// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// One thing a request wants to do: an action on a resource.
///
/// Registry policies: a ``RegistryAction`` name on a repository (nil for `login` and
/// `catalog`). HTTP policies: the method on the canonical path.
public struct Access: Sendable, Equatable, CustomStringConvertible {
    public let action: String
    public let resource: String?
    /// Other spellings of `resource` an upstream may serve as the same thing (http policies;
    /// see ``HTTPPath``). No rule may explicitly deny any of them.
    public let alternateResources: [String]

    public init(action: String, resource: String?, alternateResources: [String] = []) {
        self.action = action
        self.resource = resource
        self.alternateResources = alternateResources
    }

    public var description: String { resource.map { "\(action) on \($0)" } ?? action }
}

/// The actions of a Docker Registry HTTP API v2 / OCI distribution request.
public enum RegistryAction: String, Sendable, CaseIterable {
    case login, catalog, pull, push, delete

    /// What a rule's `allow` or a token's scope may name: `login` (`GET /v2/`) is granted to
    /// anyone a rule names at all.
    public static let grantable = allCases.filter { $0 != .login }
    /// The grantable actions as configuration spells them.
    public static let grantableNames = grantable.map(\.rawValue)
}
