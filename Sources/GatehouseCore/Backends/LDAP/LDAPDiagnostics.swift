// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import CLDAP
import Logging

/// `gatehouse ldap test`: each step of a verification, timed, with a plain explanation of what
/// failed and what to check. Blocking; meant for the command line.
public enum LDAPDiagnostics {
    /// One step's outcome.
    public struct Step: Sendable {
        public let name: String
        public let succeeded: Bool
        public let duration: Duration
        public let detail: String

        public init(name: String, succeeded: Bool, duration: Duration, detail: String) {
            self.name = name
            self.succeeded = succeeded
            self.duration = duration
            self.detail = detail
        }
    }

    public static func run(_ configuration: LDAPConfiguration, user: String, password: String?) -> [Step] {
        var steps: [Step] = []
        let clock = ContinuousClock()
        func record<T>(_ name: String, _ body: () throws -> (T, String)) -> T? {
            let started = clock.now
            do {
                let (value, detail) = try body()
                steps.append(Step(name: name, succeeded: true, duration: started.duration(to: clock.now), detail: detail))
                return value
            } catch let error as LDAPError {
                steps.append(Step(name: name, succeeded: false, duration: started.duration(to: clock.now), detail: "\(error)\n  → \(advice(error, configuration))"))
            } catch {
                steps.append(Step(name: name, succeeded: false, duration: started.duration(to: clock.now), detail: "\(error)"))
            }
            return nil
        }

        guard let servicePassword = record("service password", { () throws -> (String, String) in
            (try LDAPBackend.servicePassword(configuration), configuration.bindPasswordFile.map { "read from \($0)" } ?? "read from $\(configuration.bindPasswordEnvironment ?? "")")
        }) else { return steps }

        let settings = LDAPConnection.Settings(startTLS: configuration.startTLS, caFile: configuration.caFile, timeout: configuration.timeout)
        var connection: LDAPConnection?
        for url in configuration.urls where connection == nil {
            connection = record("connect \(url)", { () throws -> (LDAPConnection, String) in
                let opened = try LDAPConnection(url: url, settings: settings, startTLS: false)
                return (opened, url.hasPrefix("ldaps:") ? "connected; TLS handshake done, certificate verified" : "connected")
            })
        }
        guard let connection else { return steps }
        defer { connection.close() }
        if configuration.startTLS {
            guard record("TLS (StartTLS)", { () throws -> (Void, String) in
                try connection.startTLS()
                return ((), "certificate verified against \(configuration.caFile ?? "the system CA store")")
            }) != nil else { return steps }
        } else if !connection.url.hasPrefix("ldaps:") {
            steps.append(Step(name: "TLS", succeeded: true, duration: .zero, detail: "none: insecure: true allows plain ldap://; never use this beyond loopback"))
        }
        guard record("service bind", { () throws -> (Void, String) in
            try connection.bind(dn: configuration.bindDN, password: servicePassword, step: .serviceBind)
            return ((), "bound as \(configuration.bindDN)")
        }) != nil else { return steps }

        let backend = try? LDAPBackend(configuration: configuration, logger: .init(label: "gatehouse.ldap-test"))
        guard let login = backend?.accountName(for: user) else {
            steps.append(Step(name: "user search", succeeded: false, duration: .zero, detail: "\"\(user)\" names another domain than \(configuration.netbiosDomain ?? "-") / \(configuration.upnSuffixes.joined(separator: ", "))"))
            return steps
        }
        let filter = LDAPFilter.fill(configuration.userFilter, ["username": login])
        guard let entry = record("user search", { () throws -> (LDAPConnection.Entry, String) in
            let entries = try connection.search(base: configuration.baseDN, scope: LDAP_SCOPE_SUBTREE, filter: filter, attributes: [configuration.usernameAttribute], sizeLimit: 2, timeout: configuration.timeout, step: .userSearch)
            guard entries.count == 1 else {
                throw LDAPError(code: 0, message: entries.isEmpty ? "no entry matches \(filter) under \(configuration.baseDN)" : "\(filter) matches several entries", step: .userSearch)
            }
            return (entries[0], "found \(entries[0].dn)")
        }) else { return steps }

        if let password {
            guard !password.isEmpty else {
                steps.append(Step(name: "user bind", succeeded: false, duration: .zero, detail: "refused: an empty password is an unauthenticated bind, which Active Directory reports as success"))
                return steps
            }
            guard record("user bind", { () throws -> (Void, String) in
                let userConnection = try LDAPConnection(url: connection.url, settings: settings)
                defer { userConnection.close() }
                try userConnection.bind(dn: entry.dn, password: password, step: .userBind)
                return ((), "password accepted")
            }) != nil else { return steps }
        }
        _ = record("groups", { () throws -> (Void, String) in
            guard let backend else { return ((), "-") }
            let identity = try syncIdentity(backend, user: user)
            return ((), identity.map { "\($0.user): \($0.groups.isEmpty ? "(none)" : $0.groups.joined(separator: ", "))" } ?? "user vanished")
        })
        return steps
    }

    private static func syncIdentity(_ backend: LDAPBackend, user: String) throws -> Identity? {
        try backend.identitySync(of: user)
    }

    /// What to check, in plain words.
    static func advice(_ error: LDAPError, _ configuration: LDAPConfiguration) -> String {
        if let code = error.activeDirectoryCode {
            switch code {
            case "52e": return "the password is wrong (or the DN does not exist)"
            case "533": return "the account is disabled in Active Directory"
            case "775": return "the account is locked out; it unlocks after the domain's lockout duration or by an administrator"
            case "532", "773": return "the password must be changed before the account can log in"
            case "701": return "the account has expired (accountExpires)"
            case "530", "531": return "logon hours or workstation restrictions forbid this logon"
            default: return LDAPError.explainActiveDirectory(code)
            }
        }
        switch error.code {
        case LDAP_SERVER_DOWN, LDAP_CONNECT_ERROR:
            return "cannot reach or verify the server: check host, port and firewall; for TLS, that ca_file holds the CA that signed the server's certificate and that the URL's host name is in the certificate (libldap reports TLS failures this way too)"
        case LDAP_TIMEOUT:
            return "no answer within \(configuration.timeout): is the server overloaded, or a firewall dropping packets?"
        case LDAP_STRONG_AUTH_REQUIRED, LDAP_CONFIDENTIALITY_REQUIRED:
            return "the server requires TLS for simple binds: use ldaps:// or start_tls: true"
        case LDAP_INVALID_CREDENTIALS:
            return error.step == .serviceBind ? "check bind_dn and the service account's password" : "wrong password"
        case LDAP_NO_SUCH_OBJECT:
            return "base_dn does not exist on this server"
        case LDAP_FILTER_ERROR:
            return "user_filter is not a valid LDAP filter"
        case LDAP_INSUFFICIENT_ACCESS, LDAP_OPERATIONS_ERROR:
            return "the service account may not search there: check its rights and bind_dn"
        default:
            return error.step == .userSearch ? "check base_dn and user_filter" : "see the server's log"
        }
    }
}
