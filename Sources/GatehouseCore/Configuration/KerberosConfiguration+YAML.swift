// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Glibc
import Yams

extension KerberosConfiguration {
    /// `kerberos:` — nil when the section is absent or unusable (the errors are in `reader`).
    static func read(_ node: Node?, backends: [BackendConfiguration], reader: YAMLReader, baseDirectory: String) -> KerberosConfiguration? {
        guard let kerberos = reader.mapping(node, key: "kerberos", allowed: ["keytab", "principals", "backend"]) else { return nil }
        let keytab = reader.string(kerberos["keytab"], key: "kerberos.keytab")
        let backend = reader.string(kerberos["backend"], key: "kerberos.backend")
        if keytab == nil { reader.fail("kerberos.keytab", node, "is required: the service's keytab file") }
        if backend == nil { reader.fail("kerberos.backend", node, "is required: the ldap backend that maps principals to users") }
        let principals = reader.strings(kerberos["principals"], key: "kerberos.principals")
        if let principals, principals.isEmpty || principals.contains(where: { !$0.contains("@") || $0.containsControlCharacter }) {
            reader.fail("kerberos.principals", kerberos["principals"], "names service principals such as HTTP/gate.corp.example@CORP.EXAMPLE (omit it to accept any in the keytab)")
        }
        if let backend {
            switch backends.first(where: { $0.name == backend }) {
            case .ldap?: break
            case .htpasswd?: reader.fail("kerberos.backend", kerberos["backend"], "names an htpasswd backend; principals are mapped through an ldap backend")
            case nil: reader.fail("kerberos.backend", kerberos["backend"], "names no backend under `backends`")
            }
        }
        if let keytab, let backend {
            let path = Configuration.resolve(keytab, baseDirectory)
            if access(path, R_OK) != 0 { reader.fail("kerberos.keytab", kerberos["keytab"], "cannot read \(path): \(String(cString: strerror(errno)))") }
            return KerberosConfiguration(keytab: path, principals: principals, backend: backend)
        }
        return nil
    }
}
