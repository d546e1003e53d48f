/// A layer with parameters named as in Hugging Face checkpoints.
///
/// Subclasses declare their parameters and children as stored properties whose names are the checkpoint's keys
/// (`q_proj`, `weight`, `layers`): a `Tensor` (or `Tensor?`) property is a parameter, a `Module` (or `Module?`)
/// property is a child, and an array of modules is a module list whose elements are named `0`, `1`, ...
/// Anything else (configuration, non-persistent buffers wrapped in `Buffer`) is not part of the state.
open class Module: @unchecked Sendable {
    /// Train mode (dropout active) or eval mode.
    public private(set) var training = true

    public init() {}

    /// Checkpoint names for properties whose Swift name must differ (a keyword such as BERT's `self`).
    open class var checkpointNames: [String: String] { [:] }

    /// Direct children and parameters in declaration order, found by reflection over stored properties.
    private func members() -> (parameters: [(String, Tensor)], children: [(String, Module)]) {
        var parameters: [(String, Tensor)] = []
        var children: [(String, Module)] = []
        var mirrors: [Mirror] = []
        var mirror: Mirror? = Mirror(reflecting: self)
        while let m = mirror {
            mirrors.append(m)
            mirror = m.superclassMirror
        }
        // Base classes first, so inherited members come before a subclass's own.
        let renames = type(of: self).checkpointNames
        for m in mirrors.reversed() {
            for child in m.children {
                guard let property = child.label else { continue }
                let label = renames[property] ?? property
                switch child.value {
                case let t as Tensor:
                    parameters.append((label, t))
                case let module as Module:
                    children.append((label, module))
                case let list as [Module]:
                    for (i, module) in list.enumerated() { children.append(("\(label).\(i)", module)) }
                default:
                    continue
                }
            }
        }
        return (parameters, children)
    }

    /// Every parameter with its full dotted name (`model.layers.0.self_attn.q_proj.weight`).
    public func namedParameters(prefix: String = "") -> [(String, Tensor)] {
        let (parameters, children) = members()
        var out = parameters.map { (prefix + $0.0, $0.1) }
        for (name, child) in children {
            out += child.namedParameters(prefix: prefix + name + ".")
        }
        return out
    }

    public func parameters() -> [Tensor] { namedParameters().map(\.1) }

    /// Parameters that will receive gradients.
    public func trainableParameters() -> [(String, Tensor)] { namedParameters().filter { $0.1.requiresGrad } }

    /// This module and every descendant with its dotted name ("" for self).
    public func namedModules(prefix: String = "") -> [(String, Module)] {
        var out: [(String, Module)] = [(prefix, self)]
        for (name, child) in members().children {
            out += child.namedModules(prefix: prefix.isEmpty ? name : prefix + "." + name)
        }
        return out
    }

    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }

    /// Switches train mode (dropout on) or eval mode for this module and all descendants.
    public func train(_ on: Bool = true) {
        for (_, m) in namedModules() { m.training = on }
    }
    public func eval() { train(false) }

    /// Stops gradients for every parameter whose name matches `filter` (all by default).
    public func freeze(where filter: (String) -> Bool = { _ in true }) throws {
        for (name, p) in namedParameters() where filter(name) { try p.requiresGrad(false) }
    }
    public func unfreeze(where filter: (String) -> Bool = { _ in true }) throws {
        for (name, p) in namedParameters() where filter(name) { try p.requiresGrad(true) }
    }

    /// The current parameters by name (the tensors themselves, not copies).
    public func stateDict() -> [String: Tensor] { Dictionary(namedParameters(), uniquingKeysWith: { a, _ in a }) }

    /// Copies `state` into the parameters. Strict loading fails, naming every missing key, unexpected key and
    /// shape mismatch, before anything is changed; non-strict loading copies what matches and reports the rest.
    @discardableResult
    public func load(_ state: [String: Tensor], strict: Bool = true) throws -> LoadReport {
        let params = namedParameters()
        let report = Module.compare(params, with: state.mapValues(\.shape))
        if strict && !report.isClean { throw report }
        let bad = Set(report.mismatched.map(\.name))
        try withNoGrad {
            for (name, p) in params {
                guard let src = state[name], !bad.contains(name) else { continue }
                // copy_ converts dtype and device into the parameter's own.
                try p.copyFrom(src)
            }
        }
        return report
    }

    /// The keys a source lacks, the ones it has beyond the parameters, and the shapes that differ.
    static func compare(_ params: [(String, Tensor)], with shapes: [String: [Int]]) -> LoadReport {
        var report = LoadReport()
        let expected = Set(params.map(\.0))
        report.unexpected = shapes.keys.filter { !expected.contains($0) }.sorted()
        for (name, p) in params {
            guard let shape = shapes[name] else {
                report.missing.append(name)
                continue
            }
            if shape != p.shape { report.mismatched.append((name, expected: p.shape, got: shape)) }
        }
        return report
    }

    /// Strict loading one tensor at a time, for checkpoints larger than memory allows twice. `shapes` (the source's
    /// keys and shapes, known before any data is read) is checked as `load(_:)` checks a state dict; then each
    /// parameter takes `tensor(key)` as its data, converted to `dtype` (floating-point parameters) and `device`: the
    /// loaded tensor itself when it already is, so the peak is the model plus one tensor, never a second copy of it.
    public func load(shapes: [String: [Int]], dtype: DType, device: Device, tensor: (String) throws -> Tensor) throws {
        let params = namedParameters()
        let report = Module.compare(params, with: shapes)
        if !report.isClean { throw report }
        try withNoGrad {
            for (name, p) in params {
                var t = try tensor(name)
                let target = p.dtype.isFloatingPoint ? dtype : p.dtype
                if t.dtype != target { t = try t.to(dtype: target) }
                if t.device != device { t = try t.to(device: device) }
                try p.setData(t)
            }
        }
    }

    /// Converts every parameter to `dtype` in place (identity kept, as `module.to(dtype)`).
    public func to(dtype: DType) throws {
        for p in parameters() where p.dtype != dtype && p.dtype.isFloatingPoint {
            try p.setData(try p.detach().to(dtype: dtype))
        }
    }

    public func to(device: Device) throws {
        for p in parameters() where p.device != device {
            try p.setData(try p.detach().to(device: device))
        }
    }
}

/// What `Module.load` found: keys it lacked, keys it did not expect, and tensors whose shape differs.
public struct LoadReport: Error, CustomStringConvertible {
    public var missing: [String] = []
    public var unexpected: [String] = []
    public var mismatched: [(name: String, expected: [Int], got: [Int])] = []

    public var isClean: Bool { missing.isEmpty && unexpected.isEmpty && mismatched.isEmpty }

    public var description: String {
        var lines: [String] = []
        if !missing.isEmpty { lines.append("missing keys: " + missing.joined(separator: ", ")) }
        if !unexpected.isEmpty { lines.append("unexpected keys: " + unexpected.joined(separator: ", ")) }
        for m in mismatched { lines.append("shape mismatch for \(m.name): model has \(m.expected), checkpoint has \(m.got)") }
        return lines.isEmpty ? "state dict loaded cleanly" : "state dict does not match the model: " + lines.joined(separator: "; ")
    }
}

/// A tensor kept by a module that is not a parameter and not saved (rotary frequencies, position ids).
public struct Buffer: @unchecked Sendable {
    public var tensor: Tensor
    public init(_ tensor: Tensor) { self.tensor = tensor }
}
