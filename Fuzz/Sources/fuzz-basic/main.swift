// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

// Fuzzes `BasicCredentials(authorizationHeader:)`.
//
// Input: the `Authorization` header value. An input starting with byte 0x01 (never a valid
// header) is instead the decoded credential bytes, wrapped here as `Basic <base64>`, so that
// the fuzzer also explores what the credentials contain and not only the base64 around them.
//
// Invariants (beyond not crashing):
// 1. Accepted credentials: the user is non-empty, at most 256 bytes, without ':' or control
//    characters; the password is non-empty, at most 512 bytes, without NUL.
// 2. One spelling: the token of an accepted header is exactly the canonical base64 of
//    `user:password` (so two different headers never give the same credentials, except for
//    the case of "Basic" and the spaces around the token).
// 3. Parse → render → parse: `Basic ` + canonical base64 of `user:password` parses to the same
//    bytes, and `BasicCredentials(user:password:)` accepts the same pair.
// 4. Differential: a reference parser written from RFC 7617 / RFC 4648 here accepts exactly
//    the same headers, with the same user and password bytes.

import FuzzSupport
import GatehouseCore

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    warmUp(["Basic YWxpY2U6czNjcmV0", "basic Og==", "Basic !"], fuzz)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let header: String
    if size > 0, data[0] == 0x01 {
        let credentials = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
        header = "Basic " + String(decoding: canonicalBase64(credentials), as: UTF8.self)
    } else {
        header = text(data, size)
    }
    check(header)
    return 0
}

func check(_ header: String) {
    let parsed = try? BasicCredentials(authorizationHeader: header)
    let expected = reference(Array(header.utf8))
    switch (parsed, expected) {
    case (nil, nil):
        return
    case (let parsed?, nil):
        violation("accepted \(shown(header)) as user \(shown(parsed.user)) password \(shown(parsed.password)); the reference refuses it")
    case (nil, let expected?):
        violation("refused \(shown(header)); the reference reads user \(shown(expected.user)) password \(shown(expected.password))")
    case (let parsed?, let expected?):
        invariant(Array(parsed.user.utf8) == expected.user && Array(parsed.password.utf8) == expected.password,
                  "\(shown(header)): user \(shown(parsed.user)) password \(shown(parsed.password)), reference \(shown(expected.user)) \(shown(expected.password))")
        checkAccepted(parsed, header: header)
    }
}

func checkAccepted(_ credentials: BasicCredentials, header: String) {
    let user = Array(credentials.user.utf8)
    let password = Array(credentials.password.utf8)
    // 1.
    invariant(!user.isEmpty && user.count <= 256, "user length \(user.count) of \(shown(header))")
    invariant(!password.isEmpty && password.count <= 512, "password length \(password.count) of \(shown(header))")
    invariant(!user.contains(UInt8(ascii: ":")), "user \(shown(credentials.user)) contains ':'")
    invariant(!hasControl(credentials.user), "user \(shown(credentials.user)) contains a control character")
    invariant(!password.contains(0), "password of \(shown(header)) contains NUL")
    invariant(header.utf8.count <= 4096, "accepted a header of \(header.utf8.count) bytes")
    // 2.
    let canonical = canonicalBase64(user + [UInt8(ascii: ":")] + password)
    let token = tokenBytes(Array(header.utf8))
    invariant(token == canonical, "\(shown(header)) is accepted but its token is not the canonical \(shown(canonical))")
    // 3.
    let rendered = "Basic " + String(decoding: canonical, as: UTF8.self)
    guard let again = try? BasicCredentials(authorizationHeader: rendered) else {
        violation("\(shown(rendered)), rendered from \(shown(header)), is refused")
    }
    invariant(Array(again.user.utf8) == user && Array(again.password.utf8) == password, "\(shown(rendered)) parses differently from \(shown(header))")
    guard let built = try? BasicCredentials(user: credentials.user, password: credentials.password) else {
        violation("BasicCredentials(user:password:) refuses what the header parser accepted from \(shown(header))")
    }
    invariant(built == credentials, "BasicCredentials(user:password:) differs for \(shown(header))")
}

/// The bytes after `Basic` and its spaces, without trailing spaces and tabs.
func tokenBytes(_ header: [UInt8]) -> [UInt8] {
    var token = header.dropFirst(5)
    while token.first == UInt8(ascii: " ") { token = token.dropFirst() }
    while token.last == UInt8(ascii: " ") || token.last == UInt8(ascii: "\t") { token = token.dropLast() }
    return Array(token)
}

/// RFC 7617 as Gatehouse documents it: scheme `Basic` in any case, one or more spaces, the
/// canonical base64 of `user:password` (trailing spaces or tabs allowed), user and password
/// valid UTF-8, user without control characters, password without NUL, length limits.
func reference(_ header: [UInt8]) -> (user: [UInt8], password: [UInt8])? {
    guard header.count <= 4096, header.count > 6 else { return nil }
    let lowered = header.prefix(6).map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 }
    guard lowered == Array("basic ".utf8) else { return nil }
    let token = tokenBytes(header)
    guard let decoded = lenientBase64(token), canonicalBase64(decoded) == token else { return nil }
    guard let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { return nil }
    let user = Array(decoded[..<colon])
    let password = Array(decoded[(colon + 1)...])
    guard let userText = String(validating: user, as: UTF8.self), String(validating: password, as: UTF8.self) != nil else { return nil }
    guard !user.isEmpty, !password.isEmpty, user.count <= 256, password.count <= 512 else { return nil }
    guard !hasControl(userText), !password.contains(0) else { return nil }
    return (user, password)
}
