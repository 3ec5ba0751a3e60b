// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

public import Logging

extension DecisionEngine {
    /// Builds the engine and its backends from a validated configuration. Throws when a backend
    /// cannot start (an htpasswd file that cannot be read).
    ///
    /// `previous` is the engine being replaced: its lockout counts carry over when the lockout
    /// settings did not change.
    ///
    /// `tokens` is the server's access-token list (it outlives reloads); nil when the
    /// configuration has no `tokens:` section.
    public init(configuration: Configuration, logger: Logger, metrics: GatehouseMetrics = .disabled, previous: DecisionEngine? = nil, tokens: TokenAuthority? = nil) throws {
        var backends: [any CredentialBackend] = []
        for backend in configuration.backends {
            switch backend {
            case .htpasswd(let name, let file, let groupsFile):
                backends.append(try HtpasswdBackend(name: name, passwordPath: file, groupsPath: groupsFile, logger: logger))
            case .ldap(let settings):
                backends.append(try LDAPBackend(configuration: settings, logger: logger, metrics: metrics))
            }
        }
        self.init(realm: configuration.realm, defaultPolicy: configuration.defaultPolicy, policies: configuration.policies, backends: backends, cache: configuration.cache, lockout: configuration.lockout, lockoutTracker: previous?.lockout, tokens: tokens, kerberos: try configuration.kerberos.map { try KerberosAcceptor(configuration: $0) }, metrics: metrics)
    }
}
