import Foundation
import Jobs
import ShapesWorld
import Testing

/// Settings are chosen on a validation world that shares no scene with the world the demo tests on.
@Suite struct ValidationWorldTests {
    func scenes(seed: UInt64) -> [Scene] {
        var spec = WorldSpec()
        spec.train = DemoSettings.full.preferenceScenes
        spec.test = DemoSettings.full.testScenes
        spec.seed = seed
        return WorldFolder.trainScenes(spec) + WorldFolder.testScenes(spec)
    }

    /// A scene as its content: background and every object's shape, colour, size, place and radius.
    func content(_ s: Scene) -> String {
        "\(s.background.rawValue)|" + s.objects.map { "\($0.shape.rawValue) \($0.colour.rawValue) \($0.size.rawValue) \($0.x) \($0.y) \($0.radius)" }.joined(separator: ";")
    }

    @Test(arguments: [UInt64(0), 7])
    func theValidationWorldSharesNoSceneWithTheTestWorld(seed: UInt64) {
        let test = Set(scenes(seed: seed &+ 1).map(content))  // the demo's world: seed + 1
        let validation = scenes(seed: DemoSelection.validationSeed(seed)).map(content)
        var pretraining = WorldSpec()  // the shipped model's own world: `world pretrain`'s defaults, seed 0
        pretraining.seed = 0
        let shipped = Set((WorldFolder.trainScenes(pretraining) + WorldFolder.testScenes(pretraining)).map(content))
        #expect(test.count == DemoSettings.full.preferenceScenes + DemoSettings.full.testScenes)
        #expect(validation.filter(test.contains).isEmpty)
        #expect(validation.filter(shipped.contains).isEmpty)
        #expect(DemoSelection.validationSeed(seed) != seed &+ 1 && DemoSelection.validationSeed(seed) != 0)
    }
}
