// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Glibc

/// Runs a program to completion with posix_spawn and waitpid, feeding `input` and collecting
/// both outputs. Foundation's Process was seen to hang in waitUntilExit on Linux under
/// concurrent tests; this has no run loop and no SIGCHLD handling to lose.
public struct ChildProcess: Sendable {
    public let status: Int32
    public let output: String
    public let error: String

    public static func run(_ arguments: [String], input: String = "") throws -> ChildProcess {
        var stdinPipe: [Int32] = [0, 0]
        var stdoutPipe: [Int32] = [0, 0]
        var stderrPipe: [Int32] = [0, 0]
        guard pipe(&stdinPipe) == 0, pipe(&stdoutPipe) == 0, pipe(&stderrPipe) == 0 else { throw SpawnFailed(arguments: arguments, code: errno) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)
        for descriptor in stdinPipe + stdoutPipe + stderrPipe { posix_spawn_file_actions_addclose(&actions, descriptor) }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ)
        close(stdinPipe[0])
        close(stdoutPipe[1])
        close(stderrPipe[1])
        guard spawned == 0 else {
            close(stdinPipe[1])
            close(stdoutPipe[0])
            close(stderrPipe[0])
            throw SpawnFailed(arguments: arguments, code: spawned)
        }
        var bytes = Array(input.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeMutableBytes { write(stdinPipe[1], $0.baseAddress, $0.count) }
            if count <= 0 { break }
            written += count
        }
        close(stdinPipe[1])
        var output: [UInt8] = []
        var error: [UInt8] = []
        var open = [stdoutPipe[0], stderrPipe[0]]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard poll(&fds, nfds_t(fds.count), -1) >= 0 || errno == EINTR else { break }
            for descriptor in fds where descriptor.revents != 0 {
                let count = read(descriptor.fd, &buffer, buffer.count)
                if count > 0 {
                    if descriptor.fd == stdoutPipe[0] { output += buffer[0..<count] } else { error += buffer[0..<count] }
                } else if count == 0 || errno != EINTR {
                    close(descriptor.fd)
                    open.removeAll { $0 == descriptor.fd }
                }
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exitCode = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return ChildProcess(status: exitCode, output: String(decoding: output, as: UTF8.self), error: String(decoding: error, as: UTF8.self))
    }
}

/// posix_spawn failed.
public struct SpawnFailed: Error, CustomStringConvertible {
    public let arguments: [String]
    public let code: Int32
    public var description: String { "cannot run \(arguments.joined(separator: " ")): \(String(cString: strerror(code)))" }
}
