// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import CGSSAPI

/// A GSS-API or krb5 failure in words: the library's own messages for the major and minor
/// codes ("Clock skew too great", "Request is a replay", "Key version is not available").
public struct KerberosError: Error, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }

    /// The messages of a GSS-API major/minor pair.
    static func gss(_ step: String, major: OM_uint32, minor: OM_uint32) -> KerberosError {
        var words: [String] = []
        for (code, type) in [(major, gatehouse_gss_c_gss_code()), (minor, gatehouse_gss_c_mech_code())] where code != 0 {
            var context: OM_uint32 = 0
            repeat {
                var ignored: OM_uint32 = 0
                var buffer = gss_buffer_desc()
                let status = gss_display_status(&ignored, code, Int32(type), gatehouse_mech_krb5(), &context, &buffer)
                if status == 0, let value = buffer.value {
                    let text = String(decoding: UnsafeRawBufferPointer(start: value, count: buffer.length), as: UTF8.self)
                    if !text.isEmpty, !words.contains(text) { words.append(text) }
                }
                gss_release_buffer(&ignored, &buffer)
            } while context != 0
        }
        return KerberosError("\(step): " + (words.isEmpty ? "GSS-API error \(major)/\(minor)" : words.joined(separator: "; ")))
    }

    /// The message of a krb5 error code.
    static func krb5(_ step: String, _ context: krb5_context?, _ code: krb5_error_code) -> KerberosError {
        guard let message = krb5_get_error_message(context, code) else { return KerberosError("\(step): krb5 error \(code)") }
        defer { krb5_free_error_message(context, message) }
        return KerberosError("\(step): " + String(cString: message))
    }
}
