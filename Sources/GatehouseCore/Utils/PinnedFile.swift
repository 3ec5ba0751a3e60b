// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Glibc

/// A private copy of a file's contents as they were when a configuration was loaded, under a
/// path that only this process can open (`/proc/self/fd/N` of an unlinked temporary file).
///
/// libldap reads its CA file again for every new connection, and MIT Kerberos its keytab for
/// every ticket: without a copy, replacing the file on disk would change the running
/// configuration behind its back, even when the reload that the change triggers is refused.
final class PinnedFile: Sendable {
    /// The path to hand to a library that wants a file name.
    let path: String
    private let descriptor: Int32

    init(copying original: String) throws(FileReadError) {
        // Bytes, not text: a keytab is binary.
        let bytes = try readFile(original)
        var template = Array("\(Self.temporaryDirectory)/gatehouse-pinned-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { throw FileReadError(path: original, reason: "cannot make a private copy: \(String(cString: strerror(errno)))") }
        // Nobody else can open it by name from now on.
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            close(descriptor)
            throw FileReadError(path: original, reason: "cannot make a private copy")
        }
        self.descriptor = descriptor
        path = "/proc/self/fd/\(descriptor)"
    }

    deinit { close(descriptor) }

    private static var temporaryDirectory: String {
        getenvString("TMPDIR").flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    }
}
