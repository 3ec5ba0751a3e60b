// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// Makes htpasswd lines, for `gatehouse hash`.
public enum PasswordHasher {
    /// The schemes offered for new hashes.
    public enum Algorithm: String, Sendable, CaseIterable {
        /// `$2y$`, cost 4…17 (default 10; 17 is Apache's limit and the loader's).
        case bcrypt
        /// sha512-crypt `$6$`, cost = rounds 1000…10,000,000 (default 5000; the loader's limit).
        case sha512
        /// Apache `$apr1$` (no cost).
        case apr1
    }

    /// The hash of `password` as it goes after `user:` in an htpasswd file.
    public static func hash(password: String, algorithm: Algorithm, cost: Int?) throws(PasswordHasherError) -> String {
        guard !password.isEmpty else { throw .invalid("the password is empty") }
        guard !password.utf8.contains(0) else { throw .invalid("the password contains a NUL byte") }
        guard password.utf8.count <= BasicCredentials.maximumPasswordLength else { throw .invalid("the password is longer than 512 bytes") }
        let setting: String?
        switch algorithm {
        case .bcrypt:
            let cost = cost ?? 10
            guard (4...PasswordHash.maximumBcryptCost).contains(cost) else { throw .invalid("bcrypt cost must be 4 to \(PasswordHash.maximumBcryptCost)") }
            if password.utf8.count > 72 { throw .invalid("bcrypt uses only the first 72 bytes of a password; choose sha512") }
            setting = CryptFunction.generateSetting(prefix: "$2y$", cost: UInt(cost))
        case .sha512:
            if let cost, !(1000...PasswordHash.maximumShaCryptRounds).contains(cost) { throw .invalid("sha512 rounds must be 1000 to \(PasswordHash.maximumShaCryptRounds)") }
            setting = CryptFunction.generateSetting(prefix: "$6$", cost: UInt(cost ?? 0))
        case .apr1:
            guard cost == nil else { throw .invalid("apr1 has no cost") }
            return ApacheMD5.hash(password: Array(password.utf8), salt: ApacheMD5.randomSalt())
        }
        guard let setting, let hash = CryptFunction.crypt(phrase: password, setting: setting) else {
            throw .invalid("libxcrypt could not hash with \(algorithm.rawValue)")
        }
        return hash
    }
}

/// Why no hash was made.
public enum PasswordHasherError: Error, Sendable, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self {
        case .invalid(let why): why
        }
    }
}
