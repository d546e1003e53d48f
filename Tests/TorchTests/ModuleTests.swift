import Foundation
import Testing
@testable import Torch

/// A small model shaped like a Hugging Face decoder, to check names, loading and modes.
final class TinyAttention: Module, @unchecked Sendable {
    let q_proj: Linear
    let o_proj: Linear
    init(dim: Int = 4) throws {
        q_proj = try Linear(4, 4, bias: false)
        o_proj = try Linear(4, 4)
        super.init()
    }
}

final class TinyLayer: Module, @unchecked Sendable {
    let self_attn: TinyAttention
    let input_layernorm: RMSNorm
    let dropout = Dropout(0.5)
    init(dim: Int = 4) throws {
        self_attn = try TinyAttention(dim: dim)
        input_layernorm = try RMSNorm(4)
        super.init()
    }
}

final class TinyModel: Module, @unchecked Sendable {
    let embed_tokens: Embedding
    let layers: [TinyLayer]
    let norm: LayerNorm
    let conv: Conv2d
    let rotary = Buffer(try! Tensor.ones([2]))  // not state
    let hiddenSize = 4  // not state
    init(dim: Int = 4) throws {
        embed_tokens = try Embedding(10, 4, paddingIndex: 0)
        layers = try [TinyLayer(dim: dim), TinyLayer(dim: dim)]
        norm = try LayerNorm(4)
        conv = try Conv2d(3, 2, kernelSize: (2, 2), bias: false)
        super.init()
    }
}

@Suite struct ModuleTests {
    /// Layers built for a checkpoint load draw no random numbers: the same generator gives the same draw after
    /// building them in the skipping scope, and a different one after building them normally.
    @Test func layersBuiltForLoadingSkipTheirInitialisation() throws {
        let g = try Generator(seed: 11)
        func build() throws {
            _ = try Linear(64, 32, generator: g)
            _ = try Conv2d(3, 8, kernelSize: (3, 3), generator: g)
            _ = try Embedding(100, 16, generator: g)
        }
        try g.seed(11)
        let fresh = try Tensor.rand([4], generator: g)
        try g.seed(11)
        try ParameterInitialisation.skipped { try build() }
        #expect(try Tensor.rand([4], generator: g).equal(fresh))
        try g.seed(11)
        try build()
        #expect(try !Tensor.rand([4], generator: g).equal(fresh))
        #expect(!ParameterInitialisation.isSkipped)
    }

    @Test func parametersCarryCheckpointNames() throws {
        let m = try TinyModel(dim: 4)
        let names = m.namedParameters().map(\.0)
        #expect(names == [
            "embed_tokens.weight",
            "layers.0.self_attn.q_proj.weight", "layers.0.self_attn.o_proj.weight", "layers.0.self_attn.o_proj.bias",
            "layers.0.input_layernorm.weight",
            "layers.1.self_attn.q_proj.weight", "layers.1.self_attn.o_proj.weight", "layers.1.self_attn.o_proj.bias",
            "layers.1.input_layernorm.weight",
            "norm.weight", "norm.bias", "conv.weight",
        ])
        #expect(m.parameterCount == 40 + 2 * (16 + 16 + 4 + 4) + 8 + 24)
        #expect(m.namedModules().map(\.0).contains("layers.1.self_attn.q_proj"))
        #expect(try m.embed_tokens.weight.select(0, 0).abs().sum().item() == 0)
    }

    @Test func strictLoadingNamesEveryProblem() throws {
        let m = try TinyModel(dim: 4)
        var state = try m.stateDict().mapValues { try $0.detach().clone() }
        state["layers.0.self_attn.q_proj.weight"] = nil
        state["layers.1.mlp.up_proj.weight"] = try Tensor.zeros([2])
        state["norm.weight"] = try Tensor.ones([5])
        do {
            try m.load(state)
            Issue.record("strict load accepted a bad state dict")
        } catch let report as LoadReport {
            #expect(report.missing == ["layers.0.self_attn.q_proj.weight"])
            #expect(report.unexpected == ["layers.1.mlp.up_proj.weight"])
            #expect(report.mismatched.map(\.name) == ["norm.weight"])
            let text = report.description
            #expect(text.contains("layers.0.self_attn.q_proj.weight") && text.contains("mlp.up_proj") && text.contains("[5]"))
        }
        // Non-strict copies what matches.
        let source = try Tensor.full([4, 4], 0.25)
        state["layers.0.self_attn.o_proj.weight"] = source
        let report = try m.load(state, strict: false)
        #expect(!report.isClean)
        #expect(try m.layers[0].self_attn.o_proj.weight.detach().equal(source))
    }

    @Test func loadConvertsDTypeAndKeepsIdentity() throws {
        let m = try TinyModel(dim: 4)
        let weight = m.norm.weight
        var state = try m.stateDict().mapValues { try $0.detach().to(dtype: .bfloat16) }
        state["norm.weight"] = try Tensor.full([4], 3, dtype: .bfloat16)
        try m.load(state)
        #expect(m.norm.weight === weight && weight.dtype == .float32)
        #expect(try weight.detach().toArray(Float.self) == [3, 3, 3, 3])
        try m.to(dtype: .bfloat16)
        #expect(m.norm.weight === weight && weight.dtype == .bfloat16 && weight.requiresGrad)
    }

    @Test func freezeAndModes() throws {
        let m = try TinyModel(dim: 4)
        #expect(m.trainableParameters().count == 12)
        try m.freeze()
        try m.unfreeze { $0.contains("self_attn") }
        #expect(m.trainableParameters().map(\.0).allSatisfy { $0.contains("self_attn") })
        #expect(m.trainableParameters().count == 6)
        #expect(m.layers[1].dropout.training)
        m.eval()
        #expect(!m.layers[1].dropout.training)
        let x = try Tensor.ones([8])
        #expect(try m.layers[1].dropout(x).equal(x))
        m.train()
        #expect(m.layers[0].dropout.training)
    }

    /// Layers compute what the functional ops compute, and the default initialisation has PyTorch's bounds.
    @Test func layersForward() throws {
        let lin = try Linear(100, 3)
        #expect(try lin.weight.abs().max().item() <= 0.1)
        let x = try Tensor.randn([2, 100])
        #expect(try lin(x).equal(x.linear(lin.weight, lin.bias)))
        let ln = try LayerNorm(100)
        let y = try ln(x)
        #expect(try y.mean(-1).abs().max().item() < 1e-5)
        let conv = try Conv2d(3, 4, kernelSize: (3, 3), stride: (2, 2), padding: (1, 1))
        #expect(try conv(Tensor.randn([1, 3, 8, 8])).shape == [1, 4, 4, 4])
        let emb = try Embedding(5, 2)
        #expect(try emb(Tensor([4, 0] as [Int64])).shape == [2, 2])
    }

    /// A model saved to safetensors and loaded into a fresh one gives the same state.
    @Test func stateDictThroughSafeTensors() throws {
        let a = try TinyModel(dim: 4), b = try TinyModel(dim: 4)
        let dir = try temporaryDirectory()
        try SafeTensors.write(a.stateDict(), to: dir + "/model.safetensors")
        try b.load(Checkpoint(path: dir).loadAll())
        for ((n1, p1), (n2, p2)) in zip(a.namedParameters(), b.namedParameters()) {
            #expect(n1 == n2)
            #expect(try p1.detach().equal(p2.detach()))
        }
    }
}
