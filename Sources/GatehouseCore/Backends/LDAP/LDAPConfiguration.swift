// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// The settings of one `type: ldap` backend.
public struct LDAPConfiguration: Sendable, Equatable {
    /// Sensible filters and attributes for a kind of directory.
    public enum Preset: String, Sendable {
        /// Microsoft Active Directory (and Samba AD): sAMAccountName, UPN and DOMAIN\user logins,
        /// nested and primary groups, account states.
        case activeDirectory = "active-directory"
        /// OpenLDAP: uid, groupOfNames / groupOfUniqueNames / posixGroup.
        case openldap
    }

    public var name: String
    public var preset: Preset
    /// Tried in order; a server that fails is skipped for a short back-off.
    public var urls: [String]
    public var startTLS = false
    /// Allows simple binds over plain `ldap://` without StartTLS (tests on loopback only).
    public var insecure = false
    public var caFile: String?
    public var bindDN: String
    public var bindPasswordFile: String?
    /// The name of an environment variable holding the service account's password.
    public var bindPasswordEnvironment: String?
    public var baseDN: String
    /// Must contain `{username}`, which is replaced by the escaped (RFC 4515) login name.
    public var userFilter: String
    /// The attribute holding the canonical user name (`sAMAccountName`, `uid`).
    public var usernameAttribute: String
    /// Where groups are searched; defaults to `baseDN`.
    public var groupBaseDN: String?
    /// Overrides the preset's group search; `{dn}` and `{username}` are replaced, escaped.
    public var groupFilter: String?
    /// The group attribute used as its name in rules (`cn`).
    public var groupAttribute = "cn"
    /// `email_attribute`: the user attribute sent upstream as `X-Auth-Email` (nil: none).
    public var emailAttribute: String? = "mail"
    /// `name_attribute`: the user attribute sent upstream as `X-Auth-Name` (nil: none).
    public var nameAttribute: String? = "displayName"
    public var nestedGroups: Bool
    public var poolSize = 4
    public var timeout: Duration = .seconds(5)
    /// Accepted `user@suffix` forms (AD); defaults to the DNS name of `baseDN`.
    public var upnSuffixes: [String]
    /// Accepted `DOMAIN\user` prefix (AD); defaults to the first DC component of `baseDN`.
    public var netbiosDomain: String?

    /// The YAML keys of an ldap backend.
    static let keys: Set<String> = [
        "name", "type", "preset", "urls", "start_tls", "insecure", "ca_file", "bind_dn", "bind_password_file", "bind_password_env",
        "base_dn", "user_filter", "username_attribute", "group_base_dn", "group_filter", "group_attribute", "nested_groups",
        "email_attribute", "name_attribute",
        "pool_size", "timeout", "upn_suffixes", "netbios_domain",
    ]

    /// A configuration with the preset's defaults.
    public init(name: String, preset: Preset, urls: [String], bindDN: String, baseDN: String) {
        self.name = name
        self.preset = preset
        self.urls = urls
        self.bindDN = bindDN
        self.baseDN = baseDN
        switch preset {
        case .activeDirectory:
            userFilter = "(&(objectClass=user)(sAMAccountName={username}))"
            usernameAttribute = "sAMAccountName"
            nestedGroups = true
        case .openldap:
            userFilter = "(&(objectClass=inetOrgPerson)(uid={username}))"
            usernameAttribute = "uid"
            nestedGroups = false
        }
        let components = Self.domainComponents(of: baseDN)
        upnSuffixes = components.isEmpty ? [] : [components.joined(separator: ".").lowercased()]
        netbiosDomain = components.first?.uppercased()
    }

    /// `DC=corp,DC=example` → `["corp", "example"]`.
    static func domainComponents(of dn: String) -> [String] {
        dn.split(separator: ",").compactMap { part -> String? in
            let pieces = part.split(separator: "=", maxSplits: 1)
            guard pieces.count == 2, pieces[0].trimmingSpaces.lowercased() == "dc" else { return nil }
            return pieces[1].trimmingSpaces
        }
    }
}
