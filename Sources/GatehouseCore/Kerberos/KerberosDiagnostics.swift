// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import CGSSAPI
import Glibc

/// `gatehouse kerberos test`: the keytab's entries, a ticket for the service from the KDC
/// accepted back with the keytab (the kvno and enctypes match what the KDC uses), the clock
/// skew to the KDC, and a principal mapped to its user. In words, like `ldap test`.
public enum KerberosDiagnostics {
    public typealias Step = LDAPDiagnostics.Step

    /// Kerberos allows 5 minutes of skew by default; beyond it every ticket is refused.
    static let maximumSkew: Int64 = 300

    public static func run(_ acceptor: KerberosAcceptor, userPassword: (user: String, password: String)?) -> [Step] {
        var steps: [Step] = []
        let clock = ContinuousClock()
        func record(_ name: String, _ body: () -> (Bool, String)) -> Bool {
            let started = clock.now
            let (succeeded, detail) = body()
            steps.append(Step(name: name, succeeded: succeeded, duration: started.duration(to: clock.now), detail: detail))
            return succeeded
        }

        var context: krb5_context?
        guard krb5_init_context(&context) == 0, let context else {
            _ = record("krb5 library") { (false, "krb5_init_context failed: check /etc/krb5.conf (or KRB5_CONFIG)") }
            return steps
        }
        defer { krb5_free_context(context) }

        // 1. The keytab.
        var entries: [(principal: String, kvno: UInt32, enctype: String)] = []
        guard record("keytab", {
            switch readKeytab(context, path: acceptor.keytabPath) {
            case .failure(let error):
                return (false, "\(error)\n  → is \(acceptor.configuration.keytab) a keytab (klist -k)?")
            case .success(let read):
                entries = read
                guard !read.isEmpty else { return (false, "\(acceptor.configuration.keytab) holds no keys\n  → export it again (samba-tool domain exportkeytab, ktpass)") }
                var lines: [String] = []
                for principal in Set(read.map(\.principal)).sorted() {
                    let mine = read.filter { $0.principal == principal }
                    lines.append("\(principal) kvno \(Set(mine.map(\.kvno)).sorted().map(String.init).joined(separator: ",")) (\(mine.map(\.enctype).joined(separator: ", ")))")
                }
                if read.allSatisfy({ $0.enctype.contains("rc4") || $0.enctype.contains("arcfour") }) {
                    lines.append("only RC4 keys: set msDS-SupportedEncryptionTypes 24 (AES) on the account and export the keytab again")
                }
                if let wanted = acceptor.configuration.principals {
                    let missing = wanted.filter { want in !read.contains { $0.principal.lowercased() == want.lowercased() } }
                    if !missing.isEmpty {
                        return (false, lines.joined(separator: "\n  ") + "\n  → kerberos.principals names \(missing.joined(separator: ", ")), which the keytab lacks")
                    }
                }
                return (true, lines.joined(separator: "\n  "))
            }
        }) else { return steps }

        // 2. A ticket from the KDC: as the service itself (its keytab), else as the user given.
        let service = acceptor.configuration.principals?.first ?? entries[0].principal
        var skew: Int64?
        let cacheName = "MEMORY:gatehouse-kerberos-test-\(getpid())"
        var gotTicket = false
        _ = record("ticket from the KDC") {
            switch initialCredentials(context, keytab: acceptor.keytabPath, service: service, userPassword: userPassword, cacheName: cacheName) {
            case .success(let (client, offset)):
                skew = offset
                gotTicket = true
                return (true, "\(client) got a ticket-granting ticket")
            case .failure(let error) where userPassword == nil && error.code == clientUnknown:
                // setspn / samba-tool spn add give the account no UPN equal to the SPN (ktpass
                // /mapuser does): the service cannot log in as itself. Not a fault of the setup.
                return (true, "not checked: the KDC does not take \(service) as a client (its account has no such UPN, as after setspn or samba-tool spn add)\n  → give --user NAME --password-stdin to check the KDC, the clock skew and the kvno with that user's ticket")
            case .failure(let error):
                return (false, "\(error.error)\n  → " + (userPassword == nil
                    ? "the KDC would not give \(service) a ticket with this keytab: the keytab is out of date (a new kvno after a password change) or the SPN is not the account's UPN; with --user NAME --password-stdin the test uses that user's ticket instead"
                    : "check the user's password and that the KDC in krb5.conf is reachable"))
            }
        }
        if let skew {
            _ = record("clock skew") {
                let words = "the KDC's clock is \(abs(skew)) s \(skew >= 0 ? "ahead of" : "behind") this host's"
                return abs(skew) <= maximumSkew ? (true, words) : (false, words + "\n  → tickets are refused beyond \(maximumSkew) s: run NTP (chrony, systemd-timesyncd) against the domain controllers")
            }
        }
        if gotTicket {
            _ = record("service ticket accepted") {
                switch serviceToken(cacheName: cacheName, service: service) {
                case .failure(let error):
                    return (false, "\(error)\n  → does the KDC know the SPN \(service)? (setspn -L / samba-tool spn list)")
                case .success(let token):
                    switch acceptor.acceptNow(token) {
                    case .success(let accepted): return (true, "a ticket for \(accepted.service) decrypts with the keytab: kvno and keys match the KDC's")
                    case .failure(let error):
                        return (false, "\(error)\n  → the keytab does not match the KDC's current key for \(service): export it again after the last password change")
                    }
                }
            }
        }
        var ccache: krb5_ccache?
        if krb5_cc_resolve(context, cacheName, &ccache) == 0 { krb5_cc_destroy(context, ccache) }
        return steps
    }

