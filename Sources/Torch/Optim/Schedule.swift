import Foundation

/// Learning-rate schedules with linear warmup, as transformers' get_constant_schedule_with_warmup,
/// get_linear_schedule_with_warmup and get_cosine_schedule_with_warmup define them.
public struct LRSchedule: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case constant, linear, cosine }

    public var kind: Kind
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(_ kind: Kind, warmupSteps: Int, totalSteps: Int) {
        self.kind = kind
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// Warmup as a fraction of the total, rounded up (transformers' `ceil(total * warmup_ratio)`).
    public init(_ kind: Kind, warmupRatio: Double, totalSteps: Int) {
        self.init(kind, warmupSteps: Int((Double(totalSteps) * warmupRatio).rounded(.up)), totalSteps: totalSteps)
    }

    /// The factor applied to the base learning rate at `step` (0 for the first optimizer step).
    public func multiplier(at step: Int) -> Double {
        if step < warmupSteps { return Double(step) / Double(Swift.max(1, warmupSteps)) }
        switch kind {
        case .constant:
            return 1
        case .linear:
            return Swift.max(0, Double(totalSteps - step) / Double(Swift.max(1, totalSteps - warmupSteps)))
        case .cosine:
            let progress = Double(step - warmupSteps) / Double(Swift.max(1, totalSteps - warmupSteps))
            return Swift.max(0, 0.5 * (1 + Foundation.cos(Double.pi * 0.5 * 2 * progress)))
        }
    }

    /// Sets each group's lr to its base lr times the multiplier at `step`.
    public func apply(to optimizer: AdamW, baseLRs: [Double], step: Int) {
        let m = multiplier(at: step)
        for i in optimizer.groups.indices { optimizer.groups[i].lr = baseLRs[i] * m }
    }
}
