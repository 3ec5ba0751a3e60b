// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import CLDAP
import Glibc

/// One libldap handle: one TCP (or TLS) connection with one bind identity.
///
/// Every call blocks, so connections are used only on the LDAP thread pool, one thread at a
/// time (``LDAPConnectionPool`` hands them out). TLS options are set on the handle followed by
/// `LDAP_OPT_X_TLS_NEWCTX`: without it libldap silently uses the global context built from
/// `/etc/ldap/ldap.conf` and `LDAPTLS_*` variables, which can switch verification off.
final class LDAPConnection: @unchecked Sendable {
    /// TLS and timeout settings for new connections.
    struct Settings: Sendable {
        var startTLS: Bool
        var caFile: String?
        var timeout: Duration
    }

    let url: String
    private var handle: OpaquePointer?
    private let watchdog = LDAPHandshakeWatchdog()
    private let timeout: Duration

    /// Initialises a handle for `url` and connects (the TLS handshake of `ldaps://` included;
    /// StartTLS too unless `startTLS` is false, for `gatehouse ldap test` to time it apart).
    init(url: String, settings: Settings, startTLS: Bool = true) throws(LDAPError) {
        self.url = url
        self.timeout = settings.timeout
        var handle: OpaquePointer?
        let rc = ldap_initialize(&handle, url)
        guard rc == LDAP_SUCCESS, let handle else { throw LDAPError(code: rc, message: "cannot initialise \(url)", step: .connect) }
        self.handle = handle
        do {
            try configure(settings)
            try connect()
            if settings.startTLS, startTLS { try self.startTLS() }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    func close() {
        if let handle { ldap_unbind_ext_s(handle, nil, nil) }
        handle = nil
    }

    private func setOption(_ option: Int32, _ value: UnsafeRawPointer?, _ name: String) throws(LDAPError) {
        let rc = ldap_set_option(handle, option, value)
        guard rc == LDAP_OPT_SUCCESS else { throw LDAPError(code: rc, message: "cannot set \(name)", step: .connect) }
    }

    private func configure(_ settings: Settings) throws(LDAPError) {
        var version = Int32(LDAP_VERSION3)
        try setOption(LDAP_OPT_PROTOCOL_VERSION, &version, "protocol version 3")
        // Never chase referrals: libldap would follow them with an anonymous bind, and AD
        // answers subtree searches from the domain root with continuation references.
        try setOption(LDAP_OPT_REFERRALS, nil, "referrals off")
        var timeout = timeval(settings.timeout)
        try setOption(LDAP_OPT_NETWORK_TIMEOUT, &timeout, "network timeout")
        try setOption(LDAP_OPT_TIMEOUT, &timeout, "operation timeout")
        if let caFile = settings.caFile {
            let rc = caFile.withCString { ldap_set_option(handle, LDAP_OPT_X_TLS_CACERTFILE, $0) }
            guard rc == LDAP_OPT_SUCCESS else { throw LDAPError(code: rc, message: "cannot set the CA file", step: .connect) }
        }
        var demand = Int32(LDAP_OPT_X_TLS_DEMAND)
        try setOption(LDAP_OPT_X_TLS_REQUIRE_CERT, &demand, "certificate verification")
        var minimum = Int32(0x303)  // TLS 1.2
        try setOption(LDAP_OPT_X_TLS_PROTOCOL_MIN, &minimum, "minimum TLS 1.2")
        var newContext = Int32(0)
        try setOption(LDAP_OPT_X_TLS_NEWCTX, &newContext, "a private TLS context")
        try setOption(LDAP_OPT_CONNECT_CB, watchdog.callbacks, "the handshake watchdog")
    }

    private func connect() throws(LDAPError) {
        let rc = watchdog.guarding(timeout: timeout) { ldap_connect(handle) }
        guard rc == LDAP_SUCCESS else {
            throw LDAPError(code: rc, message: diagnostic() ?? "cannot connect", step: url.hasPrefix("ldaps:") && watchdog.connected ? .tls : .connect)
        }
    }

    /// Upgrades a plain connection with StartTLS, verifying the server's certificate.
    func startTLS() throws(LDAPError) {
        let rc = watchdog.guarding(timeout: timeout) { ldap_start_tls_s(handle, nil, nil) }
        guard rc == LDAP_SUCCESS else { throw LDAPError(code: rc, message: diagnostic() ?? "StartTLS failed", step: .tls) }
    }

    /// A simple bind. Callers refuse empty passwords first: an empty password is an RFC 4513
    /// "unauthenticated bind", which Active Directory reports as success.
    func bind(dn: String, password: String, step: LDAPError.Step) throws(LDAPError) {
        precondition(!password.isEmpty, "an empty password would be an unauthenticated bind")
        var secret = Array(password.utf8)
        defer { explicit_bzero(&secret, secret.count) }
        let rc = secret.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                var credential = berval(bv_len: ber_len_t(chars.count), bv_val: chars.baseAddress)
                return ldap_sasl_bind_s(handle, dn, nil, &credential, nil, nil, nil)
            }
        }
        guard rc == LDAP_SUCCESS else { throw LDAPError(code: rc, message: diagnostic() ?? "bind failed", step: step) }
    }

