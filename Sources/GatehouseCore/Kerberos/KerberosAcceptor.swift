// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import CGSSAPI
public import NIOPosix

/// Verifies `Authorization: Negotiate` tokens with the service's keytab (GSS-API
/// `gss_accept_sec_context`, MIT Kerberos) and says whose they are.
///
/// Each call is a blocking library call of ≈0.3 ms: it runs on the thread pool, never on an
/// event loop. The keytab is the pinned copy taken at load (a reload copies it again), named
/// directly in the credential store, never through the process-wide `KRB5_KTNAME`.
///
/// MIT's replay cache stays on (its default file under /var/tmp, or `KRB5RCACHEDIR`): a
/// captured `Authorization: Negotiate` header cannot be sent again. Browsers make a fresh token
/// for every challenge, so they never trip it; the price is a file write per verification.
public final class KerberosAcceptor: Sendable {
    public let configuration: KerberosConfiguration
    private let keytab: PinnedFile
    private let threadPool: NIOThreadPool

    public init(configuration: KerberosConfiguration, threadPool: NIOThreadPool = .singleton) throws {
        self.configuration = configuration
        keytab = try PinnedFile(copying: configuration.keytab)
        self.threadPool = threadPool
    }

    /// The pinned keytab's path, for `gatehouse kerberos test`.
    public var keytabPath: String { keytab.path }

    /// Who a token's ticket names, and for which service.
    public struct Accepted: Sendable, Equatable {
        /// `alice@CORP.EXAMPLE`, as the ticket spells it (not canonical).
        public let principal: String
        /// The service principal the ticket was for.
        public let service: String
    }

    /// Verifies a token off the event loop.
    public func accept(_ token: [UInt8]) async throws -> Result<Accepted, KerberosError> {
        try await threadPool.runIfActive { self.acceptNow(token) }
    }

    /// The blocking verification.
    public func acceptNow(_ token: [UInt8]) -> Result<Accepted, KerberosError> {
        let service: String
        switch precheck(token) {
        case .success(let name): service = name
        case .failure(let error): return .failure(error)
        }
        var minor: OM_uint32 = 0
        var credential: gss_cred_id_t?
        let acquired: OM_uint32 = "keytab".withCString { key in
            keytab.path.withCString { path in
                var element = gss_key_value_element_desc(key: key, value: path)
                return withUnsafeMutablePointer(to: &element) { element in
                    var store = gss_key_value_set_desc(count: 1, elements: element)
                    return gss_acquire_cred_from(&minor, nil, gatehouse_gss_indefinite(), nil, Int32(gatehouse_gss_c_accept()), &store, &credential, nil, nil)
                }
            }
        }
        if gatehouse_gss_error(acquired) != 0 { return .failure(.gss("reading the keytab", major: acquired, minor: minor)) }
        defer { gss_release_cred(&minor, &credential) }

        var context: gss_ctx_id_t?
        var source: gss_name_t?
        var output = gss_buffer_desc()
        let major: OM_uint32 = token.withUnsafeBytes { bytes in
            var input = gss_buffer_desc(length: bytes.count, value: UnsafeMutableRawPointer(mutating: bytes.baseAddress))
            return gss_accept_sec_context(&minor, &context, credential, &input, nil, &source, nil, &output, nil, nil, nil)
        }
        defer {
            var ignored: OM_uint32 = 0
            gss_release_buffer(&ignored, &output)
            gss_release_name(&ignored, &source)
            if context != nil { gss_delete_sec_context(&ignored, &context, nil) }
        }
        if gatehouse_gss_error(major) != 0 { return .failure(.gss("the ticket was refused", major: major, minor: minor)) }
        // A second leg is NTLM or another mechanism's handshake: HTTP auth has one round.
        if major == gatehouse_gss_continue_needed() { return .failure(KerberosError("the token needs another round trip (NTLM or a mechanism other than Kerberos)")) }

        guard let principal = Self.display(source) else { return .failure(KerberosError("the ticket names no client")) }
        return .success(Accepted(principal: principal, service: service))
    }

    static func display(_ name: gss_name_t?) -> String? {
        guard let name else { return nil }
        var minor: OM_uint32 = 0
        var buffer = gss_buffer_desc()
        guard gss_display_name(&minor, name, &buffer, nil) == 0, let value = buffer.value else { return nil }
        defer { gss_release_buffer(&minor, &buffer) }
        return String(decoding: UnsafeRawBufferPointer(start: value, count: buffer.length), as: UTF8.self)
    }

    /// What can be said about a token without the keytab, on the event loop: NTLM (a browser
    /// that found no ticket or no SPN falls back to it), no Kerberos AP-REQ at all, or a ticket
    /// for a service `kerberos.principals` does not name. Garbage is refused here, so that
    /// refusing it costs less than the ≈0.3 ms on the shared thread pool a real ticket costs.
    /// Returns the service the ticket names.
    public func precheck(_ token: [UInt8]) -> Result<String, KerberosError> {
        if Self.isNTLM(token) {
            return .failure(KerberosError("an NTLM token in Negotiate: the browser has no Kerberos ticket for this site (no SPN, or it is not on the browser's allow-list); NTLM is not accepted"))
        }
        // The name the ticket was issued for (not the keytab entry that fitted: an account's
        // SPNs share its keys).
        guard let service = APRequest.serviceName(in: token) else { return .failure(KerberosError("the token holds no Kerberos ticket")) }
        if let allowed = configuration.principals, !allowed.contains(where: { $0.lowercased() == service.lowercased() }) {
            return .failure(KerberosError("the ticket is for \(service), which kerberos.principals does not accept"))
        }
        return .success(service)
    }

    /// Raw NTLMSSP, or SPNEGO offering the NTLM mechanism and not Kerberos.
    static func isNTLM(_ token: [UInt8]) -> Bool {
        if token.starts(with: Array("NTLMSSP\u{0}".utf8)) { return true }
        let ntlm: [UInt8] = [0x06, 0x0A, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0A]
        let kerberos: [UInt8] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x12, 0x01, 0x02, 0x02]
        let microsoftKerberos: [UInt8] = [0x2A, 0x86, 0x48, 0x82, 0xF7, 0x12, 0x01, 0x02, 0x02]
        return token.firstRange(of: ntlm) != nil && token.firstRange(of: kerberos) == nil && token.firstRange(of: microsoftKerberos) == nil
    }

    /// `alice@CORP.EXAMPLE` → (`alice`, `CORP.EXAMPLE`); an enterprise name
    /// `alice\@corp.example@CORP.EXAMPLE` → (`alice@corp.example`, `CORP.EXAMPLE`).
    public static func split(_ principal: String) -> (name: String, realm: String)? {
        var name = ""
        var escaped = false
        var index = principal.startIndex
        while index < principal.endIndex {
            let character = principal[index]
            if escaped {
                name.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "@" {
                let realm = String(principal[principal.index(after: index)...])
                return name.isEmpty || realm.isEmpty ? nil : (name, realm)
            } else {
                name.append(character)
            }
            index = principal.index(after: index)
        }
        return nil
    }
}
