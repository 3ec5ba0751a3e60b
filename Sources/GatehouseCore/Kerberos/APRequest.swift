// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// The service principal a Kerberos AP-REQ's ticket was issued for, read from the token's
/// clear-text part (RFC 4120 §5.3, §5.5.1).
///
/// Why parse it ourselves: every SPN of an AD account shares the account's keys, and MIT's
/// acceptor reports the first keytab entry whose key fits, not the name the ticket carries. A
/// ticket a browser got for `HTTP/other.corp.example` would pass for `HTTP/apps.corp.example`.
/// The ticket's `sname` is outside its encrypted part, so this stops tickets meant for another
/// service, not someone who rewrites one: services that must not accept each other's tickets
/// need accounts (keys) of their own (docs/kerberos.md says so).
enum APRequest {
    /// `HTTP/apps.corp.example@CORP.EXAMPLE`, or nil when the token holds no AP-REQ we can read.
    static func serviceName(in token: [UInt8]) -> String? {
        // The GSS krb5 token: OID 1.2.840.113554.1.2.2 (or Microsoft's 1.2.840.48018.1.2.2),
        // then TOK_ID 01 00, then the AP-REQ. Inside SPNEGO it sits in the mechToken.
        for oid in [[0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x12, 0x01, 0x02, 0x02], [0x06, 0x09, 0x2A, 0x86, 0x48, 0x82, 0xF7, 0x12, 0x01, 0x02, 0x02]] as [[UInt8]] {
            let marker = oid + [0x01, 0x00]
            var rest = token[...]
            while let found = rest.firstRange(of: marker) {
                if let name = parseAPRequest(token, at: found.upperBound) { return name }
                rest = token[(found.lowerBound + 1)...]
            }
        }
        return nil
    }

    /// AP-REQ ::= [APPLICATION 14] SEQUENCE { …, ticket [3] Ticket, … }
    /// Ticket ::= [APPLICATION 1] SEQUENCE { tkt-vno [0], realm [1], sname [2], enc-part [3] }
    private static func parseAPRequest(_ bytes: [UInt8], at offset: Int) -> String? {
        var reader = DER(bytes: bytes, position: offset)
        guard var apRequest = reader.readReader(tag: 0x6E), var sequence = apRequest.readReader(tag: 0x30) else { return nil }
        guard var ticketField = sequence.field(0xA3), let ticketApplication = ticketField.read(tag: 0x61) else { return nil }
        var ticketReader = ticketApplication.reader
        guard var ticket = ticketReader.readReader(tag: 0x30) else { return nil }
        guard var realmField = ticket.field(0xA1), let realm = realmField.read(tag: 0x1B) else { return nil }
        guard var snameField = ticket.field(0xA2), var principalName = snameField.readReader(tag: 0x30) else { return nil }
        guard var stringsField = principalName.field(0xA1), var strings = stringsField.readReader(tag: 0x30) else { return nil }
        var components: [String] = []
        while !strings.atEnd {
            guard let component = strings.read(tag: 0x1B) else { return nil }
            components.append(String(decoding: component.value, as: UTF8.self))
        }
        guard !components.isEmpty else { return nil }
        return components.joined(separator: "/") + "@" + String(decoding: realm.value, as: UTF8.self)
    }

    /// Just enough DER: tag, definite length, value.
    private struct DER {
        let bytes: [UInt8]
        var position: Int
        var end: Int

        init(bytes: [UInt8], position: Int, end: Int? = nil) {
            self.bytes = bytes
            self.position = position
            self.end = end ?? bytes.count
        }

        var atEnd: Bool { position >= end }

        struct Element {
            let value: ArraySlice<UInt8>
            let reader: DER
        }

        /// The next element if its tag is `tag`.
        mutating func read(tag: UInt8) -> Element? {
            guard position + 2 <= end, bytes[position] == tag else { return nil }
            var index = position + 1
            var length = Int(bytes[index])
            index += 1
            if length & 0x80 != 0 {
                let count = length & 0x7F
                guard (1...4).contains(count), index + count <= end else { return nil }
                length = 0
                for _ in 0..<count {
                    length = length << 8 | Int(bytes[index])
                    index += 1
                }
            }
            guard length >= 0, index + length <= end else { return nil }
            position = index + length
            return Element(value: bytes[index..<(index + length)], reader: DER(bytes: bytes, position: index, end: index + length))
        }

        mutating func readReader(tag: UInt8) -> DER? { read(tag: tag)?.reader }

        /// The context-specific field `[n]` of a SEQUENCE, skipping the ones before it.
        mutating func field(_ tag: UInt8) -> DER? {
            while !atEnd {
                let current = bytes[position]
                guard let element = read(tag: current) else { return nil }
                if current == tag { return element.reader }
            }
            return nil
        }
    }
}