    private static func readKeytab(_ context: krb5_context, path: String) -> Result<[(principal: String, kvno: UInt32, enctype: String)], KerberosError> {
        var keytab: krb5_keytab?
        var code = krb5_kt_resolve(context, "FILE:" + path, &keytab)
        guard code == 0 else { return .failure(.krb5("opening the keytab", context, code)) }
        defer { krb5_kt_close(context, keytab) }
        var cursor: krb5_kt_cursor?
        code = krb5_kt_start_seq_get(context, keytab, &cursor)
        guard code == 0 else { return .failure(.krb5("reading the keytab", context, code)) }
        defer { krb5_kt_end_seq_get(context, keytab, &cursor) }
        var entries: [(principal: String, kvno: UInt32, enctype: String)] = []
        var entry = krb5_keytab_entry()
        while krb5_kt_next_entry(context, keytab, &entry, &cursor) == 0 {
            var name: UnsafeMutablePointer<CChar>?
            var principal = "?"
            if krb5_unparse_name(context, entry.principal, &name) == 0, let name {
                principal = String(cString: name)
                krb5_free_unparsed_name(context, name)
            }
            entries.append((principal, entry.vno, enctypeName(entry.key.enctype)))
            krb5_free_keytab_entry_contents(context, &entry)
        }
        return .success(entries)
    }

    /// RFC 3961/8009 names (what `klist -ke` prints), without linking libk5crypto for them.
    static func enctypeName(_ enctype: krb5_enctype) -> String {
        switch enctype {
        case 1: "des-cbc-crc"
        case 3: "des-cbc-md5"
        case 16: "des3-cbc-sha1"
        case 17: "aes128-cts-hmac-sha1-96"
        case 18: "aes256-cts-hmac-sha1-96"
        case 19: "aes128-cts-hmac-sha256-128"
        case 20: "aes256-cts-hmac-sha384-192"
        case 23: "arcfour-hmac (RC4)"
        default: "enctype \(enctype)"
        }
    }

    /// A TGT into `cacheName`, and the KDC's clock minus ours.
    /// KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN: "Client not found in Kerberos database".
    static let clientUnknown: krb5_error_code = -1_765_328_378

    struct Failure: Error {
        let error: KerberosError
        let code: krb5_error_code
    }