    /// One entry of a search result: its DN and the requested attributes' raw values.
    struct Entry: Sendable {
        let dn: String
        let attributes: [String: [[UInt8]]]

        func strings(_ name: String) -> [String] {
            (attributes.first { $0.key.lowercased() == name.lowercased() }?.value ?? []).compactMap { String(validating: $0, as: UTF8.self) }
        }
        func values(_ name: String) -> [[UInt8]] {
            attributes.first { $0.key.lowercased() == name.lowercased() }?.value ?? []
        }
    }

    /// A synchronous search; continuation references are ignored.
    func search(base: String, scope: Int32, filter: String, attributes: [String], sizeLimit: Int32, timeout: Duration, step: LDAPError.Step) throws(LDAPError) -> [Entry] {
        var cAttributes: [UnsafeMutablePointer<CChar>?] = attributes.map { strdup($0) } + [nil]
        defer { for pointer in cAttributes { free(pointer) } }
        var limit = timeval(timeout)
        var result: OpaquePointer?
        let rc = cAttributes.withUnsafeMutableBufferPointer { pointer in
            ldap_search_ext_s(handle, base, scope, filter, pointer.baseAddress, 0, nil, nil, &limit, sizeLimit, &result)
        }
        // The result must be freed even when rc reports an error (size limit exceeded).
        defer { if let result { ldap_msgfree(result) } }
        guard rc == LDAP_SUCCESS else { throw LDAPError(code: rc, message: diagnostic() ?? "search failed", step: step) }
        var entries: [Entry] = []
        var message = ldap_first_message(handle, result)
        while let current = message {
            if ldap_msgtype(current) == Int32(LDAP_RES_SEARCH_ENTRY) {
                entries.append(readEntry(current))
            }
            message = ldap_next_message(handle, current)
        }
        return entries
    }

    private func readEntry(_ message: OpaquePointer) -> Entry {
        var dn = ""
        if let pointer = ldap_get_dn(handle, message) {
            dn = String(cString: pointer)
            ldap_memfree(pointer)
        }
        var attributes: [String: [[UInt8]]] = [:]
        var element: OpaquePointer?
        var name = ldap_first_attribute(handle, message, &element)
        while let current = name {
            let attribute = String(cString: current)
            if let values = ldap_get_values_len(handle, message, current) {
                var collected: [[UInt8]] = []
                var index = 0
                while let value = values[index] {
                    let bytes = UnsafeRawBufferPointer(start: value.pointee.bv_val, count: Int(value.pointee.bv_len))
                    collected.append(Array(bytes))
                    index += 1
                }
                ldap_value_free_len(values)
                attributes[attribute] = collected
            }
            ldap_memfree(current)
            name = ldap_next_attribute(handle, message, element)
        }
        if let element { ber_free(element, 0) }
        return Entry(dn: dn, attributes: attributes)
    }

    /// The server's diagnostic text for the last operation (AD puts its `data 52e` code there).
    func diagnostic() -> String? {
        var text: UnsafeMutablePointer<CChar>?
        guard ldap_get_option(handle, LDAP_OPT_DIAGNOSTIC_MESSAGE, &text) == LDAP_OPT_SUCCESS, let text else { return nil }
        defer { ldap_memfree(text) }
        let message = String(cString: text)
        return message.isEmpty ? nil : message
    }
}

extension timeval {
    init(_ duration: Duration) {
        let microseconds = duration.microseconds
        self.init(tv_sec: Int(microseconds / 1_000_000), tv_usec: Int(microseconds % 1_000_000))
    }
}
