// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import CLDAP
import Dispatch
import Glibc
import NIOConcurrencyHelpers

/// Bounds the TLS handshake of a new LDAP connection.
///
/// libldap 2.5 (GnuTLS) does not honour `LDAP_OPT_NETWORK_TIMEOUT` during the handshake of
/// `ldaps://` or StartTLS: against a server that accepts the TCP connection and then stops
/// answering, `ldap_connect` spins on EAGAIN at 100 % CPU, forever (measured with a SIGSTOPped
/// slapd). A connect callback hands us the socket before the handshake; if the deadline passes
/// first, we shut the socket down, the handshake fails, and the caller reports the directory
/// unavailable.
final class LDAPHandshakeWatchdog: @unchecked Sendable {
    private struct State {
        var descriptor: Int32 = -1
        var watching = false
        var generation = 0
    }

    private let state = NIOLockedValueBox(State())
    /// Registered with libldap for the lifetime of the handle; freed with the watchdog.
    let callbacks: UnsafeMutablePointer<ldap_conncb>

    init() {
        callbacks = .allocate(capacity: 1)
        callbacks.initialize(to: ldap_conncb(lc_add: { _, socketBuffer, _, _, context in
            guard let context, let argument = context.pointee.lc_arg else { return 0 }
            var descriptor: Int32 = -1
            if ber_sockbuf_ctrl(socketBuffer, LBER_SB_OPT_GET_FD, &descriptor) == 1 {
                Unmanaged<LDAPHandshakeWatchdog>.fromOpaque(argument).takeUnretainedValue().record(descriptor)
            }
            return 0
        }, lc_del: { _, _, _ in }, lc_arg: nil))
        callbacks.pointee.lc_arg = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        callbacks.deinitialize(count: 1)
        callbacks.deallocate()
    }

    /// Whether the TCP connection was made (libldap reports the socket before any TLS), which
    /// tells a server that is down from a TLS handshake that failed.
    var connected: Bool { state.withLockedValue { $0.descriptor >= 0 } }

    private func record(_ descriptor: Int32) {
        state.withLockedValue { $0.descriptor = descriptor }
    }

    /// Runs `body` (a blocking connect or StartTLS); shuts the socket down if it is still
    /// running after `timeout`.
    func guarding<T>(timeout: Duration, _ body: () -> T) -> T {
        let generation = state.withLockedValue { state -> Int in
            state.watching = true
            state.generation += 1
            return state.generation
        }
        let nanoseconds = Int(timeout.nanoseconds)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [self] in
            state.withLockedValue { state in
                // Only the same, still running attempt: never a descriptor reused since.
                guard state.watching, state.generation == generation, state.descriptor >= 0 else { return }
                shutdown(state.descriptor, Int32(SHUT_RDWR))
            }
        }
        defer { state.withLockedValue { $0.watching = false } }
        return body()
    }
}
