import Foundation
import Images
import Models
import ShapesWorld
import Torch

/// Stage 1 of the tiny VLM, standing in for CLIP's pretraining: the vision tower learns to see the world from
/// dense labels. Each patch state (last layer) predicts the shape, colour and size of the object covering that
/// patch (or background), and the pooled state predicts which shapes and colours are in the scene and the
/// background colour. The heads are thrown away afterwards; the tower keeps what they taught it. Scenes are
/// drawn fresh for every step from the biased (training) distribution, on a stream of their own.
public struct VisionPretraining {
    public var steps = 2000
    public var batchSize = 48
    public var learningRate = 1e-3
    public var warmupSteps = 60
    public var seed: UInt64 = 0
    public init() {}

    /// Trains the tower of the model in `folder` and writes the folder's weights back. `report` sees
    /// (step, steps, loss, patch accuracy) every 20 steps.
    public mutating func run(folder: String, report: ((Int, Int, Double, Double) -> Void)? = nil) throws {
        try Torch.manualSeed(seed)
        let vlm = try VisionLanguageModel(folder: folder)
        let model = try vlm.worldLLaVA()
        let tower = model.visionTower
        let c = tower.config
        let hidden = c.hiddenSize
        let generator = try Generator(seed: seed &+ 17)
        let shapeClasses = Shape.allCases.count + 1, colourClasses = ObjectColour.allCases.count + 1, sizeClasses = 3
        let patchNorm = try LayerNorm(hidden)
        let patchHead = try Linear(hidden, shapeClasses + colourClasses + sizeClasses, generator: generator)
        let presenceHead = try Linear(hidden, SceneLabels.presenceCount, generator: generator)
        // Every patch also predicts which shapes the whole scene holds: a dense signal that makes each image token
        // carry the scene's content (what the language model reads for "is there a ...?").
        let scenePresenceHead = try Linear(hidden, Shape.allCases.count, generator: generator)
        try model.freeze()
        try model.unfreeze { $0.hasPrefix("vision_tower.") }
        let params = model.trainableParameters().map(\.1) + patchNorm.parameters() + patchHead.parameters() + presenceHead.parameters() + scenePresenceHead.parameters()
        let optimizer = AdamW(groups: [AdamW.Group(name: "vision", parameters: params, lr: learningRate, weightDecay: 0.01)])
        let schedule = LRSchedule(.cosine, warmupSteps: warmupSteps, totalSteps: steps)
        model.train()
        let generatorOfScenes = SceneGenerator.biased
        var lossSum = 0.0, accSum = 0.0, seen = 0
        for step in 0..<steps {
            schedule.apply(to: optimizer, baseLRs: [learningRate], step: step)
            let scenes = (0..<batchSize).map { generatorOfScenes.scene(id: "pre", seed: seed, stream: 3, index: step * batchSize + $0) }
            let pixels = try vlm.pixels(scenes.map(SceneRenderer.render)).pixels
            var shapeT: [Int] = [], colourT: [Int] = [], sizeT: [Int] = [], presence: [Float] = []
            for scene in scenes {
                for k in SceneLabels.patchObjects(scene, patch: c.patchSize) {
                    if let k {
                        let o = scene.objects[k]
                        shapeT.append(1 + Shape.allCases.firstIndex(of: o.shape)!)
                        colourT.append(1 + ObjectColour.allCases.firstIndex(of: o.colour)!)
                        sizeT.append(o.size == .small ? 1 : 2)
                    } else {
                        shapeT += [0]; colourT += [0]; sizeT += [0]
                    }
                }
                presence += SceneLabels.presence(scene)
            }
            let (states, pooled) = try tower.lastHiddenState(pixels)
            let patches = try states.slice(1, 1).reshape([-1, hidden])
            let logits = try patchHead(patchNorm(patches))
            let shapeLogits = try logits.slice(1, 0, shapeClasses)
            let lossShape = try F.crossEntropy(shapeLogits, Tensor(shapeT))
            let lossColour = try F.crossEntropy(logits.slice(1, shapeClasses, shapeClasses + colourClasses), Tensor(colourT))
            let lossSize = try F.crossEntropy(logits.slice(1, shapeClasses + colourClasses, shapeClasses + colourClasses + sizeClasses), Tensor(sizeT))
            let presenceLogits = try presenceHead(pooled)
            let target = try Tensor(presence, shape: [batchSize, SceneLabels.presenceCount])
            // Binary cross-entropy with logits: -(y log s(x) + (1 - y) log s(-x)).
            let lossPresence = try ((target * presenceLogits.logSigmoid()) + ((1.0 - target) * presenceLogits.neg().logSigmoid())).mean().neg()
            let shapesPresent = try target.slice(1, 0, Shape.allCases.count).unsqueeze(1).expand([batchSize, patches.size(0) / batchSize, Shape.allCases.count])
            let patchPresence = try scenePresenceHead(patchNorm(patches)).reshape([batchSize, -1, Shape.allCases.count])
            let lossScene = try ((shapesPresent * patchPresence.logSigmoid()) + ((1.0 - shapesPresent) * patchPresence.neg().logSigmoid())).mean().neg()
            let loss = try lossShape + lossColour + lossSize + lossPresence + lossScene
            try loss.backward()
            _ = try clipGradNorm(params, maxNorm: 1)
            try optimizer.step()
            try optimizer.zeroGrad()
            lossSum += try loss.item()
            accSum += try shapeLogits.argmax(1).eq(Tensor(shapeT)).to(dtype: .float32).mean().item()
            seen += 1
            if (step + 1) % 20 == 0 || step + 1 == steps {
                report?(step + 1, steps, lossSum / Double(seen), accSum / Double(seen))
                lossSum = 0; accSum = 0; seen = 0
            }
        }
        model.eval()
        let probe = try withNoGrad { try evaluate(vlm, patchNorm: patchNorm, patchHead: patchHead, presenceHead: presenceHead, shapeClasses: shapeClasses) }
        lastProbe = probe
        try model.saveWeights(to: folder)
    }

