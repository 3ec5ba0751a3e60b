// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import CLDAP

/// A libldap failure, with the step it happened in and the server's diagnostic text.
public struct LDAPError: Error, Sendable, CustomStringConvertible {
    /// The steps of a verification, as `gatehouse ldap test` lists them.
    public enum Step: String, Sendable {
        case connect = "connect"
        case tls = "TLS"
        case serviceBind = "service bind"
        case userSearch = "user search"
        case userBind = "user bind"
        case groups = "groups"
    }

    public let code: Int32
    public let message: String
    public let step: Step

    public init(code: Int32, message: String, step: Step) {
        self.code = code
        self.message = message
        self.step = step
    }

    /// The directory could not be reached or did not answer in time: a 503, never a 401.
    public var isUnavailable: Bool {
        code == LDAP_SERVER_DOWN || code == LDAP_TIMEOUT || code == LDAP_CONNECT_ERROR || code == LDAP_UNAVAILABLE || code == LDAP_BUSY
            || code == LDAP_TIMELIMIT_EXCEEDED || code == LDAP_OTHER || code == LDAP_STRONG_AUTH_REQUIRED || code == LDAP_CONFIDENTIALITY_REQUIRED
            || code == LDAP_LOCAL_ERROR
    }

    /// libldap's name for the result code.
    public var codeName: String { String(cString: ldap_err2string(code)) }

    /// Active Directory's sub-code from "… data 52e, …" in the diagnostic text.
    public var activeDirectoryCode: String? {
        let marker = Array("data ".utf8)
        let bytes = Array(message.utf8)
        guard bytes.count > marker.count else { return nil }
        for start in 0...(bytes.count - marker.count) where bytes[start..<(start + marker.count)].elementsEqual(marker) {
            let code = bytes[(start + marker.count)...].prefix { Character(Unicode.Scalar($0)).isHexDigit }
            return code.isEmpty ? nil : String(decoding: code, as: UTF8.self).lowercased()
        }
        return nil
    }

    /// What an AD sub-code means, in words for logs and `gatehouse ldap test`.
    public static func explainActiveDirectory(_ code: String) -> String {
        switch code {
        case "525": "user not found"
        case "52e": "invalid credentials (wrong password, or unknown user)"
        case "530": "not permitted to log on at this time"
        case "531": "not permitted to log on from this workstation"
        case "532": "password expired"
        case "533": "account disabled"
        case "701": "account expired"
        case "773": "user must change the password before logging on"
        case "775": "account locked out"
        default: "Active Directory code \(code)"
        }
    }

    public var description: String {
        var text = "\(step.rawValue) failed: \(codeName) (\(code))"
        if let ad = activeDirectoryCode { text += ", \(Self.explainActiveDirectory(ad))" }
        if !message.isEmpty, message != codeName { text += ": \(message)" }
        return text
    }
}
