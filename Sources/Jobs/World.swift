import Evaluation
import Foundation
import JSON
import ShapesWorld

/// Writes the world and its POPE files (the builder lives with the benchmarks, outside the world's module).
public func generateWorld(_ spec: WorldSpec, out: String, popeImages: Int) throws -> JSONValue {
    let summary = try WorldFolder.generate(spec, out: out) { split, done, total in
        FileHandle.standardError.write(Data("\rrealign: drawing \(split) scenes \(done)/\(total)\(done == total ? "\n" : "")".utf8))
    }
    let (images, issues) = try POPEBuilder.annotations((out as NSString).appendingPathComponent("annotations.jsonl"))
    for issue in issues { log(issue.description) }
    // The adversarial split counts co-occurrence over the training scenes: the held-out ones break the bias, so
    // their own counts would no longer rank a shape's partner first.
    let (train, trainIssues) = try POPEBuilder.annotations((out as NSString).appendingPathComponent("train_annotations.jsonl"))
    for issue in trainIssues { log(issue.description) }
    let builder = POPEBuilder()
    let sampled = builder.sample(images, count: popeImages, seed: spec.seed)
    _ = try builder.write(builder.build(sampled, seed: spec.seed, cooccurrence: train), to: (out as NSString).appendingPathComponent("pope"))
    return summary
}
