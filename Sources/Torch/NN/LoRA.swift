import Foundation

/// LoRA hyper-parameters, as PEFT's LoraConfig names them.
public struct LoRAConfig: Sendable, Equatable {
    public var r: Int
    public var alpha: Double
    public var dropout: Double
    /// rsLoRA: scale by alpha / sqrt(r) instead of alpha / r.
    public var rsLoRA: Bool

    public init(r: Int = 128, alpha: Double = 256, dropout: Double = 0.05, rsLoRA: Bool = false) {
        self.r = r
        self.alpha = alpha
        self.dropout = dropout
        self.rsLoRA = rsLoRA
    }

    public var scaling: Double { rsLoRA ? alpha / Foundation.sqrt(Double(r)) : alpha / Double(r) }
}

/// Which Linear modules get adapters, as PEFT selects them: `all-linear`, a list of names (a module matches
/// when its full dotted name is the name or ends with "." + name), or a regex (full match on the full name).
public enum LoRATargets: Sendable, Equatable, CustomStringConvertible {
    case allLinear
    case names([String])
    case regex(String)

    /// Parses a `--lora-targets` value: `all-linear` (peft's name) or `all` (LLaMA-Factory's), a value holding
    /// any of `*()[]|^$\` is a regex, else module names.
    public init(parsing value: String) throws {
        let v = value.trimmingCharacters(in: .whitespaces)
        if v == "all-linear" || v == "all" {
            self = .allLinear
        } else if v.contains(where: { "*()[]|^$\\".contains($0) }) {
            do {
                _ = try NSRegularExpression(pattern: v)
            } catch {
                throw TorchError("--lora-targets: '\(v)' is not a valid regular expression")
            }
            self = .regex(v)
        } else {
            let names = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !names.isEmpty else { throw TorchError("--lora-targets is empty") }
            self = .names(names)
        }
    }

    public var description: String {
        switch self {
        case .allLinear: "all-linear"
        case .names(let n): n.joined(separator: ",")
        case .regex(let r): r
        }
    }

    /// Whether a module's full name is selected (`all-linear` is decided by the caller, which knows the model).
    public func matches(_ name: String) -> Bool {
        switch self {
        case .allLinear:
            return true
        case .names(let names):
            return names.contains { name == $0 || name.hasSuffix("." + $0) }
        case .regex(let pattern):
            guard let re = try? NSRegularExpression(pattern: "^(?:" + pattern + ")$") else { return false }
            return re.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
        }
    }
}

extension Linear {
    /// Adds fresh LoRA factors as PEFT initialises them: A with PyTorch's Linear initialisation (kaiming-uniform,
    /// a = sqrt(5)), B zeros — so the adapted layer starts equal to the base one.
    public func attachLoRA(_ config: LoRAConfig, generator: Generator? = nil) throws {
        guard config.r > 0 else { throw TorchError("LoRA rank must be positive, got \(config.r)") }
        let a = try Linear(inFeatures, config.r, bias: false, dtype: weight.dtype, generator: generator)
        let b = try Linear(config.r, outFeatures, bias: false, dtype: weight.dtype, generator: generator)
        try withNoGrad { try b.weight.zeroInPlace() }
        if weight.device != .cpu {
            try a.to(device: weight.device)
            try b.to(device: weight.device)
        }
        lora_A = a
        lora_B = b
        loraScaling = config.scaling
        loraDropout = config.dropout
        loraEnabled = true
    }

    /// Folds the adapter into the weight (W += scaling · B A) and removes it.
    public func mergeLoRA() throws {
        guard let a = lora_A, let b = lora_B else { return }
        try withNoGrad {
            let delta = try b.weight.to(dtype: .float32).matmul(a.weight.to(dtype: .float32)) * loraScaling
            try weight.copyFrom(weight.to(dtype: .float32) + delta)
        }
        lora_A = nil
        lora_B = nil
    }

    public var hasLoRA: Bool { lora_A != nil }
}

extension Module {
    /// Every Linear carrying a LoRA adapter, by full name.
    public func loraLinears() -> [(String, Linear)] {
        namedModules().compactMap { name, m in
            guard let l = m as? Linear, l.hasLoRA else { return nil }
            return (name, l)
        }
    }

    /// Switches all adapters on (policy) or off (reference model).
    public func setLoRAEnabled(_ on: Bool) {
        for (_, l) in loraLinears() { l.loraEnabled = on }
    }

    /// Runs `body` with adapters off, restoring them after.
    public func withLoRADisabled<R>(_ body: () throws -> R) rethrows -> R {
        let linears = loraLinears()
        let previous = linears.map(\.1.loraEnabled)
        for (_, l) in linears { l.loraEnabled = false }
        defer { for ((_, l), p) in zip(linears, previous) { l.loraEnabled = p } }
        return try body()
    }
}
