// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Hummingbird
import NIOCore
import Prometheus

/// `GET /metrics`: the Prometheus text exposition of everything Gatehouse counts.
struct MetricsRoute {
    let registry: PrometheusCollectorRegistry

    func register(on router: Router<GatehouseRequestContext>) {
        router.get("/metrics") { _, _ in
            var bytes: [UInt8] = []
            bytes.reserveCapacity(8192)
            registry.emit(into: &bytes)
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))
            )
        }
    }
}
