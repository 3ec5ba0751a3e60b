// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
@testable import GatehouseCore
import Testing

@Suite("Password hashes")
struct PasswordHashTests {
    static let password = "correct horse"

    /// Every format, generated now by the tools operators use.
    static let generators: [(String, [String])] = [
        ("htpasswd bcrypt $2y$", ["htpasswd", "-nbB", "-C", "5", "u", password]),
        ("htpasswd apr1", ["htpasswd", "-nbm", "u", password]),
        ("htpasswd {SHA}", ["htpasswd", "-nbs", "u", password]),
        ("htpasswd DES", ["htpasswd", "-nbd", "u", "password"]),
        ("htpasswd sha512 $6$", ["htpasswd", "-nb5", "u", password]),
        ("htpasswd sha256 $5$", ["htpasswd", "-nb2", "u", password]),
        ("openssl $6$", ["openssl", "passwd", "-6", password]),
        ("openssl $5$", ["openssl", "passwd", "-5", password]),
        ("openssl $1$", ["openssl", "passwd", "-1", password]),
        ("openssl apr1", ["openssl", "passwd", "-apr1", password]),
        ("mkpasswd bcrypt $2b$", ["mkpasswd", "-m", "bcrypt", "-R", "5", password]),
        ("mkpasswd bcrypt-a $2a$", ["mkpasswd", "-m", "bcrypt-a", "-R", "5", password]),
        ("mkpasswd sha512crypt rounds", ["mkpasswd", "-m", "sha512crypt", "-R", "6000", password]),
        ("mkpasswd yescrypt", ["mkpasswd", "-m", "yescrypt", password]),
        ("slappasswd {SSHA}", ["slappasswd", "-h", "{SSHA}", "-s", password]),
        ("slappasswd {SHA}", ["slappasswd", "-h", "{SHA}", "-s", password]),
    ]

    @Test(arguments: generators)
    func generatedHashVerifies(name: String, command: [String]) throws {
        var output = try tool(command)
        if command[0] == "htpasswd" { output = String(output.dropFirst(2)) }  // "u:"
        let hash = try PasswordHash(parsing: output)
        let right = command.contains("password") ? "password" : Self.password
        #expect(hash.verify(right), "\(name): \(output)")
        // Prefix, not suffix: DES reads only 8 characters and bcrypt 72.
        #expect(!hash.verify("x" + right), "\(name)")
        #expect(!hash.verify("Correct horse"), "\(name)")
        #expect(!hash.verify(""), "\(name)")
    }

    /// Vectors measured in notes/c-interop.md.
    @Test(arguments: [
        ("$apr1$sVflJ26R$svOqQCqJOmq1ftJyOcGbz.", "correct horse"),
        ("{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=", "correct horse"),
        ("{SSHA}8icLGvgg4yrPo8E9ht9SUsVsxW6PUz1x", "correct horse"),
        ("$2y$05$W4CipGcvkSzG1/njsPiPs.WXgvL2UKMDJLhodCfgVCEzsHhAv4/Su", "correct horse"),
        ("$6$4PT7w3A2dew21lSb$xsYRUVgkbiw7yF6ScHsrHJONHRMe/FiqerxFCsr8ZrAbLTv5GiEp3JRfC6hfWCccMMb3iHBpJwBRyEwtOa60V0", "correct horse"),
        ("$1$5qfQ194v$azBMIpTtZiI.eJ9tx85vv.", "correct horse"),
        ("0LBAhK6hnnmlc", "password"),
        ("{PLAIN}correct horse", "correct horse"),
    ])
    func committedVector(hash: String, password: String) throws {
        let parsed = try PasswordHash(parsing: hash)
        #expect(parsed.verify(password))
        #expect(!parsed.verify("!" + password))
    }

    @Test func apacheMD5MatchesApacheForAnEmptyPassword() {
        // htpasswd -m of "" (notes/c-interop.md): our implementation must agree byte for byte.
        #expect(ApacheMD5.hash(password: [], salt: Array("QUUaQhsC".utf8)) == "$apr1$QUUaQhsC$wtiseRtepIiOWMxbh2Cuk/")
    }

    @Test func nulBytesNeverReachCrypt() throws {
        // crypt would read "correct horse\0junk" as "correct horse" and say yes.
        let bcrypt = try PasswordHash(parsing: "$2y$05$W4CipGcvkSzG1/njsPiPs.WXgvL2UKMDJLhodCfgVCEzsHhAv4/Su")
        #expect(!bcrypt.verify("correct horse\u{0}junk"))
        let sha = try PasswordHash(parsing: "{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=")
        #expect(!sha.verify("correct horse\u{0}"))
    }

    @Test(arguments: ["!$2y$05$W4CipGcvkSzG1/njsPiPs.WXgvL2UKMDJLhodCfgVCEzsHhAv4/Su", "*", "", "!"])
    func lockedEntriesNeverMatch(field: String) throws {
        let hash = try PasswordHash(parsing: field)
        #expect(hash == .locked)
        #expect(!hash.verify("correct horse"))
        #expect(!hash.verify(""))
    }

    @Test(arguments: ["$apr1$short", "{SHA}notbase64", "{SSHA}QUJD", "$9$unknown$scheme", "plaintext-password", "{PLAIN}"])
    func unusableFieldsAreRefused(field: String) {
        #expect(throws: PasswordHashError.self) { try PasswordHash(parsing: field) }
    }

