import Foundation
import Testing
@testable import Torch

/// Path of a committed fixture file.
func fixturePath(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").appendingPathComponent(name).path
}

/// A fresh temporary folder for one test.
func temporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("realign-test-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Largest |a - b| - rtol·|b| over all elements (≤ atol means close), after converting both to float64.
func excess(_ a: Tensor, _ b: Tensor, rtol: Double) throws -> Double {
    let x = try a.to(dtype: .float64).detach()
    let y = try b.to(dtype: .float64).detach()
    if x.count == 0 { return 0 }
    return try ((x - y).abs() - y.abs() * rtol).max().item()
}

/// Expects same dtype, same shape, and values within atol + rtol·|expected| (exact for integers and bools).
func expectClose(_ got: Tensor, _ want: Tensor, atol: Double, rtol: Double, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(got.dtype == want.dtype, "\(what): dtype \(got.dtype) vs \(want.dtype)", sourceLocation: sourceLocation)
    #expect(got.shape == want.shape, "\(what): shape \(got.shape) vs \(want.shape)", sourceLocation: sourceLocation)
    guard got.shape == want.shape else { return }
    if want.dtype.isFloatingPoint {
        let e = try excess(got, want, rtol: rtol)
        #expect(e <= atol, "\(what): values differ (max excess \(e))", sourceLocation: sourceLocation)
    } else {
        #expect(try got.to(dtype: want.dtype).equal(want), "\(what): values differ", sourceLocation: sourceLocation)
    }
}

/// Resident set size of this process in bytes.
func residentBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = s.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Largest |got - want| relative to the largest |want|, in float64 (for products and kernels checked against a
/// float64 computation of the same formula).
func relativeError(_ got: Tensor, _ want: Tensor) throws -> Double {
    let want = try want.to(dtype: .float64)
    return try (got.to(dtype: .float64) - want).abs().max().item() / want.abs().max().item()
}

/// The intra-op thread count a freshly started thread sees.
func threadsOnANewThread() -> Int {
    final class Box: @unchecked Sendable { var value = 0 }
    let seen = Box()
    let done = DispatchSemaphore(value: 0)
    Thread { seen.value = Torch.threads; done.signal() }.start()
    done.wait()
    return seen.value
}
