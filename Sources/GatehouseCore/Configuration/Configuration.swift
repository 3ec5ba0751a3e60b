// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// The whole configuration of a Gatehouse process, from YAML (`--config`) or from the embedded
/// defaults (`--htpasswd`, `--groups`, `--push-group`).
public struct Configuration: Sendable {
    public var listen: ListenAddress = .default
    /// `listen_mode`: permissions of a unix socket (nginx must be able to write to it).
    public var listenMode: UInt16 = 0o660
    /// `listen_group`: the group a unix socket is given (e.g. nginx's `www-data`).
    public var listenGroup: String?
    /// `idle_timeout`: a client connection with no request for this long is closed. Longer
    /// than nginx's upstream `keepalive_timeout` (60 s), so nginx closes first and never
    /// sends on a connection we are closing.
    public var idleTimeout: Duration = .seconds(75)
    public var realm: String = "Registry"
    public var trustedProxies: [IPNetwork] = [IPNetwork(parsing: "127.0.0.1/32")!, IPNetwork(parsing: "::1/128")!]
    public var defaultPolicy: String = "registry"
    public var backends: [BackendConfiguration] = []
    public var cache = CacheConfiguration()
    public var lockout = LockoutConfiguration()
    public var log = LogConfiguration()
    /// `tokens`: access tokens; nil (no section) turns them off.
    public var tokens: TokenConfiguration?
    /// `kerberos`: SPNEGO single sign-on for policies with `negotiate: true`; nil turns it off.
    public var kerberos: KerberosConfiguration?
    /// In file order.
    public var policies: [Policy] = []

    public init() {}

    /// The seed recipe on embedded defaults: any authenticated user may log in and pull;
    /// members of `pushGroup` may also push; everything else is denied.
    public static func embeddedDefaults(htpasswd: String, groups: String?, pushGroup: String = "pushers") -> Configuration {
        var configuration = Configuration()
        configuration.backends = [.htpasswd(name: "local", file: htpasswd, groupsFile: groups)]
        configuration.policies = [Self.seedPolicy(pushGroup: pushGroup)]
        return configuration
    }

    /// The seed recipe's registry policy.
    public static func seedPolicy(pushGroup: String) -> Policy {
        Policy(
            name: "registry",
            kind: .registry,
            rules: [
                Rule(label: "registry#1", users: [], groups: [pushGroup], anonymous: false, resources: nil, allowed: ["pull", "push"]),
                Rule(label: "registry#2", users: ["*"], groups: [], anonymous: false, resources: nil, allowed: ["pull"]),
            ]
        )
    }
}

/// A source of users, from the `backends` list.
public enum BackendConfiguration: Sendable, Equatable {
    /// An htpasswd file and an optional Apache group file.
    case htpasswd(name: String, file: String, groupsFile: String?)
    /// An LDAP directory or Active Directory.
    case ldap(LDAPConfiguration)

    public var name: String {
        switch self {
        case .htpasswd(let name, _, _): name
        case .ldap(let configuration): configuration.name
        }
    }
}

/// `cache:` — how long verified credentials are remembered.
public struct CacheConfiguration: Sendable, Equatable {
    public var ttl: Duration = .seconds(300)
    public var negativeTTL: Duration = .seconds(10)
    public var staleGrace: Duration = .seconds(900)
    public var maxEntries = 100_000

    public init() {}
}

/// `lockout:` — failed logins tolerated within `window`: per (user, address) pair, per user
/// across addresses, and per address across users (see ``LockoutTracker``).
///
/// The defaults: a person's own typos lock only that person, only at that address, after 10
/// distinct wrong passwords; a guesser spread over addresses gets 30 per window for one user;
/// an office of 500 behind one NAT would need 100 distinct wrong passwords within 5 minutes
/// before its not-yet-cached logins wait, while everyone verified within the cache `ttl`
/// keeps passing.
public struct LockoutConfiguration: Sendable, Equatable {
    /// `max_failures`: per (user, address) pair; 0 turns lockout off.
    public var maxFailures = 10
    /// `user_max_failures`: per user, across all addresses.
    public var userMaxFailures = 30
    /// `address_max_failures`: per address (IPv6: per /64), across all users.
    public var addressMaxFailures = 100
    public var window: Duration = .seconds(300)

    public init() {}

    public init(maxFailures: Int, userMaxFailures: Int? = nil, addressMaxFailures: Int? = nil, window: Duration) {
        self.maxFailures = maxFailures
        self.userMaxFailures = userMaxFailures ?? max(maxFailures, 30)
        self.addressMaxFailures = addressMaxFailures ?? max(maxFailures, 100)
        self.window = window
    }
}

/// `log:` — level and format of the process log and the audit lines.
/// `kerberos:`: the service's keytab and the directory that turns principals into users.
public struct KerberosConfiguration: Sendable, Equatable {
    /// `keytab`: read at load and copied (a reload copies it again).
    public var keytab: String
    /// `principals`: the service principals accepted; nil accepts any in the keytab.
    public var principals: [String]?
    /// `backend`: the ldap backend that maps `alice@CORP.EXAMPLE` to `alice`, her groups and account state.
    public var backend: String

    public init(keytab: String, principals: [String]? = nil, backend: String) {
        self.keytab = keytab
        self.principals = principals
        self.backend = backend
    }
}

/// `tokens:`: where access tokens are kept and how long they may live.
public struct TokenConfiguration: Sendable, Equatable {
    /// `store`: `sqlite:/path` (one instance) or `postgres://…` (several sharing one database).
    public var store: TokenStoreLocation
    /// `max_lifetime`: the longest expiry a token may be given.
    public var maxLifetime: Duration = .seconds(365 * 86_400)
    /// `self_service`: users manage their own tokens at `/tokens` with their password.
    public var selfService = true

    public init(store: TokenStoreLocation) {
        self.store = store
    }
}

public struct LogConfiguration: Sendable, Equatable {
    /// How log lines are written.
    public enum Format: String, Sendable { case text, json }
    public var level = "info"
    public var format = Format.text
    /// Only denials, challenges and outages get an audit line.
    public var denialsOnly = false
}
