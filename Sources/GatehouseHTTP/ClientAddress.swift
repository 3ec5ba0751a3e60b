// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import GatehouseCore
import HTTPTypes
import NIOCore

/// The client's address: the peer itself, unless the peer is a trusted proxy (nginx), whose
/// `X-Real-IP` or `X-Forwarded-For` is then believed. A unix-socket peer is local, hence trusted.
enum ClientAddress {
    /// The connection's peer, and whether it is one of `trustedProxies`: the same for every
    /// request of a connection, so the fast path works it out once.
    struct Peer: Sendable {
        let address: String?
        let trusted: Bool
        let trustedProxies: [IPNetwork]

        init(_ peer: SocketAddress?, trustedProxies: [IPNetwork]) {
            self.trustedProxies = trustedProxies
            switch peer {
            case .unixDomainSocket?:
                address = "unix"
                trusted = true
            case let socket?:
                address = socket.ipAddress
                trusted = socket.ipAddress.map { ip in trustedProxies.contains { $0.contains(ip) } } ?? false
            case nil:
                address = nil
                trusted = false
            }
        }
    }

    static func resolve(peer: SocketAddress?, realIP: String?, forwardedFor: [String], trustedProxies: [IPNetwork]) -> String? {
        resolve(Peer(peer, trustedProxies: trustedProxies), realIP: realIP, forwardedFor: forwardedFor)
    }

    /// The client of a request's fields (`X-Real-IP`, `X-Forwarded-For`) from `peer`.
    static func resolve(_ peer: Peer, fields: HTTPFields) -> String? {
        resolve(peer, realIP: fields[AuthRoutes.realIP], forwardedFor: fields[values: AuthRoutes.forwardedFor])
    }

    static func resolve(_ peer: Peer, realIP: String?, forwardedFor: [String]) -> String? {
        let (peerAddress, trustedProxies) = (peer.address, peer.trustedProxies)
        guard peer.trusted else { return peerAddress }
        if let realIP = realIP?.trimmingSpaces, IPNetwork.addressBytesValid(realIP) { return realIP }
        // The right-most hop that is not one of our proxies is the client as far as we can trust.
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { String($0).trimmingSpaces }
        for hop in hops.reversed() where IPNetwork.addressBytesValid(hop) {
            if !trustedProxies.contains(where: { $0.contains(hop) }) { return hop }
        }
        return peerAddress
    }
}
