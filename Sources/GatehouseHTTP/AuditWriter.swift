// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
import GatehouseCore
import Glibc
import NIOConcurrencyHelpers

/// Writes audit lines to standard error in batches, from a thread of its own, so that an event
/// loop never waits for the journal or a pipe (nginx's `access_log … buffer= flush=`).
///
/// Lines arrive already formatted; ``append(_:)`` takes a lock, copies the bytes and returns.
/// The writer thread wakes every `flushInterval`, or sooner once `batchBytes` are waiting, and
/// writes everything with one `write(2)` per batch of whole lines. ``shutdown()`` (a graceful
/// stop) writes what is left before the process exits. If standard error stalls and more than
/// `maximumBacklog` bytes wait, new lines are counted and dropped instead of growing memory
/// without bound, and the count is written as a line of its own once writing resumes.
public final class AuditWriter: Sendable {
    private struct State {
        var pending: [UInt8] = []
        var dropped = 0
        var stopping = false
    }

    private let state = NIOLockedValueBox(State())
    private let wakeUp = NSCondition()
    private let finished = NIOLockedValueBox(false)
    private let descriptor: Int32
    private let flushInterval: TimeInterval
    private let batchBytes: Int
    private let maximumBacklog: Int

    /// Starts the writer thread.
    public init(descriptor: Int32 = 2, flushInterval: Duration = .milliseconds(50), batchBytes: Int = 64 * 1024, maximumBacklog: Int = 16 * 1024 * 1024) {
        self.descriptor = descriptor
        self.flushInterval = Double(flushInterval.nanoseconds) / 1e9
        self.batchBytes = batchBytes
        self.maximumBacklog = maximumBacklog
        Thread.detachNewThread { [self] in self.run() }
    }

    /// Queues one whole line (ending in a newline).
    public func append(_ line: String) {
        var line = line
        let full = line.withUTF8 { bytes in
            state.withLockedValue { state -> Bool in
                if state.stopping {
                    _ = write(descriptor, bytes.baseAddress, bytes.count)
                    return false
                }
                guard state.pending.count + bytes.count <= maximumBacklog else {
                    state.dropped += 1
                    return false
                }
                state.pending.append(contentsOf: bytes)
                return state.pending.count >= batchBytes
            }
        }
        if full { wakeUp.signal() }
    }

    /// Writes everything queued and stops the thread; lines appended afterwards are written
    /// directly.
    public func shutdown() {
        state.withLockedValue { $0.stopping = true }
        wakeUp.signal()
        while !finished.withLockedValue({ $0 }) { usleep(1000) }
        writeOut()
    }

    private func run() {
        while true {
            wakeUp.lock()
            _ = wakeUp.wait(until: Date(timeIntervalSinceNow: flushInterval))
            wakeUp.unlock()
            writeOut()
            if state.withLockedValue({ $0.stopping }) { break }
        }
        finished.withLockedValue { $0 = true }
    }

    private func writeOut() {
        let (batch, dropped) = state.withLockedValue { state -> ([UInt8], Int) in
            defer {
                state.pending.removeAll(keepingCapacity: true)
                state.dropped = 0
            }
            return (state.pending, state.dropped)
        }
        var bytes = batch
        if dropped > 0 { bytes += Array("audit: \(dropped) lines dropped while standard error was not writable\n".utf8) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in write(descriptor, raw.baseAddress! + offset, raw.count - offset) }
            if written < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return
            }
            offset += written
        }
    }
}
