// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Glibc

/// Reads a whole text file; throws with the path and the system's reason.
func readTextFile(_ path: String) throws(FileReadError) -> String {
    let bytes = try readFile(path)
    guard let text = String(validating: bytes, as: UTF8.self) else { throw FileReadError(path: path, reason: "not valid UTF-8") }
    return text
}

/// The bytes of a file of at most 64 MiB.
func readFile(_ path: String) throws(FileReadError) -> [UInt8] {
    guard let file = fopen(path, "rb") else { throw FileReadError(path: path, reason: String(cString: strerror(errno))) }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count > 0 { bytes.append(contentsOf: buffer[0..<count]) }
        if count < buffer.count {
            if ferror(file) != 0 { throw FileReadError(path: path, reason: String(cString: strerror(errno))) }
            break
        }
        // A credentials file of more than 64 MiB is a mistake, not a user list.
        if bytes.count > 64 << 20 { throw FileReadError(path: path, reason: "file larger than 64 MiB") }
    }
    return bytes
}

/// A file could not be read.
public struct FileReadError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "cannot read \(path): \(reason)" }
}
