import Testing
@testable import Torch
@Test func smoke() throws {
    let a = try Tensor([1.0, 2.0] as [Float])
    #expect(try (a + a).toArray(Float.self) == [2, 4])
}
