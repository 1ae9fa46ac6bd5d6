// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ISwornExecutor} from "./ISwornExecutor.sol";
import {SwornF32} from "./SwornF32.sol";
import {SwornMath} from "./SwornMath.sol";
import {SwornQuant} from "./SwornQuant.sol";
import {SwornProducts} from "./SwornProducts.sol";
import {SwornTrace} from "./SwornTrace.sol";
import {SwornLayout as L} from "./SwornLayout.sol";
import {SwornStepBase} from "./SwornStepBase.sol";
import {SwornAttentionSteps} from "./SwornAttentionSteps.sol";
import {SwornWeightSteps} from "./SwornWeightSteps.sol";
import {SwornTableSteps} from "./SwornTableSteps.sol";
import {SwornSampleSteps} from "./SwornSampleSteps.sol";
import {SwornTranscript} from "./SwornTranscript.sol";

/// @title SwornExecutor
/// @notice The one-step executor of sworn's traces (docs/dispute.md §5.4): given any word of a
/// trace laid out by `SwornLayout`, it recomputes that word by the canonical arithmetic from the
/// earlier words it depends on, which the witness proves against the trace's root. Bit for bit
/// as `sworn_engine::trace` computes them (checked on the engine's own traces,
/// `test/SwornExecutor.t.sol`).
///
/// Every kind of step of a greedy transcript's trace: the RoPE tables (binary64 arithmetic),
/// residual adds, gated activations, attention (scores, running maximum, exponentials, running
/// sums, transposed values, running weighted sums, outputs), RMSNorm (lanes, scales, outputs),
/// activation quantization, the products' segments of every quantized type, biases, the
/// embedding, RoPE's rotation, the repetition penalty, greedy sampling and sampled steps (the
/// temperature, the merge sort, top-k, top-p, min-p and the draw); weight rows are proven
/// against the weights root (docs/dispute.md §5.5), tokens against their hash.
/// Grammar-constrained transcripts, which `bind` refuses, stay with the committee.
contract SwornExecutor is ISwornExecutor, SwornStepBase {
    using SwornF32 for uint32;

    /// @notice The parts that run the steps (docs/dispute.md §5.4).
    SwornAttentionSteps public immutable attention;
    SwornWeightSteps public immutable weightSteps;
    SwornTableSteps public immutable tableSteps;
    SwornSampleSteps public immutable sampleSteps;

    constructor(
        SwornAttentionSteps attention_,
        SwornWeightSteps weightSteps_,
        SwornTableSteps tableSteps_,
        SwornSampleSteps sampleSteps_
    ) {
        attention = attention_;
        weightSteps = weightSteps_;
        tableSteps = tableSteps_;
        sampleSteps = sampleSteps_;
    }

    /// @notice The hash the execution context is committed by.
    function contextOf(Context memory x) public pure returns (bytes32) {
        return keccak256(abi.encode(x));
    }

    /// @notice The hash of the teacher-forced tokens.
    function tokensHash(uint32[] memory tokens) public pure returns (bytes32) {
        return keccak256(abi.encode(tokens));
    }

    /// The model's execution commitment's preimage (docs/dispute.md §5.5): its shape (binary32
    /// values as bits) and its weights root; `exec_root = keccak256(abi.encode(ExecModel))`.
    struct ExecModel {
        uint256 arch;
        uint256 nLayer;
        uint256 d;
        uint256 nHead;
        uint256 nKv;
        uint256 hd;
        uint256 ff;
        uint256 vocab;
        uint256 window;
        uint256 eps;
        uint256 ropeBase;
        uint256 localBase;
        bytes32 weights;
    }

    /// A format-4 model commitment's preimage.
    struct ModelPreimage {
        bytes32 file;
        bytes32 tensors;
        uint32 nTensors;
        bytes32 tokenizer;
        bytes32 template;
        ExecModel exec;
    }

    /// `bind`'s data: the model commitment's preimage, the request's body, the output tokens,
    /// the rest of the output's body, and every weight slot's leaf preimage (44 bytes each:
    /// `u32 type, u32 rows, u32 cols, bytes32 row root`), which must make the execution
    /// model's weights root and tell the float matrices (docs/dispute.md §6.1).
    struct Binding {
        ModelPreimage model;
        bytes request;
        uint32[] output;
        bytes outputRest;
        bytes slots;
    }

    /// The canonical arithmetic the executor implements.
    bytes32 private constant SPEC = keccak256("sworn-canon/1");

    /// @inheritdoc ISwornExecutor
    /// @dev `data` is `abi.encode(Binding)`. The transcript must be of format 4 (its model
    /// commitment carries the execution commitment), of the canonical arithmetic
    /// `sworn-canon/1`, and without a grammar: grammar-constrained steps stay with the
    /// committee. Greedy and sampled transcripts alike.
    function bind(bytes32 model, bytes32 request, bytes32 output, uint256 step, bytes calldata data)
        external
        pure
        returns (bytes32 context, uint256 leaves, uint256 element, uint32 token)
    {
        Binding memory b = abi.decode(data, (Binding));
        require(modelCommitment(b.model) == model, "executor: not the model commitment (format 4)");
        require(sha256(abi.encodePacked("sworn.request.v3\x00", b.request)) == request, "executor: request");
        require(outputCommitment(b.output, b.outputRest) == output, "executor: output");
        SwornTranscript.Request memory r = SwornTranscript.request(b.request);
        require(keccak256(r.specVersion) == SPEC, "executor: another canonical arithmetic");
        require(!r.grammar, "executor: grammar-constrained steps go to the committee");
        require(b.model.exec.arch <= L.GEMMA3, "executor: architecture");
        require(slotsRoot(b.slots) == b.model.exec.weights, "executor: the slots are not the weights root");
        uint256 n = b.output.length;
        require(step < n && r.promptTokens.length > 0, "executor: no such step");
        Context memory x = contextFor(b, r);
        context = contextOf(x);
        leaves = L.words(x.shape) / L.LEAF;
        if (x.shape.candidates == 0) {
            uint256 g = L.segments(x.shape.vocab, L.ARGMAX_SEGMENT);
            element = L.find(x.shape, L.ARGMAX, 0, L.NONE).start + (step * g + g - 1) * 2 + 1;
        } else {
            element = L.find(x.shape, L.SAMPLED, 0, L.NONE).start + step;
        }
        token = b.output[step];
    }

    /// @notice The execution context `bind` gives for `data`, and the teacher-forced tokens:
    /// what a player puts in its witnesses (no commitment is checked here; `bind` checks them).
    function execution(bytes calldata data) external pure returns (Context memory x, uint32[] memory tokens) {
        Binding memory b = abi.decode(data, (Binding));
        SwornTranscript.Request memory r = SwornTranscript.request(b.request);
        x = contextFor(b, r);
        uint256 p = r.promptTokens.length;
        tokens = new uint32[](p + b.output.length - 1);
        for (uint256 i = 0; i < p; i++) {
            tokens[i] = r.promptTokens[i];
        }
        for (uint256 i = 0; i + 1 < b.output.length; i++) {
            tokens[p + i] = b.output[i];
        }
    }

    /// `SHA-256("sworn.model.v2\0" || file || tensors || n_tensors || tokenizer || template ||
    /// exec_root)`.
    function modelCommitment(ModelPreimage memory m) private pure returns (bytes32) {
        bytes32 execRoot = keccak256(abi.encode(m.exec));
        return sha256(
            abi.encodePacked("sworn.model.v2\x00", m.file, m.tensors, m.nTensors, m.tokenizer, m.template, execRoot)
        );
    }

    /// `SHA-256("sworn.output.v2\0" || u32 count || tokens || rest)`.
    function outputCommitment(uint32[] memory tokens, bytes memory rest) private pure returns (bytes32) {
        bytes memory packed = new bytes(4 + 4 * tokens.length);
        uint256 n = tokens.length;
        assembly {
            mstore(add(packed, 32), shl(224, n))
        }
        for (uint256 i = 0; i < n; i++) {
            uint256 t = tokens[i];
            // Each store writes the token's 4 bytes and zeros after them, which the next token's
            // store overwrites (the last spills into unallocated memory).
            assembly {
                mstore(add(add(packed, 36), mul(i, 4)), shl(224, t))
            }
        }
        return sha256(abi.encodePacked("sworn.output.v2\x00", packed, rest));
    }

    /// The weights root over the slots' leaves (`keccak256(0x00 || 44 bytes)` each), in the
    /// trace tree's shape (`SwornTrace`): pairs hashed level by level, an odd last node carried
    /// up, which is RFC 6962's largest-power-of-two split.
    function slotsRoot(bytes memory slots) private pure returns (bytes32) {
        require(slots.length % 44 == 0 && slots.length > 0, "executor: slots");
        uint256 n = slots.length / 44;
        bytes32[] memory level = new bytes32[](n);
        for (uint256 i = 0; i < n; i++) {
            bytes32 h;
            assembly {
                let p := add(add(slots, 32), mul(i, 44))
                // 0x00 || the 44 bytes, hashed from scratch memory past the free pointer.
                let m := mload(0x40)
                mstore8(m, 0)
                mcopy(add(m, 1), p, 44)
                h := keccak256(m, 45)
            }
            level[i] = h;
        }
        while (n > 1) {
            uint256 m = 0;
            for (uint256 i = 0; i + 1 < n; i += 2) {
                level[m++] = SwornTrace.nodeHash(level[i], level[i + 1]);
            }
            if (n % 2 == 1) level[m++] = level[n - 1];
            n = m;
        }
        return level[0];
    }

    /// The float matrices (`SwornLayout.Shape.floatMats`) by the slots' types (F32 0, F16 1,
    /// BF16 30): bit `m` for the layers' matrices `m`, which must be float on every layer or
    /// on none, and bit 7 for the head (slot 2).
    function floatMats(bytes memory slots, uint256 nLayer) private pure returns (uint256 bits) {
        if (isFloat(slots, 2)) bits = 1 << L.M_HEAD;
        for (uint256 m = 0; m < 7; m++) {
            bool first = isFloat(slots, GLOBAL_SLOTS + m);
            for (uint256 l = 1; l < nLayer; l++) {
                require(
                    isFloat(slots, GLOBAL_SLOTS + LAYER_SLOTS * l + m) == first,
                    "executor: a matrix role mixes float and quantized layers (the committee's)"
                );
            }
            if (first) bits |= 1 << m;
        }
    }

    function isFloat(bytes memory slots, uint256 slot) private pure returns (bool) {
        require(slots.length >= (slot + 1) * 44, "executor: slots");
        uint256 code;
        assembly {
            code := shr(224, mload(add(add(slots, 32), mul(slot, 44))))
        }
        return code == 0 || code == 1 || code == 30;
    }

    /// The execution context of a bound transcript: its shape, weights root, the
    /// teacher-forced tokens (the prompt, then every output token but the last) and its penalty.
    function contextFor(Binding memory b, SwornTranscript.Request memory r) private pure returns (Context memory x) {
        ExecModel memory e = b.model.exec;
        uint256 p = r.promptTokens.length;
        uint256 n = b.output.length;
        x.shape = L.Shape(
            e.arch,
            e.nLayer,
            e.d,
            e.nHead,
            e.nKv,
            e.hd,
            e.ff,
            e.vocab,
            e.window,
            p + n - 1,
            n,
            r.repeatPenalty != 0x3F800000,
            uint32(e.eps),
            0,
            false,
            false,
            floatMats(b.slots, e.nLayer)
        );
        // A temperature's sign bit aside, 0 is greedy decoding (`SamplingParams::is_greedy`).
        if (r.temperature & 0x7FFFFFFF != 0) {
            x.shape.candidates = r.topK > 0 && r.topK < e.vocab ? r.topK : e.vocab;
            x.shape.topP = SwornMath.lt(r.topP, 0x3F800000);
            x.shape.minP = SwornMath.lt(0, r.minP);
        }
        uint32[] memory tokens = new uint32[](p + n - 1);
        for (uint256 i = 0; i < p; i++) {
            tokens[i] = r.promptTokens[i];
        }
        for (uint256 i = 0; i + 1 < n; i++) {
            tokens[p + i] = b.output[i];
        }
        x.weights = e.weights;
        x.tokens = tokensHash(tokens);
        x.penalty = r.repeatPenalty;
        x.lastN = r.repeatLastN;
        x.ropeBase = uint32(e.ropeBase);
        x.localBase = uint32(e.localBase);
        (x.temperature, x.topP, x.minP, x.seed) = (r.temperature, r.topP, r.minP, r.seed);
    }

    /// @inheritdoc ISwornExecutor
    /// @dev `witness` is `abi.encode(Context, Leaf[], Weight[], uint32[] tokens)`: the
    /// context, the leaves holding the inputs, the weight rows the step reads and the
    /// teacher-forced tokens (empty when the step reads none).
    function execute(bytes32 context, bytes32 root, uint256 leaves, uint256 element, bytes calldata witness)
        external
        view
        returns (uint32)
    {
        Ctx memory c;
        (c.x, c.leaves, c.weights, c.tokens) = abi.decode(witness, (Context, Leaf[], Weight[], uint32[]));
        c.s = c.x.shape;
        require(context == contextOf(c.x), "executor: context");
        require(L.words(c.s) == leaves * L.LEAF, "executor: trace size");
        for (uint256 k = 0; k < c.leaves.length; k++) {
            Leaf memory f = c.leaves[k];
            require(SwornTrace.proves(f.words, f.index, leaves, f.proof, root), "executor: leaf proof");
        }
        if (c.tokens.length > 0) require(tokensHash(c.tokens) == c.x.tokens, "executor: tokens");
        c.element = element;
        c.r = L.locate(c.s, element);
        c.i = element - c.r.start;
        if (c.i >= c.r.len) return 0; // a leaf's padding after its region
        // Float results are canonical (SwornF32 makes every NaN so, and the trace's words are);
        // integer words (packed quants, ids) are returned as they are.
        uint256 k = c.r.kind;
        if (k == L.ROPE_TABLE) return tableSteps.step(c);
        if (k >= L.SCALED) return sampleSteps.step(c);
        // A float matrix's product is an eight-lane dot product, as attention's scores are.
        bool product = k == L.MAT_PARTIAL || k == L.MAT_OUT;
        if (product && L.floatMat(c.s, c.r.sub)) return attention.step(c);
        bool w = k == L.QUANT || k == L.EMBED || k == L.NORM_OUT || product || k == L.BIAS || k == L.PENALIZED;
        return w ? weightSteps.step(c) : attention.step(c);
    }
}
