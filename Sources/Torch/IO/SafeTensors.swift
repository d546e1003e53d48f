import Foundation
import JSON

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A problem with a safetensors file or a checkpoint folder, naming the file.
public struct SafeTensorsError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public init(_ path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

/// One tensor's entry in a safetensors header.
public struct SafeTensorInfo: Sendable {
    public let name: String
    /// The file's dtype string ("F32", "BF16", ...).
    public let dtypeName: String
    /// nil for dtypes the engine cannot hold (F8, U16, ...): listed by `inspect`, refused by `tensor(_:)`.
    public let dtype: DType?
    public let shape: [Int]
    /// Byte range inside the data section.
    public let begin: Int
    public let end: Int
    public var byteCount: Int { end - begin }
    public var elementCount: Int { shape.reduce(1, *) }
}

/// The safetensors format: an 8-byte little-endian header length, a JSON header, then the raw data.
public enum SafeTensors {
    /// Headers larger than this are refused (as the reference implementation does), so a hostile length never
    /// makes us allocate.
    public static let maxHeaderBytes = 100_000_000

    static let elementSizes: [String: Int] = [
        "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
        "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "C64": 8,
    ]
    static let dtypes: [String: DType] = [
        "F64": .float64, "F32": .float32, "F16": .float16, "BF16": .bfloat16, "I64": .int64, "I32": .int32,
        "I16": .int16, "I8": .int8, "U8": .uint8, "BOOL": .bool,
    ]
    static func name(of dtype: DType) -> String {
        switch dtype {
        case .float64: "F64"
        case .float32: "F32"
        case .float16: "F16"
        case .bfloat16: "BF16"
        case .int64: "I64"
        case .int32: "I32"
        case .int16: "I16"
        case .int8: "I8"
        case .uint8: "U8"
        case .bool: "BOOL"
        }
    }

    /// Reads every tensor of a file.
    public static func load(_ path: String) throws -> [String: Tensor] { try SafeTensorsFile(path: path).loadAll() }

    /// Parses and validates a header. `dataLength` is the number of bytes after the header.
    /// Follows the reference implementation's rules: entries must tile the data section exactly, in offset order,
    /// with no gap, overlap or byte left over.
    static func parseHeader(_ bytes: UnsafeRawBufferPointer, dataLength: Int, path: String) throws
        -> (entries: [SafeTensorInfo], metadata: [String: String])
    {
        func fail(_ reason: String) -> SafeTensorsError { SafeTensorsError(path, reason) }
        guard bytes.first == UInt8(ascii: "{") else { throw fail("header does not start with '{'") }
        let root: JSONValue
        do {
            root = try JSONValue.parse(bytes)
        } catch {
            throw fail("header is not valid JSON (\(error))")
        }
        guard let members = root.objectValue else { throw fail("header is not a JSON object") }

        var metadata: [String: String] = [:]
        var entries: [SafeTensorInfo] = []
        entries.reserveCapacity(members.count)
        for (name, value) in members {
            if name == "__metadata__" {
                guard let m = value.objectValue else { throw fail("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v.stringValue else { throw fail("__metadata__ value for '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard value.objectValue != nil else { throw fail("entry '\(name)' is not an object") }
            guard let dtypeName = value["dtype"]?.stringValue else { throw fail("entry '\(name)' has no dtype string") }
            guard let elementSize = elementSizes[dtypeName] else { throw fail("entry '\(name)' has unknown dtype '\(dtypeName)'") }
            guard let shapeValues = value["shape"]?.arrayValue else { throw fail("entry '\(name)' has no shape array") }
            var shape: [Int] = []
            var elements = 1
            for v in shapeValues {
                guard let d = v.intValue, d >= 0 else { throw fail("entry '\(name)' has an invalid dimension in its shape") }
                let (m, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail("entry '\(name)' has a shape whose size overflows") }
                elements = m
                shape.append(d)
            }
            guard let offsets = value["data_offsets"]?.arrayValue, offsets.count == 2,
                  let begin = offsets[0].intValue, let end = offsets[1].intValue, begin >= 0, end >= begin
            else { throw fail("entry '\(name)' has invalid data_offsets") }
            let (bytesNeeded, overflow) = elements.multipliedReportingOverflow(by: elementSize)
            guard !overflow, bytesNeeded == end - begin else {
                throw fail("entry '\(name)': data_offsets span \(end - begin) bytes but shape \(shape) of \(dtypeName) needs \(overflow ? "more than Int.max" : String(bytesNeeded))")
            }
            guard end <= dataLength else {
                throw fail("entry '\(name)' ends at byte \(end), beyond the data section (\(dataLength) bytes)")
            }
            entries.append(SafeTensorInfo(name: name, dtypeName: dtypeName, dtype: dtypes[dtypeName], shape: shape, begin: begin, end: end))
        }
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var position = 0
        for e in entries {
            if e.begin < position { throw fail("entry '\(e.name)' overlaps the previous tensor") }
            if e.begin > position { throw fail("gap in the data section before entry '\(e.name)'") }
            position = e.end
        }
        if position != dataLength {
            throw fail("data section has \(dataLength) bytes but the tensors cover \(position)")
        }
        return (entries, metadata)
    }

    /// Writes tensors (any device, any supported dtype) to `path`, atomically (a temporary file renamed into
    /// place). Tensors are laid out by decreasing alignment then name, the header padded to 8 bytes as the
    /// reference writer does.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String]? = nil, to path: String) throws {
        let order = tensors.keys.sorted { a, b in
            let sa = tensors[a]!.dtype.byteSize, sb = tensors[b]!.dtype.byteSize
            return sa != sb ? sa > sb : a < b
        }
        var header = "{"
        var first = true
        func append(_ s: String) {
            if !first { header += "," }
            first = false
            header += s
        }
        if let metadata, !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\(JSONValue.quoted($0)):\(JSONValue.quoted(metadata[$0]!))" }
            append("\"__metadata__\":{\(items.joined(separator: ","))}")
        }
        var offset = 0
        for name in order {
            let t = tensors[name]!
            let n = t.byteCount
            append("\(JSONValue.quoted(name)):{\"dtype\":\"\(Self.name(of: t.dtype))\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + n)]}")
            offset += n
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }

        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
            throw SafeTensorsError(path, "cannot create file")
        }
        do {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
            defer { try? handle.close() }
            var length = UInt64(headerBytes.count).littleEndian
            try handle.write(contentsOf: Data(bytes: &length, count: 8))
            try handle.write(contentsOf: Data(headerBytes))
            for name in order {
                try handle.write(contentsOf: Data(try tensors[name]!.bytes()))
            }
            try handle.synchronize()
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw SafeTensorsError(path, "write failed: \(error)")
        }
        if rename(temporary, path) != 0 {
            try? FileManager.default.removeItem(atPath: temporary)
            throw SafeTensorsError(path, "cannot rename temporary file into place: \(String(cString: strerror(errno)))")
        }
    }
}

/// A private memory mapping of a whole file: read-only in use, writable copy-on-write so that a tensor over it (a
/// weight loaded without a copy) can still be changed in place (a merge, an optimizer step) without touching the file.
final class MappedFile: @unchecked Sendable {
    let path: String
    let base: UnsafeRawPointer?
    let size: Int

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw SafeTensorsError(path, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SafeTensorsError(path, "cannot stat: \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw SafeTensorsError(path, "not a regular file") }
        size = Int(st.st_size)
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw SafeTensorsError(path, "cannot map: \(String(cString: strerror(errno)))") }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// Gives back the pages of bytes [begin, end) that copying them out brought in: a mapped page counts in this
    /// process's resident size until unmapped, so a model copied out of the mapping would otherwise hold those weights
    /// twice (its copy and the file's pages) until the file closes. They stay in the page cache. Only whole pages
    /// inside the range: a neighbour's page may belong to a tensor that uses the mapping itself.
    func release(_ begin: Int, _ end: Int) {
        guard let base else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = (begin + page - 1) / page * page, last = end / page * page
        guard last > first else { return }
        madvise(UnsafeMutableRawPointer(mutating: base + first), last - first, Int32(MADV_DONTNEED))
    }
}

/// A memory-mapped safetensors file whose header has been validated. Tensors are copied out on request.
public final class SafeTensorsFile: @unchecked Sendable {
    public let path: String
    public let metadata: [String: String]
    /// Entries in data order.
    public let entries: [SafeTensorInfo]
    private let byName: [String: Int]
    private let file: MappedFile
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let all = file.bytes
        guard all.count >= 8 else { throw SafeTensorsError(path, "file is \(all.count) bytes, too small for a safetensors header") }
        let n = all.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        guard n <= UInt64(SafeTensors.maxHeaderBytes) else {
            throw SafeTensorsError(path, "header length \(n) exceeds the \(SafeTensors.maxHeaderBytes)-byte limit")
        }
        guard Int(n) <= all.count - 8 else {
            throw SafeTensorsError(path, "header length \(n) runs past the end of the file (\(all.count) bytes)")
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: all[8..<(8 + Int(n))])
        dataStart = 8 + Int(n)
        let parsed = try SafeTensors.parseHeader(headerBytes, dataLength: all.count - dataStart, path: path)
        entries = parsed.entries
        metadata = parsed.metadata
        byName = Dictionary(uniqueKeysWithValues: parsed.entries.enumerated().map { ($1.name, $0) })
    }

    public var names: [String] { entries.map(\.name) }
    public func info(_ name: String) -> SafeTensorInfo? { byName[name].map { entries[$0] } }

    /// A CPU tensor holding a copy of the named tensor's data.
    public func tensor(_ name: String) throws -> Tensor {
        guard let i = byName[name] else { throw SafeTensorsError(path, "no tensor named '\(name)'") }
        let e = entries[i]
        guard let dtype = e.dtype else { throw SafeTensorsError(path, "tensor '\(name)' has dtype \(e.dtypeName), which ReAlign cannot load") }
        let region = UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + e.begin)..<(dataStart + e.end)])
        defer { file.release(dataStart + e.begin, dataStart + e.end) }
        do {
            return try Tensor.fromBytes(region, shape: e.shape, dtype: dtype)
        } catch {
            throw SafeTensorsError(path, "tensor '\(name)': \(error)")
        }
    }

    /// The named tensor over the file's mapping itself, no copy (as safetensors' and transformers' loaders map
    /// files): its pages come in as it is first read and count in the resident size from then on; the mapping stays
    /// while any such tensor does. Writing to it changes this process's copy only. A tensor whose offset does not
    /// suit its element size is copied instead.
    public func mappedTensor(_ name: String) throws -> Tensor {
        guard let i = byName[name] else { throw SafeTensorsError(path, "no tensor named '\(name)'") }
        let e = entries[i]
        guard let dtype = e.dtype else { throw SafeTensorsError(path, "tensor '\(name)' has dtype \(e.dtypeName), which ReAlign cannot load") }
        guard let base = file.base, e.byteCount > 0, (dataStart + e.begin) % dtype.byteSize == 0 else { return try tensor(name) }
        let data = UnsafeMutableRawPointer(mutating: base + dataStart + e.begin)
        do {
            return try Tensor.over(data, shape: e.shape, dtype: dtype, owner: file)
        } catch {
            throw SafeTensorsError(path, "tensor '\(name)': \(error)")
        }
    }

    public func loadAll() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for e in entries { out[e.name] = try tensor(e.name) }
        return out
    }
}
