import Foundation
import JSON
import Testing
@testable import Torch

@Suite struct SafeTensorsTests {
    /// A tensor over the file's mapping reads as the copied one, outlives the file object, and writing to it changes
    /// this process's copy only; a tensor whose offset does not suit its element size is copied.
    @Test func mappedTensorsShareTheFileWithoutChangingIt() throws {
        let file = try SafeTensorsFile(path: fixturePath("python_written.safetensors"))
        var mapped: [String: Tensor] = [:]
        for name in file.names { mapped[name] = try file.mappedTensor(name) }
        for name in file.names { #expect(try mapped[name]!.equal(file.tensor(name)), "\(name)") }
        // An f32 tensor lands on a 4-byte boundary here; an odd one-byte shift of the data section is not.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mapped-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let original = try Tensor([1, 2, 3, 4] as [Float])
        try SafeTensors.write(["w": original], to: path)
        var weight: Tensor? = try SafeTensorsFile(path: path).mappedTensor("w")  // the file object is gone at once
        try weight!.fillInPlace(7)
        #expect(try weight!.toArray(Float.self) == [7, 7, 7, 7])
        #expect(try SafeTensorsFile(path: path).tensor("w").toArray(Float.self) == [1, 2, 3, 4])
        weight = nil
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = Int(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        bytes.insert(UInt8(ascii: " "), at: 8 + headerLength)  // one more header byte: the data starts at an odd offset
        bytes.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(headerLength + 1).littleEndian) { Data($0) })
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(try SafeTensorsFile(path: path).mappedTensor("w").toArray(Float.self) == [1, 2, 3, 4])
    }

    /// Every dtype written by Python's `safetensors` reads back exactly (compared with the script's JSON dump
    /// of the same values, an independent path).
    @Test func readsFilesWrittenByPython() throws {
        let file = try SafeTensorsFile(path: fixturePath("python_written.safetensors"))
        #expect(file.metadata == ["format": "pt", "note": "written by safetensors"])
        let data = FileManager.default.contents(atPath: fixturePath("python_written.json"))!
        let expected = try JSONValue.parse(Array(data)).objectValue!
        #expect(Set(file.names) == Set(expected.map(\.0)))
        for (name, spec) in expected {
            let t = try file.tensor(name)
            let dtypeName = spec["dtype"]!.stringValue!
            #expect(t.dtype.description == dtypeName, "\(name): \(t.dtype) vs \(dtypeName)")
            #expect(t.shape == spec["shape"]!.arrayValue!.map { $0.intValue! }, "\(name) shape")
            let values = spec["values"]!.arrayValue!
            switch t.dtype {
            case .int64, .int32, .int16, .int8, .uint8:
                let got = try t.to(dtype: .int64).flatten().toArray(Int64.self)
                #expect(got == values.map { Int64($0.intValue!) }, "\(name) values")
            case .bool:
                let got = try t.flatten().toArray(Bool.self)
                #expect(got == values.map { $0 == .bool(true) }, "\(name) values")
            default:
                let got = try t.to(dtype: .float64).flatten().toArray(Double.self)
                let want = values.map { v -> Double in
                    switch v {
                    case .double(let d): d
                    case .int(let i): Double(i)
                    default: .nan
                    }
                }
                #expect(got == want, "\(name) values")
            }
        }
    }

    /// Round trip of every dtype, including empty and 0-d tensors, with metadata.
    @Test func roundTripsEveryDType() throws {
        let dir = try temporaryDirectory()
        var tensors: [String: Tensor] = [:]
        let gen = try Generator(seed: 3)
        for dtype in DType.allCases {
            let base = try Tensor.randn([3, 5], generator: gen, dtype: .float64) * 50
            tensors["t.\(dtype)"] = try base.to(dtype: dtype)
            tensors["empty.\(dtype)"] = try Tensor.zeros([0, 2], dtype: dtype)
            tensors["scalar.\(dtype)"] = try Tensor.full([], 1, dtype: dtype)
        }
        let path = dir + "/all.safetensors"
        try SafeTensors.write(tensors, metadata: ["format": "pt", "quote\"key": "line\nbreak"], to: path)
        let file = try SafeTensorsFile(path: path)
        #expect(file.metadata == ["format": "pt", "quote\"key": "line\nbreak"])
        #expect(Set(file.names) == Set(tensors.keys))
        for (name, t) in tensors {
            let back = try file.tensor(name)
            #expect(back.dtype == t.dtype && back.shape == t.shape, "\(name)")
            #expect(try back.bytes() == t.bytes(), "\(name) bytes")
        }
        // The header is padded to 8 bytes, as the reference writer does.
        let raw = FileManager.default.contents(atPath: path)!
        let n = raw.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(n % 8 == 0)
    }

    @Test func shardedCheckpointRoundTrip() throws {
        let dir = try temporaryDirectory()
        var tensors: [String: Tensor] = [:]
        for i in 0..<6 { tensors["model.layers.\(i).weight"] = try Tensor.randn([16, 16]) }
        try Checkpoint.write(tensors, to: dir, maxShardBytes: 2500)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(names.contains(Checkpoint.indexName))
        // 1024-byte tensors, at most 2500 bytes a shard: two per shard.
        #expect(names.filter { $0.hasSuffix(".safetensors") }.count == 3)
        let ckpt = try Checkpoint(path: dir)
        #expect(ckpt.names == tensors.keys.sorted())
        for (name, t) in tensors { #expect(try ckpt.tensor(name).equal(t)) }

        // A missing shard is named.
        let shard = names.first { $0.hasPrefix("model-00002") }!
        try FileManager.default.removeItem(atPath: dir + "/" + shard)
        #expect {
            _ = try Checkpoint(path: dir)
        } throws: { error in
            "\(error)".contains(shard) && "\(error)".contains("missing")
        }
    }