    private static func initialCredentials(_ context: krb5_context, keytab path: String, service: String, userPassword: (user: String, password: String)?, cacheName: String) -> Result<(String, Int64), Failure> {
        func fail(_ step: String, _ code: krb5_error_code) -> Result<(String, Int64), Failure> { .failure(Failure(error: .krb5(step, context, code), code: code)) }
        var client: krb5_principal?
        let name = userPassword?.user ?? service
        var code = krb5_parse_name(context, name, &client)
        guard code == 0 else { return fail("parsing \(name)", code) }
        defer { krb5_free_principal(context, client) }
        var credentials = krb5_creds()
        if let userPassword {
            code = krb5_get_init_creds_password(context, &credentials, client, userPassword.password, nil, nil, 0, nil, nil)
        } else {
            var keytab: krb5_keytab?
            code = krb5_kt_resolve(context, "FILE:" + path, &keytab)
            guard code == 0 else { return fail("opening the keytab", code) }
            defer { krb5_kt_close(context, keytab) }
            code = krb5_get_init_creds_keytab(context, &credentials, client, keytab, 0, nil, nil)
        }
        guard code == 0 else { return fail("asking the KDC for \(name)'s ticket", code) }
        defer { krb5_free_cred_contents(context, &credentials) }
        let skew = Int64(credentials.times.authtime) - Int64(time(nil))
        var cache: krb5_ccache?
        code = krb5_cc_resolve(context, cacheName, &cache)
        guard code == 0 else { return fail("a memory credential cache", code) }
        defer { krb5_cc_close(context, cache) }
        code = krb5_cc_initialize(context, cache, client)
        if code == 0 { code = krb5_cc_store_cred(context, cache, &credentials) }
        guard code == 0 else { return fail("storing the ticket", code) }
        return .success((name, skew))
    }

    /// A Negotiate token for `service`, made with the ticket in `cacheName` (what a browser sends).
    static func serviceToken(cacheName: String, service: String) -> Result<[UInt8], KerberosError> {
        var minor: OM_uint32 = 0
        var credential: gss_cred_id_t?
        let acquired: OM_uint32 = "ccache".withCString { key in
            cacheName.withCString { value in
                var element = gss_key_value_element_desc(key: key, value: value)
                return withUnsafeMutablePointer(to: &element) { element in
                    var store = gss_key_value_set_desc(count: 1, elements: element)
                    return gss_acquire_cred_from(&minor, nil, gatehouse_gss_indefinite(), nil, Int32(gatehouse_gss_c_initiate()), &store, &credential, nil, nil)
                }
            }
        }
        if gatehouse_gss_error(acquired) != 0 { return .failure(.gss("using the ticket", major: acquired, minor: minor)) }
        defer { gss_release_cred(&minor, &credential) }
        var target: gss_name_t?
        let imported: OM_uint32 = service.withCString { text in
            var buffer = gss_buffer_desc(length: strlen(text), value: UnsafeMutableRawPointer(mutating: text))
            return gss_import_name(&minor, &buffer, gatehouse_nt_principal(), &target)
        }
        if gatehouse_gss_error(imported) != 0 { return .failure(.gss("naming \(service)", major: imported, minor: minor)) }
        defer { gss_release_name(&minor, &target) }
        var context: gss_ctx_id_t?
        var output = gss_buffer_desc()
        let major = gss_init_sec_context(&minor, credential, &context, target, gatehouse_mech_krb5(), 0, 0, nil, nil, nil, &output, nil, nil)
        defer {
            var ignored: OM_uint32 = 0
            gss_release_buffer(&ignored, &output)
            if context != nil { gss_delete_sec_context(&ignored, &context, nil) }
        }
        if gatehouse_gss_error(major) != 0 { return .failure(.gss("asking the KDC for a ticket to \(service)", major: major, minor: minor)) }
        guard let value = output.value else { return .failure(KerberosError("no token")) }
        return .success(Array(UnsafeRawBufferPointer(start: value, count: output.length)))
    }
}
