// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
import GatehouseCore
import Testing

@Suite("Basic credentials (RFC 7617)")
struct BasicCredentialsTests {
    static func header(_ raw: [UInt8], scheme: String = "Basic") -> String {
        "\(scheme) \(Data(raw).base64EncodedString())"
    }

    @Test(arguments: [
        (header(Array("alice:s3cret".utf8)), "alice", "s3cret"),
        (header(Array("alice:s3cret".utf8), scheme: "basic"), "alice", "s3cret"),
        (header(Array("alice:s3cret".utf8), scheme: "BASIC"), "alice", "s3cret"),
        // The user-id ends at the first colon; the password may contain more.
        (header(Array("alice:pa:ss:word".utf8)), "alice", "pa:ss:word"),
        (header(Array("jörg:pässwörd".utf8)), "jörg", "pässwörd"),
        ("Basic   " + Data("bob:x".utf8).base64EncodedString() + "  ", "bob", "x"),
    ])
    func accepts(header: String, user: String, password: String) throws {
        let credentials = try BasicCredentials(authorizationHeader: header)
        #expect(credentials.user == user)
        #expect(credentials.password == password)
    }

    @Test(arguments: [
        ("", BasicCredentialsError.notBasic),
        ("Basic", .notBasic),
        ("Bearer abc.def", .notBasic),
        ("Basicx YWxpY2U6eA==", .notBasic),
        ("Digest username=\"alice\"", .notBasic),
        ("Basic !!!!", .badBase64),
        ("Basic YWxpY2U6eA", .badBase64),  // missing padding
        ("Basic YWxpY2U6eB==", .badBase64),  // non-zero bits under the padding
        ("Basic YWxp Y2U6eA==", .badBase64),
        ("Basic YWxpY2U6eA==YWxp", .badBase64),
        ("Basic -_-_", .badBase64),  // URL-safe alphabet
        (header(Array("alice".utf8)), .missingColon),
        (header(Array(":secret".utf8)), .emptyUser),
        (header(Array("alice:".utf8)), .emptyPassword),
        (header([0x61, 0x6C, 0xFF, 0x3A, 0x78]), .badUTF8),
        (header(Array("ali\u{0}ce:x".utf8)), .controlCharacter),
        (header(Array("alice\n:x".utf8)), .controlCharacter),
        (header(Array("alice:se\u{0}cret".utf8)), .controlCharacter),
        (header(Array("*)(uid=*\u{7F}:x".utf8)), .controlCharacter),
        (header(Array(String(repeating: "a", count: 300).utf8) + Array(":x".utf8)), .tooLong),
        (header(Array("a:".utf8) + Array(String(repeating: "p", count: 600).utf8)), .tooLong),
        ("Basic " + String(repeating: "A", count: 5000), .tooLong),
    ])
    func refuses(header: String, expected: BasicCredentialsError) {
        #expect(throws: expected) { try BasicCredentials(authorizationHeader: header) }
    }

    @Test func hostileButValidUserNamesParse() throws {
        // LDAP metacharacters are legal in a user-id; backends must escape them, not the parser.
        let credentials = try BasicCredentials(authorizationHeader: Self.header(Array("*)(uid=*:pw".utf8)))
        #expect(credentials.user == "*)(uid=*")
    }
}