    /// What the tower sees on held-out scenes: shape accuracy over the patches an object covers, and the
    /// balanced accuracy of "is this shape in the scene" from the pooled state (mean over shapes of the
    /// accuracy on scenes with it and without it).
    public struct Probe: Sendable {
        public var objectPatchAccuracy = 0.0
        public var shapePresenceAccuracy = 0.0
    }
    public private(set) var lastProbe: Probe? = nil

    func evaluate(_ vlm: VisionLanguageModel, patchNorm: LayerNorm, patchHead: Linear, presenceHead: Linear, shapeClasses: Int) throws -> Probe {
        // Unseen scenes at the partner rate the shipped model's stage 1 was probed with (the probe only reports).
        let scenes = (0..<192).map { SceneGenerator(partnerRate: 0.5).scene(id: "probe", seed: seed, stream: 4, index: $0) }
        let tower = try vlm.worldLLaVA().visionTower
        let patch = tower.config.patchSize
        var right = 0, total = 0
        var present = [(Int, Int)](repeating: (0, 0), count: Shape.allCases.count), absent = present
        for start in stride(from: 0, to: scenes.count, by: 48) {
            let batch = Array(scenes[start..<min(start + 48, scenes.count)])
            let (states, pooled) = try tower.lastHiddenState(vlm.pixels(batch.map(SceneRenderer.render)).pixels)
            let hidden = states.size(2)
            let predicted = try patchHead(patchNorm(states.slice(1, 1).reshape([-1, hidden]))).slice(1, 0, shapeClasses).argmax(1).toArray(Int64.self)
            let presence = try presenceHead(pooled).toArray(Float.self)
            let perImage = predicted.count / batch.count
            for (i, scene) in batch.enumerated() {
                for (p, k) in SceneLabels.patchObjects(scene, patch: patch).enumerated() {
                    guard let k else { continue }
                    total += 1
                    if Int(predicted[i * perImage + p]) == 1 + Shape.allCases.firstIndex(of: scene.objects[k].shape)! { right += 1 }
                }
                for (j, shape) in Shape.allCases.enumerated() {
                    let says = presence[i * SceneLabels.presenceCount + j] > 0
                    if scene.count(of: shape) > 0 { present[j].0 += says ? 1 : 0; present[j].1 += 1 } else { absent[j].0 += says ? 0 : 1; absent[j].1 += 1 }
                }
            }
        }
        var balanced = 0.0
        for j in present.indices { balanced += 0.5 * (Double(present[j].0) / Double(max(1, present[j].1)) + Double(absent[j].0) / Double(max(1, absent[j].1))) }
        return Probe(objectPatchAccuracy: Double(right) / Double(max(1, total)), shapePresenceAccuracy: balanced / Double(present.count))
    }
}

extension VisionLanguageModel {
    /// The world's model is a LLaVA-1.5 whose CLIP tower the first stage trains directly.
    func worldLLaVA() throws -> LlavaForConditionalGeneration {
        guard let llava = model as? LlavaForConditionalGeneration else {
            throw ModelError("\(folder): the ShapesWorld pretraining builds a LLaVA-1.5 model (model_type llava)")
        }
        return llava
    }
}
