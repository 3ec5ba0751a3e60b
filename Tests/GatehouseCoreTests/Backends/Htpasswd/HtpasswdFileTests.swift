// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
@testable import GatehouseCore
import Logging
import Testing

@Suite("htpasswd and htgroups files")
struct HtpasswdFileTests {
    @Test func parsesEntriesAndReportsMalformedLines() {
        let text = """
            # comment
            alice:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=

            bob:$apr1$sVflJ26R$svOqQCqJOmq1ftJyOcGbz.:Bob the builder\r
            no-colon-here
            :{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=
            carol:!{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=
            dave:$apr1$broken
            alice:{PLAIN}second-line-loses
            \u{1}eve:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=
              # indented comment
            """
        let file = HtpasswdFile(parsing: text, path: "users")
        #expect(Set(file.entries.keys) == ["alice", "bob", "carol", "dave"])
        #expect(file.entries["alice"]?.verify("correct horse") == true)
        #expect(file.entries["bob"]?.verify("correct horse") == true, "a trailing comment field and CRLF are allowed")
        #expect(file.entries["carol"] == .locked)
        #expect(file.entries["dave"] == .locked, "an unusable hash locks the user instead of letting another backend answer")
        #expect(file.diagnostics.map(\.line) == [5, 6, 8, 9, 10])
        #expect(file.diagnostics.allSatisfy { $0.path == "users" })
        #expect(file.diagnostics[0].description.hasPrefix("users:5: "))
    }

    @Test func timingDummyComesFromTheMostCommonCostClass() throws {
        let text = """
            a:$2y$05$W4CipGcvkSzG1/njsPiPs.WXgvL2UKMDJLhodCfgVCEzsHhAv4/Su
            b:$2y$05$W4CipGcvkSzG1/njsPiPs.WXgvL2UKMDJLhodCfgVCEzsHhAv4/Su
            c:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=
            d:!locked
            """
        let file = HtpasswdFile(parsing: text, path: "users")
        #expect(file.timingDummy?.costClass == "$2y$05")
        #expect(HtpasswdFile(parsing: "x:!\n", path: "p").timingDummy == nil)
    }

    /// `currentGeneration()` runs on the event loop for every cached decision: it only stats
    /// the files. An edit must still stop cached verdicts at once (the generation changes on
    /// the first call that sees it), and the file is re-read on the thread pool.
    @Test func anEditedFileStopsCachedVerdictsAndIsReloadedOffTheCallersThread() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("htpasswd")
        try write("alice:{PLAIN}one\n", to: file)
        let backend = try HtpasswdBackend(name: "local", passwordPath: file.path, groupsPath: nil, logger: Logger(label: "test"))
        let before = backend.currentGeneration()
        try write("alice:{PLAIN}two\nbob:{PLAIN}three\n", to: file)
        try await Task.sleep(for: .milliseconds(1100))
        #expect(backend.currentGeneration() != before, "no verdict cached before the edit counts")
        var reloaded = false
        for _ in 0..<50 where !reloaded {
            try await Task.sleep(for: .milliseconds(20))
            reloaded = backend.generation != before
        }
        #expect(reloaded, "the thread pool re-read the edited file")
        #expect(try await backend.authenticate(BasicCredentials(user: "bob", password: "three")) != .unknownUser)
    }

    @Test func groupsFileFollowsApache() {
        let text = """
            # teams
            pushers: alice bob
            readers:carol\tdave
            pushers: erin
            bad group: x
            no-colon
            empty:
            """
        let groups = HtgroupsFile(parsing: text, path: "groups")
        #expect(groups.groups(of: "alice") == ["pushers"])
        #expect(groups.groups(of: "erin") == ["pushers"], "a group may span several lines")
        #expect(groups.groups(of: "dave") == ["readers"])
        #expect(groups.groups(of: "nobody") == [])
        #expect(groups.diagnostics.map(\.line) == [5, 6])
    }

    /// Found by the fuzzer: Swift's Characters join a combining mark to the delimiter before it,
    /// nginx and Apache read bytes. Both files must split where nginx and Apache do.
    @Test func delimitersFollowedByCombiningMarksStillDelimit() {
        let passwords = HtpasswdFile(parsing: "#\u{301}alice:{PLAIN}pw\nali:\u{301}ce:{PLAIN}pw\n", path: "p")
        #expect(passwords.entries["#\u{301}alice"] == nil, "a comment, as nginx reads it")
        #expect(passwords.entries["ali"] != nil, "the user is what comes before the first ':' byte")
        #expect(passwords.entries.keys.allSatisfy { !$0.unicodeScalars.contains(":") })
        let groups = HtgroupsFile(parsing: "pushers: alice \u{301}bob\nadm:\u{301}ins: carol\n", path: "g")
        #expect(groups.groups(of: "alice") == ["pushers"])
        #expect(groups.groups(of: "\u{301}bob") == ["pushers"])
        #expect(groups.groupsByUser.values.allSatisfy { $0.allSatisfy { !$0.unicodeScalars.contains(":") } })
    }
}
