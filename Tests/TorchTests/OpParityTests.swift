import Foundation
import JSON
import Testing
@testable import Torch

/// Each op, forward and gradient, against values PyTorch computed (tools/reference/make_torch_fixtures.py).
/// The names and arguments below mirror that script case by case.
typealias Op = @Sendable ([Tensor]) throws -> [Tensor]

let opCases: [String: Op] = [
    // creation
    "arange_int": { _ in [try Tensor.arange(0, 10, step: 3)] },
    "arange_float": { _ in [try Tensor.arange(0.5, 3.0, step: 0.25)] },
    "linspace": { _ in [try Tensor.linspace(-1, 1, steps: 7)] },
    "randn_seeded": { _ in [try Tensor.randn([5, 7], generator: Generator(seed: 42))] },
    "rand_seeded": { _ in [try Tensor.rand([5, 7], generator: Generator(seed: 42))] },
    "randint_seeded": { _ in [try Tensor.randint(0, 100, [20], generator: Generator(seed: 42))] },
    // views, indexing, joining
    "reshape": { x in [try x[0].reshape(4, 6)] },
    "permute": { x in [try x[0].permute(2, 0, 1)] },
    "transpose": { x in [try x[0].transpose(0, 2)] },
    "flatten": { x in [try x[0].flatten(start: 1, end: 2)] },
    "squeeze": { x in [try x[0].squeeze()] },
    "squeeze_dim": { x in [try x[0].squeeze(1)] },
    "unsqueeze": { x in [try x[0].unsqueeze(-1)] },
    "expand": { x in [try x[0].expand([2, 3, 4])] },
    "narrow": { x in [try x[0].narrow(1, start: 2, length: 3)] },
    "slice_step": { x in [try x[0].slice(0, 1, 6, step: 2)] },
    "slice_negative": { x in [try x[0].slice(1, -3)] },
    "select": { x in [try x[0].select(1, 2)] },
    "index_select": { x in [try x[0].indexSelect(0, x[1])] },
    "gather": { x in [try x[0].gather(1, x[1])] },
    "scatter": { x in [try x[0].scatter(1, x[1], x[2])] },
    "scatter_add": { x in [try x[0].scatterAdd(1, x[1], x[2])] },
    "masked_fill": { x in [try x[0].maskedFill(x[1], -2.5)] },
    "where": { x in [try Tensor.where(x[0], x[1], x[2])] },
    "cat": { x in [try Tensor.cat([x[0], x[1]], dim: 0)] },
    "stack": { x in [try Tensor.stack([x[0], x[1]], dim: 1)] },
    "split": { x in try x[0].split(3, dim: 0) },
    "split_sizes": { x in try x[0].split(sizes: [1, 4, 2], dim: 0) },
    "chunk": { x in try x[0].chunk(3, dim: 1) },
    "repeat": { x in [try x[0].repeating([2, 1, 3])] },
    "tril": { x in [try x[0].tril(1)] },
    "triu": { x in [try x[0].triu(-1)] },
    "pad_constant": { x in [try x[0].pad([1, 2, 0, 1], value: 0.5)] },
    "pad_reflect": { x in [try x[0].pad([2, 1], mode: .reflect)] },
    "pad_replicate": { x in [try x[0].pad([1, 1, 2, 0], mode: .replicate)] },
    "contiguous": { x in [try x[0].transpose(0, 1).contiguous()] },
    "flip": { x in [try x[0].flip([0, 1])] },
    // elementwise math
    "add": { x in [try x[0] + x[1]] },
    "sub": { x in [try x[0] - x[1]] },
    "mul": { x in [try x[0] * x[1]] },
    "div": { x in [try x[0] / x[1]] },
    "pow": { x in [try x[0].pow(x[1])] },
    "pow_scalar": { x in [try x[0].pow(3)] },
    "pow_half": { x in [try x[0].pow(0.5)] },
    "rpow": { x in [try x[0].rpow(2.0)] },
    "add_scalar": { x in [try x[0] + 1.5] },
    "rsub_scalar": { x in [try 1.5 - x[0]] },
    "mul_scalar": { x in [try x[0] * -3.0] },
    "div_scalar": { x in [try x[0] / 4.0] },
    "rdiv_scalar": { x in [try 3.0 / x[0]] },
    "int_add_int": { x in [try x[0] + 2] },
    "int_add_float": { x in [try x[0] + 0.5] },
    "int_div": { x in [try x[0] / 2] },
    "maximum": { x in [try x[0].maximum(x[1])] },
    "minimum": { x in [try x[0].minimum(x[1])] },
    "neg": { x in [try -x[0]] },
    "abs": { x in [try x[0].abs()] },
    "exp": { x in [try x[0].exp()] },
    "log": { x in [try x[0].log()] },
    "log1p": { x in [try x[0].log1p()] },
    "sqrt": { x in [try x[0].sqrt()] },
    "rsqrt": { x in [try x[0].rsqrt()] },
    "clamp": { x in [try x[0].clamp(min: -0.5, max: 0.7)] },
    "clamp_min": { x in [try x[0].clamp(min: 0.1)] },
    "tanh": { x in [try x[0].tanh()] },
    "sigmoid": { x in [try x[0].sigmoid()] },
    "logsigmoid": { x in [try x[0].logSigmoid()] },
    "relu": { x in [try x[0].relu()] },
    "silu": { x in [try x[0].silu()] },
    "gelu": { x in [try x[0].gelu()] },
    "gelu_tanh": { x in [try x[0].gelu(approximate: true)] },
    "quick_gelu": { x in [try x[0].quickGelu()] },
    "sin": { x in [try x[0].sin()] },
    "cos": { x in [try x[0].cos()] },
    "erf": { x in [try x[0].erf()] },
    "square": { x in [try x[0].square()] },
    "reciprocal": { x in [try x[0].reciprocal()] },
    // comparisons and logic
    "eq": { x in [try x[0].eq(x[1])] },
    "lt_scalar": { x in [try x[0].lt(0.1)] },
    "ge": { x in [try x[0].ge(x[1])] },
    "logical_and": { x in [try x[0].logicalAnd(x[1])] },
    "logical_or": { x in [try x[0].logicalOr(x[1])] },
    "logical_not": { x in [try x[0].logicalNot()] },
    // linear algebra
    "matmul": { x in [try x[0].matmul(x[1])] },
    "matmul_batched_broadcast": { x in [try x[0].matmul(x[1])] },
    "matmul_vector": { x in [try x[0].matmul(x[1])] },
    "bmm": { x in [try x[0].bmm(x[1])] },
    "linear": { x in [try x[0].linear(x[1], x[2])] },
    "linear_nobias": { x in [try x[0].linear(x[1])] },
    // reductions
    "sum_all": { x in [try x[0].sum()] },
    "sum_dims": { x in [try x[0].sum([0, 2])] },
    "sum_keepdim": { x in [try x[0].sum(1, keepDim: true)] },
    "mean_all": { x in [try x[0].mean()] },
    "mean_dim": { x in [try x[0].mean(-1)] },
    "max_all": { x in [try x[0].max()] },
    "max_dim": { x in let r = try x[0].max(1); return [r.values, r.indices] },
    "min_dim_keepdim": { x in let r = try x[0].min(0, keepDim: true); return [r.values, r.indices] },
    "argmax": { x in [try x[0].argmax(1)] },
    "argmax_all": { x in [try x[0].argmax()] },
    "topk": { x in let r = try x[0].topk(3, dim: 1); return [r.values, r.indices] },
    "topk_smallest": { x in let r = try x[0].topk(2, dim: 0, largest: false); return [r.values, r.indices] },
    "logsumexp": { x in [try x[0].logsumexp(1)] },
    "var": { x in [try x[0].variance([1])] },
    "var_biased_keepdim": { x in [try x[0].variance([0], unbiased: false, keepDim: true)] },
    "var_all": { x in [try x[0].variance()] },
    "norm": { x in [try x[0].norm()] },
    "norm_dim": { x in [try x[0].norm(2, dims: [1])] },
    "cumsum": { x in [try x[0].cumsum(1)] },
    "softmax": { x in [try x[0].softmax(-1)] },
    "log_softmax": { x in [try x[0].logSoftmax(0)] },
    // neural-network functions
    "layer_norm": { x in [try F.layerNorm(x[0], shape: [6], weight: x[1], bias: x[2], eps: 1e-5)] },
    "layer_norm_noaffine": { x in [try F.layerNorm(x[0], shape: [6], eps: 1e-6)] },
    "embedding": { x in [try F.embedding(x[1], weight: x[0])] },
    "embedding_padding": { x in [try F.embedding(x[1], weight: x[0], paddingIndex: 0)] },
    "conv2d": { x in [try F.conv2d(x[0], weight: x[1], bias: x[2], stride: (2, 2), padding: (1, 1))] },
    "conv2d_groups": { x in [try F.conv2d(x[0], weight: x[1], dilation: (2, 2), groups: 2)] },
    "conv2d_patch": { x in [try F.conv2d(x[0], weight: x[1], stride: (4, 4))] },
    "sdpa": { x in [try F.scaledDotProductAttention(x[0], x[1], x[2])] },
    "sdpa_causal": { x in [try F.scaledDotProductAttention(x[0], x[1], x[2], causal: true)] },
    "sdpa_bool_mask": { x in [try F.scaledDotProductAttention(x[0], x[1], x[2], mask: x[3])] },
    "sdpa_float_mask_scale": { x in [try F.scaledDotProductAttention(x[0], x[1], x[2], mask: x[3], scale: 0.3)] },
    "cross_entropy": { x in [try F.crossEntropy(x[0], x[1])] },
    "cross_entropy_sum_smooth": { x in [try F.crossEntropy(x[0], x[1], reduction: .sum, labelSmoothing: 0.1)] },
    "cross_entropy_none_ignore": { x in [try F.crossEntropy(x[0], x[1], reduction: .none, ignoreIndex: 7)] },
    "rms_norm": { x in [try F.rmsNorm(x[0], weight: x[1], eps: 1e-6)] },
    "rms_norm_bf16": { x in [try F.rmsNorm(x[0], weight: x[1], eps: 1e-6)] },
    // float32 and conversions
    "f32_matmul": { x in [try x[0].matmul(x[1])] },
    "f32_softmax": { x in [try x[0].softmax(-1)] },
    "f32_to_bf16": { x in [try x[0].to(dtype: .bfloat16)] },
    "f32_to_f16": { x in [try x[0].to(dtype: .float16)] },
    "f64_to_i64": { x in [try x[0].to(dtype: .int64)] },
    "bool_to_f32": { x in [try x[0].to(dtype: .float32)] },
    "bf16_add": { x in [try x[0] + x[1]] },
]

