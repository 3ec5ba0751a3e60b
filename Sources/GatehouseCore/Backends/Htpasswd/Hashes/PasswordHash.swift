// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Crypto

/// A stored password hash from an htpasswd file, in one of the formats Apache and nginx accept.
///
/// Formats libxcrypt knows (bcrypt `$2y$/$2b$/$2a$`, sha-crypt `$5$/$6$`, md5-crypt `$1$`,
/// yescrypt `$y$`, DES) go through `crypt_rn`; `$apr1$`, `{SHA}`, `{SSHA}` and `{PLAIN}` are
/// computed here. Every comparison is constant-time.
public enum PasswordHash: Sendable, Equatable {
    /// A crypt(3) string verified by libxcrypt.
    case crypt(String)
    /// Apache MD5: the full `$apr1$salt$hash` string.
    case apacheMD5(salt: [UInt8], full: String)
    /// `{SHA}`: base64 of SHA-1(password).
    case sha1(digest: [UInt8])
    /// `{SSHA}`: base64 of SHA-1(password + salt) + salt.
    case saltedSHA1(digest: [UInt8], salt: [UInt8])
    /// `{PLAIN}password`; kept only as a SHA-256 so that comparison time does not leak its length.
    case plain(sha256: [UInt8])
    /// `!…`, `*` or empty: an account that can never log in.
    case locked

    /// Parses the hash field of an htpasswd line.
    public init(parsing field: String) throws(PasswordHashError) {
        if field.isEmpty || field.hasPrefix("!") || field == "*" {
            self = .locked
        } else if field.hasPrefix(ApacheMD5.prefix) {
            let rest = field.utf8.dropFirst(ApacheMD5.prefix.utf8.count)
            guard let dollar = rest.firstIndex(of: UInt8(ascii: "$")) else { throw .malformed("$apr1$ hash without a salt") }
            let salt = Array(rest[..<dollar])
            guard salt.count <= 8, field.utf8.count == ApacheMD5.prefix.utf8.count + salt.count + 1 + 22 else {
                throw .malformed("$apr1$ hash of the wrong length")
            }
            self = .apacheMD5(salt: salt, full: field)
        } else if field.hasPrefix("{SHA}") {
            guard let digest = StrictBase64.decode(field.utf8.dropFirst(5)), digest.count == 20 else {
                throw .malformed("{SHA} hash is not base64 of 20 bytes")
            }
            self = .sha1(digest: digest)
        } else if field.hasPrefix("{SSHA}") {
            guard let blob = StrictBase64.decode(field.utf8.dropFirst(6)), blob.count > 20 else {
                throw .malformed("{SSHA} hash is not base64 of a digest and a salt")
            }
            self = .saltedSHA1(digest: Array(blob.prefix(20)), salt: Array(blob.dropFirst(20)))
        } else if field.hasPrefix("{PLAIN}") {
            let secret = field.utf8.dropFirst(7)
            guard !secret.isEmpty else { throw .malformed("{PLAIN} entry with an empty password") }
            self = .plain(sha256: Array(SHA256.hash(data: Array(secret))))
        } else if Self.isCryptString(field) {
            // Ask libxcrypt now, so an unusable line is reported at load time, not at login.
            // The probe costs a whole hash at the entry's own cost (50 ms for bcrypt 10), which
            // made loading 1,000 users take 50 s; so well-formed bcrypt needs no probe and
            // sha-crypt is probed at 1,000 rounds (see `cheapProbe`).
            switch Self.cheapProbe(field) {
            case .wellFormed: break
            case .tooSlow(let why): throw .unsupported(why)
            case .probe(let setting):
                guard CryptFunction.crypt(phrase: "probe", setting: setting) != nil else {
                    throw .unsupported("libxcrypt cannot verify this hash")
                }
            }
            self = .crypt(field)
        } else {
            throw .unsupported("unknown hash format")
        }
    }

    enum CryptCheck: Equatable {
        /// A form libxcrypt always accepts: nothing to ask.
        case wellFormed
        /// Ask `crypt_rn` with this setting; it fails exactly when the entry's own would.
        case probe(String)
        /// Verifiable, but each login would hold a hashing thread for many seconds to days, so
        /// a few logins could take every thread: the account is locked instead.
        case tooSlow(String)
    }

    /// The highest bcrypt cost Apache's `htpasswd -C` writes (17: about 6 s per login here).
    static let maximumBcryptCost = 17
    /// sha-crypt rounds above this take seconds per login (about 4 s at 10 million).
    static let maximumShaCryptRounds = 10_000_000

