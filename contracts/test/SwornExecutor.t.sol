// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornExecutor} from "../src/SwornExecutor.sol";
import {SwornAttentionSteps} from "../src/SwornAttentionSteps.sol";
import {SwornWeightSteps} from "../src/SwornWeightSteps.sol";
import {SwornLayout} from "../src/SwornLayout.sol";
import {VectorTest} from "./Vectors.sol";
import {Vm} from "./Vm.sol";

/// The one-step executor against the engine's own traces (`sworn_engine::trace::vectors`:
/// synthetic Llama, K-quant, Gemma 3, Qwen 2 and Qwen 3 models, every executable kind of step on
/// the first and last layers): each word recomputed on chain from its proven inputs and weight
/// rows is the engine's, and the layout's size is the engine's.
contract SwornExecutorTest is VectorTest {
    SwornExecutor exec;

    function setUp() public {
        exec = new SwornExecutor(new SwornAttentionSteps(), new SwornWeightSteps());
    }

    struct File {
        bytes data;
        SwornExecutor.Context x;
        bytes32 root;
        uint256 leaves;
        uint32[] tokens;
        uint256 cases;
        uint256 at;
    }

    function hashAt(bytes memory d, uint256 off) internal pure returns (bytes32 h) {
        assembly {
            h := mload(add(add(d, 32), off))
        }
    }

    function open(string memory name) internal view returns (File memory f) {
        f.data = vectors(name);
        uint256[13] memory w;
        for (uint256 i = 0; i < 13; i++) {
            w[i] = word(f.data, 4 * i);
        }
        f.x.shape = SwornLayout.Shape(
            w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9], w[10], w[11] == 1, uint32(w[12])
        );
        f.root = hashAt(f.data, 52);
        f.leaves = word(f.data, 84);
        f.x.weights = hashAt(f.data, 88);
        f.x.penalty = word(f.data, 120);
        f.x.lastN = word(f.data, 124);
        uint256 n = word(f.data, 128);
        f.tokens = new uint32[](n);
        for (uint256 i = 0; i < n; i++) {
            f.tokens[i] = word(f.data, 132 + 4 * i);
        }
        f.x.tokens = exec.tokensHash(f.tokens);
        f.cases = word(f.data, 132 + 4 * n);
        f.at = 136 + 4 * n;
    }

    /// The proof of `n` hashes at `o`.
    function proofAt(bytes memory d, uint256 o, uint256 n) internal pure returns (bytes32[] memory p) {
        p = new bytes32[](n);
        for (uint256 j = 0; j < n; j++) {
            p[j] = hashAt(d, o + 32 * j);
        }
    }

    /// The leaves of the case at `o`, and the offset after them.
    function leavesAt(bytes memory d, uint256 o) internal pure returns (SwornExecutor.Leaf[] memory leaves, uint256) {
        uint256 n = word(d, o);
        o += 4;
        leaves = new SwornExecutor.Leaf[](n);
        for (uint256 k = 0; k < n; k++) {
            leaves[k].index = word(d, o);
            for (uint256 j = 0; j < 32; j++) {
                leaves[k].words[j] = word(d, o + 4 + 4 * j);
            }
            uint256 np = word(d, o + 132);
            leaves[k].proof = proofAt(d, o + 136, np);
            o += 136 + 32 * np;
        }
        return (leaves, o);
    }

    /// The weight rows of the case at `o`, and the offset after them.
    function weightsAt(bytes memory d, uint256 o) internal pure returns (SwornExecutor.Weight[] memory ws, uint256) {
        uint256 n = word(d, o);
        o += 4;
        ws = new SwornExecutor.Weight[](n);
        for (uint256 k = 0; k < n; k++) {
            SwornExecutor.Weight memory w = ws[k];
            (w.slot, w.code, w.rows, w.cols, w.row) =
            (word(d, o), word(d, o + 4), word(d, o + 8), word(d, o + 12), word(d, o + 16));
            uint256 nb = word(d, o + 20);
            w.data = new bytes(nb);
            for (uint256 j = 0; j < nb; j++) {
                w.data[j] = d[o + 24 + j];
            }
            o += 24 + ((nb + 3) / 4) * 4;
            uint256 np = word(d, o);
            w.rowProof = proofAt(d, o + 4, np);
            o += 4 + 32 * np;
            np = word(d, o);
            w.slotProof = proofAt(d, o + 4, np);
            o += 4 + 32 * np;
        }
        return (ws, o);
    }

    /// Reads the case at `f.at` and advances past it: its element, value and witness.
    function next(File memory f) internal pure returns (uint256 element, uint32 value, bytes memory witness) {
        bytes memory d = f.data;
        element = word(d, f.at);
        value = word(d, f.at + 4);
        (SwornExecutor.Leaf[] memory leaves, uint256 o) = leavesAt(d, f.at + 8);
        SwornExecutor.Weight[] memory ws;
        (ws, o) = weightsAt(d, o);
        uint32[] memory tokens = word(d, o) == 1 ? f.tokens : new uint32[](0);
        f.at = o + 4;
        witness = abi.encode(f.x, leaves, ws, tokens);
    }

    function check(string memory name) internal view {
        File memory f = open(name);
        assertEq(SwornLayout.words(f.x.shape), f.leaves * 32, "the layout's size is the engine's");
        bytes32 context = exec.contextOf(f.x);
        for (uint256 i = 0; i < f.cases; i++) {
            (uint256 element, uint32 value, bytes memory witness) = next(f);
            uint32 got = exec.execute(context, f.root, f.leaves, element, witness);
            if (got != value) {
                SwornLayout.Region memory r = SwornLayout.locate(f.x.shape, element);
                revert(
                    string.concat(
                        name,
                        ": element ",
                        vm.toString(element),
                        " of kind ",
                        vm.toString(r.kind),
                        ".",
                        vm.toString(r.sub),
                        " gives ",
                        vm.toString(uint256(got)),
                        ", the engine ",
                        vm.toString(uint256(value))
                    )
                );
            }
        }
        assertEq(f.at, f.data.length, "every case read");
    }

    /// Forge prints these with `-vv`.
    event log_named_uint(string key, uint256 val);

    /// The kind of step a region holds, as a name for the gas table.
    function kindName(SwornLayout.Region memory r) internal pure returns (string memory) {
        string[22] memory names = [
            "",
            "rope table",
            "embedding",
            "norm lanes",
            "norm scale",
            "norm output",
            "quantization",
            "product segment",
            "product output",
            "bias",
            "rope",
            "score",
            "running max",
            "exp",
            "running sum",
            "values transposed",
            "weighted sum",
            "attention output",
            "residual add",
            "gated activation",
            "penalty",
            "greedy argmax"
        ];
        return string.concat(names[r.kind], " (", vm.toString(r.sub), ")");
    }

    /// A real model's steps: each must match the engine and cost well under a block. Logs the
    /// largest execution gas (and the witness's calldata gas at 16 a byte, an upper bound) per
    /// kind of step.
    function real(string memory name) internal {
        File memory f = open(name);
        assertEq(SwornLayout.words(f.x.shape), f.leaves * 32, "the layout's size is the engine's");
        bytes32 context = exec.contextOf(f.x);
        uint256[32][2] memory most; // per kind and sub: gas, calldata
        uint256 worst;
        for (uint256 i = 0; i < f.cases; i++) {
            (uint256 element, uint32 value, bytes memory witness) = next(f);
            uint32 got = exec.execute(context, f.root, f.leaves, element, witness);
            Vm.Gas memory g = vm.lastCallGas();
            SwornLayout.Region memory r = SwornLayout.locate(f.x.shape, element);
            if (got != value) revert(string.concat(name, ": ", kindName(r), " differs at ", vm.toString(element)));
            uint256 total = g.gasTotalUsed + 16 * witness.length;
            assertTrue(total < 5_000_000, string.concat(name, ": ", kindName(r), " over 5M gas"));
            uint256 k = r.kind;
            if (g.gasTotalUsed > most[0][k]) {
                most[0][k] = g.gasTotalUsed;
                most[1][k] = 16 * witness.length;
                emit log_named_uint(string.concat(name, " ", kindName(r), " gas"), g.gasTotalUsed);
                emit log_named_uint(string.concat(name, " ", kindName(r), " calldata gas"), 16 * witness.length);
            }
            if (total > worst) worst = total;
        }
        emit log_named_uint(string.concat(name, " worst step, gas with calldata"), worst);
        assertEq(f.at, f.data.length, "every case read");
    }

    /// SmolLM2-135M (Q4_1, Q8_0) and Gemma 3 270M (Q5_0, Q8_0, Q4_K, Q6_K): the files
    /// `scripts/contracts.sh` writes from the fetched models.
    function test_smollm2_steps_match_and_fit_in_a_block() public {
        real("trace_smollm2");
    }

    function test_gemma3_270m_steps_match_and_fit_in_a_block() public {
        real("trace_gemma3_270m");
    }

    // --- bind ---

    /// `bytes` at `o` (u32 length, padded to words), and the offset after.
    function bytesAt(bytes memory d, uint256 o) internal pure returns (bytes memory b, uint256) {
        uint256 n = word(d, o);
        b = new bytes(n);
        for (uint256 i = 0; i < n; i++) {
            b[i] = d[o + 4 + i];
        }
        return (b, o + 4 + ((n + 3) / 4) * 4);
    }

    struct BindCase {
        bytes32 model;
        bytes32 request;
        bytes32 output;
        uint256 step;
        bytes data;
        bool takes;
        bytes32 context;
        uint256 leaves;
        uint256 element;
        uint32 token;
    }

    function bindCase(string memory name) internal view returns (BindCase memory c) {
        bytes memory d = vectors(name);
        SwornExecutor.Binding memory b;
        b.model.file = hashAt(d, 0);
        b.model.tensors = hashAt(d, 32);
        b.model.nTensors = word(d, 64);
        b.model.tokenizer = hashAt(d, 68);
        b.model.template = hashAt(d, 100);
        uint256[12] memory e;
        for (uint256 i = 0; i < 12; i++) {
            e[i] = word(d, 132 + 4 * i);
        }
        b.model.exec = SwornExecutor.ExecModel(
            e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7], e[8], e[9], e[10], e[11], hashAt(d, 180)
        );
        uint256 o;
        (b.request, o) = bytesAt(d, 212);
        uint256 n = word(d, o);
        b.output = new uint32[](n);
        for (uint256 i = 0; i < n; i++) {
            b.output[i] = word(d, o + 4 + 4 * i);
        }
        (b.outputRest, o) = bytesAt(d, o + 4 + 4 * n);
        (c.model, c.request, c.output) = (hashAt(d, o), hashAt(d, o + 32), hashAt(d, o + 64));
        c.step = word(d, o + 96);
        c.takes = word(d, o + 100) == 1;
        if (c.takes) {
            c.context = hashAt(d, o + 104);
            (c.leaves, c.element, c.token) = (word(d, o + 136), word(d, o + 140), word(d, o + 144));
        }
        c.data = abi.encode(b);
    }

    /// `bind` on a real format-4 transcript gives what the engine's binding gives (context,
    /// trace size, the disputed token's word and the token), and refuses a tampered body.
    function checkBind(string memory name) internal view {
        BindCase memory c = bindCase(name);
        require(c.takes, "a greedy transcript");
        (bytes32 context, uint256 leaves, uint256 element, uint32 token) =
            exec.bind(c.model, c.request, c.output, c.step, c.data);
        assertEq(context, c.context, "context");
        assertEq(leaves, c.leaves, "leaves");
        assertEq(element, c.element, "element");
        assertEq(token, c.token, "token");
        bytes32 other = bytes32(uint256(c.output) ^ 1);
        try exec.bind(c.model, c.request, other, c.step, c.data) {
            revert("an output commitment that is not the transcript's is refused");
        } catch {}
        try exec.bind(c.model, c.request, c.output, c.step + 1, c.data) {
            revert("a step past the output is refused");
        } catch {}
    }

    function test_bind_greedy_smollm2_transcripts() public view {
        checkBind("bind_greedy-text");
        checkBind("bind_greedy-chat");
    }

    function test_bind_greedy_gemma3_transcripts() public view {
        checkBind("bind_gemma3-greedy-text");
        checkBind("bind_gemma3-greedy-chat");
    }

    /// A sampled transcript stays with the committee.
    function test_bind_refuses_sampled_transcripts() public {
        for (uint256 i = 0; i < 2; i++) {
            BindCase memory c = bindCase(i == 0 ? "bind_sampled-text" : "bind_gemma3-sampled-text");
            assertTrue(!c.takes, "the engine refuses it too");
            vm.expectRevert(bytes("executor: sampled steps go to the committee"));
            exec.bind(c.model, c.request, c.output, c.step, c.data);
        }
    }

    /// Each part of the executor fits the EVM's 24,576-byte code size limit (EIP-170).
    function test_the_executor_fits_the_code_size_limit() public view {
        assertTrue(address(exec).code.length <= 24_576, "SwornExecutor");
        assertTrue(address(exec.attention()).code.length <= 24_576, "SwornAttentionSteps");
        assertTrue(address(exec.weightSteps()).code.length <= 24_576, "SwornWeightSteps");
    }

    function test_llama_steps_match_the_engine() public view {
        check("trace_llama");
    }

    function test_gemma3_steps_match_the_engine() public view {
        check("trace_gemma3");
    }

    function test_k_quant_steps_match_the_engine() public view {
        check("trace_kquants");
    }

    function test_qwen2_steps_match_the_engine() public view {
        check("trace_qwen2");
    }

    function test_qwen3_steps_match_the_engine() public view {
        check("trace_qwen3");
    }
}