/// The same attention cases through the composite path, which must agree with PyTorch too.
let manualAttentionCases: [String: Op] = [
    "sdpa": { x in [try F.scaledDotProductAttention(x[0], x[1], x[2], manual: true)] },
    "sdpa_causal": { x in [try F.scaledDotProductAttention(x[0], x[1], x[2], causal: true, manual: true)] },
    "sdpa_bool_mask": { x in [try F.scaledDotProductAttention(x[0], x[1], x[2], mask: x[3], manual: true)] },
    "sdpa_float_mask_scale": { x in [try F.scaledDotProductAttention(x[0], x[1], x[2], mask: x[3], scale: 0.3, manual: true)] },
]

let opFixture: SafeTensorsFile = try! SafeTensorsFile(path: fixturePath("torch_ops.safetensors"))

/// Runs one case: forward outputs, then the gradient of sum_j (out_j * w_j) with respect to each input that
/// has a reference gradient.
func runOpCase(_ name: String, _ op: Op) throws {
    let f = opFixture
    var inputs: [Tensor] = []
    while f.info("\(name).in\(inputs.count)") != nil {
        let i = inputs.count
        let x = try f.tensor("\(name).in\(i)")
        if f.info("\(name).grad\(i)") != nil { try x.requiresGrad(true) }
        inputs.append(x)
    }
    let outputs = try op(inputs)
    var expectedOutputs = 0
    while f.info("\(name).out\(expectedOutputs)") != nil { expectedOutputs += 1 }
    #expect(outputs.count == expectedOutputs, "\(name): \(outputs.count) outputs, PyTorch gave \(expectedOutputs)")

    func tolerance(_ t: Tensor) -> (Double, Double) {
        switch t.dtype {
        case .float64: (1e-10, 1e-8)
        case .float32: (2e-6, 1e-5)
        default: (0, 0)
        }
    }
    var loss: Tensor? = nil
    for (j, out) in outputs.enumerated() where j < expectedOutputs {
        let want = try f.tensor("\(name).out\(j)")
        let (atol, rtol) = tolerance(want)
        try expectClose(out, want, atol: atol, rtol: rtol, "\(name) output \(j)")
        if f.info("\(name).w\(j)") != nil {
            let term = try (out * f.tensor("\(name).w\(j)")).sum()
            loss = try loss.map { try $0 + term } ?? term
        }
    }
    guard let loss else { return }
    try loss.backward()
    for (i, x) in inputs.enumerated() where f.info("\(name).grad\(i)") != nil {
        let want = try f.tensor("\(name).grad\(i)")
        let got = try x.grad ?? Tensor.zeros(like: x)
        let (atol, rtol) = tolerance(want)
        try expectClose(got, want, atol: atol, rtol: rtol, "\(name) gradient of input \(i)")
    }
}

@Suite struct OpParityTests {
    @Test func everyFixtureCaseIsCovered() throws {
        let names = try JSONValue.parse(Array(opFixture.metadata["cases"]!.utf8)).arrayValue!.compactMap(\.stringValue)
        #expect(names.count >= 100)
        #expect(Set(names) == Set(opCases.keys), "Swift cases and fixture cases differ: \(Set(names).symmetricDifference(opCases.keys))")
    }

    @Test(arguments: opCases.keys.sorted())
    func op(_ name: String) throws {
        try runOpCase(name, opCases[name]!)
    }

    @Test(arguments: manualAttentionCases.keys.sorted())
    func manualAttention(_ name: String) throws {
        try runOpCase(name, manualAttentionCases[name]!)
    }
}
