// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Crypto

/// The files a running configuration depends on, and the version of each seen last: the
/// reload service polls them so that an edit on disk takes effect without a signal.
///
/// A file whose metadata changed but whose bytes did not (configuration management rewriting
/// it, `touch`) is not a change: a reload would empty the credential cache for nothing, and
/// with a directory that hangs, each reload's readiness check costs a connection attempt.
public struct WatchedFiles: Sendable {
    public let paths: [String]
    private var stamps: [FileStamp?]
    private var digests: [SHA256.Digest?]

    public init(paths: [String]) {
        self.paths = Self.unique(paths)
        stamps = self.paths.map { FileStamp(path: $0) }
        digests = self.paths.map(Self.digest)
    }

    /// `paths` without repeats, in order: what ``paths`` holds for them, found without reading
    /// any file.
    public static func unique(_ paths: [String]) -> [String] {
        var unique: [String] = []
        for path in paths where !unique.contains(path) { unique.append(path) }
        return unique
    }

    /// Whether any file's contents changed, or a file appeared or vanished, since the last
    /// call; remembers the new versions either way, so one edit is reported once.
    public mutating func refresh() -> Bool {
        var changed = false
        for (index, path) in paths.enumerated() {
            let stamp = FileStamp(path: path)
            guard stamp != stamps[index] else { continue }
            stamps[index] = stamp
            let digest = Self.digest(path)
            if digest != digests[index] { changed = true }
            digests[index] = digest
        }
        return changed
    }

    /// Of the bytes, not the text: an edit that leaves a file invalid UTF-8 is still a change
    /// (the reload then reports the file).
    private static func digest(_ path: String) -> SHA256.Digest? {
        guard let bytes = try? readFile(path) else { return nil }
        return SHA256.hash(data: bytes)
    }
}

extension Configuration {
    /// Every file the configuration reads: htpasswd and group files, bind password files and
    /// CA files. A change to any of them is a reason to reload.
    public var referencedFiles: [String] {
        backends.flatMap { backend -> [String] in
            switch backend {
            case .htpasswd(_, let file, let groupsFile): [file] + (groupsFile.map { [$0] } ?? [])
            case .ldap(let settings): [settings.bindPasswordFile, settings.caFile].compactMap { $0 }
            }
        }
    }
}