    /// What checking a crypt string at load time takes. bcrypt (`$2a$`, `$2b$`, `$2x$`, `$2y$`,
    /// cost 04–31, 53 characters of `./A-Za-z0-9`) is accepted by libxcrypt in every such
    /// spelling (checked against libxcrypt 4.4.33), so it needs no probe. sha-crypt is probed at
    /// 1,000 rounds, libxcrypt's minimum, with the entry's salt; a `rounds=` outside
    /// 1000…999999999 or with a leading zero is probed as written, so libxcrypt refuses it.
    /// Costs that would make every login a denial of service are refused (`tooSlow`). Every
    /// other form is probed as written.
    static func cheapProbe(_ field: String) -> CryptCheck {
        let bytes = Array(field.utf8)
        func digits(_ slice: ArraySlice<UInt8>) -> Int? {
            guard !slice.isEmpty, slice.count <= 9, slice.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
            return slice.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        }
        let dollar = UInt8(ascii: "$")
        if bytes.count == 60, bytes[0] == dollar, bytes[1] == UInt8(ascii: "2"), "abxy".utf8.contains(bytes[2]), bytes[3] == dollar,
            let cost = digits(bytes[4..<6]), (4...31).contains(cost), bytes[6] == dollar, bytes[7...].allSatisfy(isCryptCharacter)
        {
            guard cost <= maximumBcryptCost else {
                return .tooSlow("bcrypt cost \(cost) is above \(maximumBcryptCost), the highest Apache's htpasswd writes: every login would hash for minutes or more")
            }
            return .wellFormed
        }
        if bytes.count > 3, bytes[0] == dollar, bytes[1] == UInt8(ascii: "5") || bytes[1] == UInt8(ascii: "6"), bytes[2] == dollar {
            let prefix = String(decoding: bytes[0..<3], as: UTF8.self)
            let rest = bytes[3...]
            let rounds = Array("rounds=".utf8)
            guard rest.starts(with: rounds) else { return .probe(prefix + "rounds=1000$" + String(decoding: rest, as: UTF8.self)) }
            let afterKey = rest.dropFirst(rounds.count)
            guard let end = afterKey.firstIndex(of: dollar), afterKey.first != UInt8(ascii: "0"),
                let value = digits(afterKey[..<end]), (1000...999_999_999).contains(value)
            else { return .probe(field) }
            guard value <= maximumShaCryptRounds else {
                return .tooSlow("sha-crypt with \(value) rounds is above \(maximumShaCryptRounds): every login would hash for seconds or more")
            }
            return .probe(prefix + "rounds=1000" + String(decoding: afterKey[end...], as: UTF8.self))
        }
        return .probe(field)
    }

    private static func isCryptString(_ field: String) -> Bool {
        if field.hasPrefix("$") { return true }
        // Traditional DES: 13 characters of the crypt alphabet.
        return field.utf8.count == 13 && field.utf8.allSatisfy(isCryptCharacter)
    }

    /// The crypt alphabet (`./0-9A-Za-z`) of DES, bcrypt and sha-crypt salts and digests.
    private static func isCryptCharacter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "/")
    }

    /// Whether `password` matches. Blocking (bcrypt at cost 10 takes ≈ 50 ms): call it off the
    /// event loops, as ``HtpasswdBackend`` does.
    public func verify(_ password: String) -> Bool {
        // Empty passwords and NUL bytes never reach a hash function.
        guard !password.isEmpty, !password.utf8.contains(0) else { return false }
        let bytes = Array(password.utf8)
        switch self {
        case .crypt(let stored):
            guard let computed = CryptFunction.crypt(phrase: password, setting: stored) else { return false }
            return ConstantTime.equals(Array(computed.utf8), Array(stored.utf8))
        case .apacheMD5(let salt, let full):
            return ConstantTime.equals(Array(ApacheMD5.hash(password: bytes, salt: salt).utf8), Array(full.utf8))
        case .sha1(let digest):
            return ConstantTime.equals(Array(Insecure.SHA1.hash(data: bytes)), digest)
        case .saltedSHA1(let digest, let salt):
            return ConstantTime.equals(Array(Insecure.SHA1.hash(data: bytes + salt)), digest)
        case .plain(let sha256):
            return ConstantTime.equals(Array(SHA256.hash(data: bytes)), sha256)
        case .locked:
            return false
        }
    }

    /// Entries of one class cost the same to verify; the unknown-user dummy is taken from the
    /// most common class so that an unknown name answers as slowly as a wrong password.
    var costClass: String {
        switch self {
        case .crypt(let stored):
            guard stored.hasPrefix("$") else { return "des" }
            // "$2y$10$…" → "$2y$10", "$6$rounds=5000$…" → "$6$rounds=5000", "$6$salt$…" → "$6$"
            // Only the first three fields matter: splitting the whole hash each time a refusal
            // is timed cost more than the refusal.
            let parts = stored.split(separator: "$", maxSplits: 3, omittingEmptySubsequences: false)
            guard parts.count > 2 else { return stored }
            if parts[1].hasPrefix("2") || parts[2].hasPrefix("rounds=") { return "$\(parts[1])$\(parts[2])" }
            return "$\(parts[1])$"
        case .apacheMD5: return "apr1"
        case .sha1: return "sha"
        case .saltedSHA1: return "ssha"
        case .plain: return "plain"
        case .locked: return "locked"
        }
    }
}

/// Why an htpasswd hash field could not be used.
public enum PasswordHashError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .malformed(let why), .unsupported(let why): why
        }
    }
}