    @Test func clearErrorsForBrokenFiles() throws {
        let dir = try temporaryDirectory()
        func write(_ bytes: [UInt8]) -> String {
            let p = dir + "/f\(bytes.count)-\(UUID().uuidString).safetensors"
            _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
            return p
        }
        func header(_ json: String, data: Int = 0) -> [UInt8] {
            var n = UInt64(json.utf8.count).littleEndian
            return withUnsafeBytes(of: &n) { Array($0) } + Array(json.utf8) + [UInt8](repeating: 0, count: data)
        }
        let cases: [([UInt8], String)] = [
            ([1, 2, 3], "too small"),
            (header("{}") + [], ""),  // valid: empty file with an empty header
            ([255, 255, 255, 255, 0, 0, 0, 0] + Array("{}".utf8), "exceeds"),
            ([100, 0, 0, 0, 0, 0, 0, 0] + Array("{}".utf8), "past the end"),
            (header("[1,2]"), "does not start"),
            (header("{\"a\":"), "not valid JSON"),
            (header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data: 4), "beyond the data section"),
            (header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", data: 4), "needs 8"),
            (header("{\"a\":{\"dtype\":\"X9\",\"shape\":[1],\"data_offsets\":[0,1]}}", data: 1), "unknown dtype"),
            (header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", data: 4), "invalid dimension"),
            (header("{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,1]}}", data: 1), "overflows"),
            (header("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}", data: 3), "overlaps"),
            (header("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}", data: 3), "gap"),
            (header("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", data: 5), "cover"),
            (header("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}", data: 4), "duplicate"),
            (header("{\"__metadata__\":{\"k\":1}}"), "not a string"),
        ]
        for (bytes, message) in cases {
            let path = write(bytes)
            if message.isEmpty {
                #expect(try SafeTensorsFile(path: path).names.isEmpty)
                continue
            }
            #expect("expected an error containing '\(message)'", performing: { _ = try SafeTensorsFile(path: path) }, throws: { error in
                let text = "\(error)"
                return text.contains(path) && text.contains(message)
            })
        }
        // An unsupported but valid dtype is listed, and refused with its name on load.
        let f8 = write(header("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", data: 2))
        let file = try SafeTensorsFile(path: f8)
        #expect(file.info("a")?.dtypeName == "F8_E4M3")
        #expect(performing: { _ = try file.tensor("a") }, throws: { "\($0)".contains("F8_E4M3") })
    }

    /// Mutations of a valid file: those that break the format must each give an error; random byte flips may
    /// still describe a valid file, but must never crash.
    @Test func mutatedHeadersNeverCrash() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/valid.safetensors"
        try SafeTensors.write([
            "a.weight": try Tensor.randn([3, 4]), "b": try Tensor.ones([5], dtype: .int64),
            "c": try Tensor.zeros([2, 2], dtype: .bfloat16),
        ], metadata: ["format": "pt"], to: path)
        let original = [UInt8](FileManager.default.contents(atPath: path)!)
        let headerLength = Int(original.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let headerText = String(decoding: original[8..<(8 + headerLength)], as: UTF8.self)
        var rng = SystemRandomNumberGenerator()
        var errors = 0
        let mutated = dir + "/mutated.safetensors"

        func attempt(_ bytes: [UInt8]) -> Bool {
            _ = FileManager.default.createFile(atPath: mutated, contents: Data(bytes))
            do {
                let f = try SafeTensorsFile(path: mutated)
                _ = try f.loadAll()
                return false
            } catch {
                #expect("\(error)".contains(mutated), "error does not name the file: \(error)")
                return true
            }
        }
        // 1. Structural mutations that must always fail.
        var mustFail = 0
        for i in 0..<1000 {
            var bytes = original
            switch i % 5 {
            case 0:  // wrong header length
                var n = UInt64(headerLength) + UInt64.random(in: 1...UInt64(1 << 40), using: &rng)
                if i % 10 == 0 { n = UInt64(Int.random(in: 0..<headerLength, using: &rng)) }
                withUnsafeBytes(of: n.littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
            case 1:  // truncated file
                bytes = Array(bytes.prefix(Int.random(in: 0..<(bytes.count), using: &rng)))
            case 2:  // offsets pushed out of place
                let shifted = headerText.replacingOccurrences(of: "\"data_offsets\":[0,", with: "\"data_offsets\":[\(Int.random(in: 1...1_000_000_000, using: &rng)),")
                bytes = Array(original[0..<8]) + Array(shifted.utf8)
                withUnsafeBytes(of: UInt64(shifted.utf8.count).littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
                bytes += original[(8 + headerLength)...]
            case 3:  // data appended (bytes not covered by any tensor)
                bytes += [UInt8](repeating: 7, count: Int.random(in: 1...64, using: &rng))
            default:  // a structural character of the JSON removed
                let structural = bytes.indices.filter { $0 >= 8 && $0 < 8 + headerLength && [UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "\"")].contains(bytes[$0]) }
                bytes[structural.randomElement(using: &rng)!] = UInt8(ascii: "#")
            }
            if attempt(bytes) { mustFail += 1 } else { Issue.record("mutation \(i) (kind \(i % 5)) was accepted") }
        }
        #expect(mustFail == 1000)
        // 2. Random byte flips anywhere in the header: error or valid, never a crash.
        for _ in 0..<1000 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                bytes[Int.random(in: 0..<(8 + headerLength), using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            if attempt(bytes) { errors += 1 }
        }
        #expect(errors > 500)
    }
}
