// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// The value of `X-Auth-Groups`: the groups a policy passes upstream, comma-separated, each
/// name whole.
///
/// A `,` or `%` inside a name, and control characters, are percent-encoded (`ops,admins` is
/// `ops%2Cadmins`), so that no name can read as two upstream. The list stops before the first
/// name that would take it past ``maximumBytes``; `truncated` then says so, and the answer
/// carries `X-Auth-Groups-Truncated: true`. A name is never cut: a cut name can equal another,
/// real group upstream.
public struct UpstreamGroups: Sendable, Equatable {
    /// The largest value sent: with the other identity headers it fits the 64 KiB the nginx
    /// kit's auth location buffers (`proxy_buffer_size 64k`).
    public static let maximumBytes = 49_152

    /// The header value (empty for a user in no group).
    public let value: String
    /// Whether groups were left out to stay within ``maximumBytes``.
    public let truncated: Bool
    /// How many groups the value carries.
    public let count: Int
    /// How many groups the policy would pass (after `upstream_groups`).
    public let offered: Int

    /// No groups, not truncated.
    public static let none = UpstreamGroups(value: "", truncated: false, count: 0, offered: 0)

    init(value: String, truncated: Bool, count: Int, offered: Int) {
        self.value = value
        self.truncated = truncated
        self.count = count
        self.offered = offered
    }

    /// Encodes sorted `groups`, stopping at `maximumBytes`.
    public init(_ groups: [String], maximumBytes: Int = UpstreamGroups.maximumBytes) {
        var value = ""
        var count = 0
        var truncated = false
        for group in groups {
            let item = Self.listItem(group)
            let needed = item.utf8.count + (count == 0 ? 0 : 1)
            guard value.utf8.count + needed <= maximumBytes else {
                truncated = true
                break
            }
            if count > 0 { value += "," }
            value += item
            count += 1
        }
        self.init(value: value, truncated: truncated, count: count, offered: groups.count)
    }

    /// One item of the list: `%`, `,` and control characters percent-encoded, the rest as is.
    public static func listItem(_ group: String) -> String {
        guard group.utf8.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "%") || $0 < 0x20 || $0 == 0x7F }) else { return group }
        var encoded = ""
        for scalar in group.unicodeScalars {
            switch scalar.value {
            case 0x25, 0x2C, 0..<0x20, 0x7F:
                encoded += "%" + String(UInt8(scalar.value) >> 4, radix: 16, uppercase: true) + String(UInt8(scalar.value) & 0x0F, radix: 16, uppercase: true)
            default:
                encoded.unicodeScalars.append(scalar)
            }
        }
        return encoded
    }
}
