// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// For each user, group and "everyone" subject, the positions of the rules that name it, so
/// that a decision visits only the rules about its requester: a 50-rule policy costs a few
/// dictionary lookups, not 50 subject checks.
struct RuleIndex: Sendable {
    private var byUser: [String: [Int]] = [:]
    private var byGroup: [String: [Int]] = [:]
    private var byFoldedGroup: [String: [Int]] = [:]
    private var anyAuthenticated: [Int] = []
    private var anyone: [Int] = []

    init(rules: [Rule]) {
        for (position, rule) in rules.enumerated() {
            if rule.anonymous {
                anyone.append(position)
                continue
            }
            if rule.users.contains("*") {
                anyAuthenticated.append(position)
                continue
            }
            for user in Set(rule.users) { byUser[user, default: []].append(position) }
            for group in Set(rule.groups) { byGroup[group, default: []].append(position) }
            for group in Set(rule.groups.map { $0.lowercased() }) { byFoldedGroup[group, default: []].append(position) }
        }
    }

    /// Positions of the rules that apply to `identity`, ascending: exactly those for which
    /// ``Rule/appliesTo(_:)`` is true.
    func candidates(for identity: Identity?) -> [Int] {
        guard let identity else { return anyone }
        var positions = anyone
        positions += anyAuthenticated
        if let named = byUser[identity.user] { positions += named }
        if identity.groupsAreCaseInsensitive {
            for group in identity.foldedGroups { if let named = byFoldedGroup[group] { positions += named } }
        } else {
            for group in identity.groups { if let named = byGroup[group] { positions += named } }
        }
        positions.sort()
        var unique: [Int] = []
        unique.reserveCapacity(positions.count)
        for position in positions where unique.last != position { unique.append(position) }
        return unique
    }
}