    /// Loading an htpasswd file checks every crypt entry with libxcrypt. A full probe costs the
    /// entry's own hash (50 ms for bcrypt 10, a minute for 1,000 users), so the cheap check must
    /// accept and refuse exactly what the full probe does; here on forms cheap enough to probe.
    @Test(arguments: [
        "$2y$04$abcdefghijklmnopqrstuu5Zr0z1wV9v0Ux8hY7Oj4zQ0ZcYvY9xS",
        "$2a$04$////////////////////////////////////////////////////.",
        "$2b$05$zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        "$2x$04$9999999999999999999999999999999999999999999999999999Z",
        "$2y$03$abcdefghijklmnopqrstuu5Zr0z1wV9v0Ux8hY7Oj4zQ0ZcYvY9xS",
        "$2q$04$abcdefghijklmnopqrstuu5Zr0z1wV9v0Ux8hY7Oj4zQ0ZcYvY9xS",
        "$2y$04$abcdefghijklmnopqrstuu5Zr0z1wV9v0Ux8hY7Oj4zQ0ZcYvY9x",
        "$2y$04$abcdefghijklmnopqrstuu5Zr0z1wV9v0Ux8hY7Oj4zQ0ZcYvY9x!",
        "$2y$4$abcdefghijklmnopqrstuu5Zr0z1wV9v0Ux8hY7Oj4zQ0ZcYvY9xSS",
        "$5$saltsaltsaltsalt$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ",
        "$6$rounds=1000$salt$abc", "$6$rounds=1500$salt$abc", "$5$rounds=999$salt$abc", "$5$rounds=01000$salt$abc",
        "$6$rounds=1000000000$salt$abc", "$6$rounds=$salt$abc", "$6$rounds=abc$salt$abc", "$6$rounds=1000",
        "$6$$abc", "$6$sa:lt$abc", "$6$salt", "$5$", "$6$rounds=1000$$abc", "$1$salt$abc", "$y$garbage", "$7$abc",
    ])
    func loadTimeCheckAgreesWithAFullProbe(field: String) {
        let accepted = (try? PasswordHash(parsing: field)) != nil
        let probed = CryptFunction.crypt(phrase: "probe", setting: field) != nil
        #expect(accepted == probed, "\(PasswordHash.cheapProbe(field))")
    }

    @Test func wellFormedBcryptIsNotHashedAtLoad() {
        // Cost 17 takes seconds to hash: parsing must not try.
        let field = "$2y$17$abcdefghijklmnopqrstuu5Zr0z1wV9v0Ux8hY7Oj4zQ0ZcYvY9xS"
        #expect(PasswordHash.cheapProbe(field) == .wellFormed)
        #expect((try? PasswordHash(parsing: field)) == .crypt(field))
        #expect(PasswordHash.cheapProbe("$6$rounds=656000$salt$abc") == .probe("$6$rounds=1000$salt$abc"))
        #expect(PasswordHash.cheapProbe("$6$salt$abc") == .probe("$6$rounds=1000$salt$abc"))
    }

    /// An entry whose every verification takes minutes (bcrypt 31 takes days) would let a few
    /// logins hold every hashing thread: it locks the account, with the reason at load.
    @Test func costsThatWouldStallEveryLoginLockTheAccount() {
        let file = HtpasswdFile(parsing: """
            slow:$2y$31$abcdefghijklmnopqrstuu5Zr0z1wV9v0Ux8hY7Oj4zQ0ZcYvY9xS
            slower:$6$rounds=999999999$salt$abc
            fine:$2y$17$abcdefghijklmnopqrstuu5Zr0z1wV9v0Ux8hY7Oj4zQ0ZcYvY9xS
            """, path: "p")
        #expect(file.entries["slow"] == .locked)
        #expect(file.entries["slower"] == .locked)
        #expect(file.entries["fine"] != .locked)
        #expect(file.diagnostics.map(\.line) == [1, 2])
        #expect(file.diagnostics.first?.message.contains("bcrypt cost 31 is above 17") == true, "\(file.diagnostics)")
    }

    @Test(arguments: PasswordHasher.Algorithm.allCases)
    func hasherOutputIsVerifiedByApachesHtpasswd(algorithm: PasswordHasher.Algorithm) throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let hash = try PasswordHasher.hash(password: "pässword 1", algorithm: algorithm, cost: algorithm == .bcrypt ? 5 : nil)
        let file = directory.appendingPathComponent("htpasswd")
        try write("alice:\(hash)\n", to: file)
        #expect(try tool(["htpasswd", "-vb", file.path, "alice", "pässword 1"]).isEmpty)
        #expect(throws: ToolFailed.self) { try tool(["htpasswd", "-vb", file.path, "alice", "wrong"]) }
        #expect(try PasswordHash(parsing: hash).verify("pässword 1"))
    }

    @Test func hasherRefusesWhatWouldBeSilentlyWeak() {
        #expect(throws: PasswordHasherError.self) { try PasswordHasher.hash(password: "", algorithm: .bcrypt, cost: nil) }
        #expect(throws: PasswordHasherError.self) { try PasswordHasher.hash(password: "a\u{0}b", algorithm: .sha512, cost: nil) }
        #expect(throws: PasswordHasherError.self) { try PasswordHasher.hash(password: String(repeating: "x", count: 73), algorithm: .bcrypt, cost: 5) }
        #expect(throws: PasswordHasherError.self) { try PasswordHasher.hash(password: "x", algorithm: .bcrypt, cost: 3) }
        // Nor what the loader would lock as too slow to verify.
        #expect(throws: PasswordHasherError.self) { try PasswordHasher.hash(password: "x", algorithm: .bcrypt, cost: 18) }
        #expect(throws: PasswordHasherError.self) { try PasswordHasher.hash(password: "x", algorithm: .sha512, cost: 10_000_001) }
    }
}
