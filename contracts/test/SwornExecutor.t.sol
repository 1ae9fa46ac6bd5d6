// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornExecutor} from "../src/SwornExecutor.sol";
import {SwornAttentionSteps} from "../src/SwornAttentionSteps.sol";
import {SwornWeightSteps} from "../src/SwornWeightSteps.sol";
import {SwornTableSteps} from "../src/SwornTableSteps.sol";
import {SwornSampleSteps} from "../src/SwornSampleSteps.sol";
import {SwornLayout} from "../src/SwornLayout.sol";
import {TraceVectors} from "./TraceVectors.sol";
import {Vm} from "./Vm.sol";

/// The one-step executor against the engine's own traces (`sworn_engine::dispute_vectors`:
/// synthetic Llama, Llama 3, K-quant, Gemma 3, Qwen 2 and Qwen 3 models, every executable kind of step on
/// the first and last layers): each word recomputed on chain from its proven inputs and weight
/// rows is the engine's, and the layout's size is the engine's.
contract SwornExecutorTest is TraceVectors {
    SwornExecutor exec;

    function setUp() public {
        exec = new SwornExecutor(
            new SwornAttentionSteps(), new SwornWeightSteps(), new SwornTableSteps(), new SwornSampleSteps()
        );
    }

    struct File {
        bytes data;
        SwornExecutor.Context x;
        bytes32 root;
        uint256 leaves;
        uint32[] tokens;
        uint256 cases;
        uint256 at;
        bytes32 context;
    }

    function open(string memory name) internal view returns (File memory f) {
        f.data = vectors(name);
        uint256[17] memory w;
        for (uint256 i = 0; i < 17; i++) {
            w[i] = word(f.data, 4 * i);
        }
        f.x.shape = SwornLayout.Shape(
            w[0],
            w[1],
            w[2],
            w[3],
            w[4],
            w[5],
            w[6],
            w[7],
            w[8],
            w[9],
            w[10],
            w[11] == 1,
            uint32(w[12]),
            w[13],
            w[14] == 1,
            w[15] == 1,
            w[16]
        );
        f.root = hashAt(f.data, 68);
        f.leaves = word(f.data, 100);
        f.x.weights = hashAt(f.data, 104);
        f.x.penalty = word(f.data, 136);
        f.x.lastN = word(f.data, 140);
        f.x.ropeBase = word(f.data, 144);
        f.x.localBase = word(f.data, 148);
        (f.x.temperature, f.x.topP, f.x.minP) = (word(f.data, 152), word(f.data, 156), word(f.data, 160));
        f.x.seed = (uint64(word(f.data, 164)) << 32) | word(f.data, 168);
        uint256 n = word(f.data, 172);
        f.tokens = new uint32[](n);
        for (uint256 i = 0; i < n; i++) {
            f.tokens[i] = word(f.data, 176 + 4 * i);
        }
        f.x.tokens = exec.tokensHash(f.tokens);
        f.cases = word(f.data, 176 + 4 * n);
        f.at = 180 + 4 * n;
    }

    /// Reads the case at `f.at` and advances past it: its element, value and witness.
    function next(File memory f) internal pure returns (uint256 element, uint32 value, bytes memory witness) {
        SwornExecutor.Leaf[] memory leaves;
        SwornExecutor.Weight[] memory ws;
        uint32[] memory tokens;
        (element, value, leaves, ws, tokens) = nextParts(f);
        witness = abi.encode(f.x, leaves, ws, tokens);
    }

    /// As `next`, with the witness's parts apart.
    function nextParts(File memory f)
        internal
        pure
        returns (
            uint256 element,
            uint32 value,
            SwornExecutor.Leaf[] memory leaves,
            SwornExecutor.Weight[] memory ws,
            uint32[] memory tokens
        )
    {
        bytes memory d = f.data;
        element = word(d, f.at);
        value = word(d, f.at + 4);
        uint256 o;
        (leaves, o) = leavesAt(d, f.at + 8);
        (ws, o) = weightsAt(d, o);
        tokens = word(d, o) == 1 ? f.tokens : new uint32[](0);
        f.at = o + 4;
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
        string[30] memory names = [
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
            "greedy argmax",
            "temperature",
            "merge sort",
            "sampling weight",
            "running weight sum",
            "top-p cut",
            "min-p cut",
            "draw",
            "sampled token"
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

    /// The sampled steps on the real vocabularies (49,152 and 262,144 candidates: 16 and 18
    /// merge levels), temperature 0.7, top-p 0.9, min-p 0.02 and the penalty.
    function test_smollm2_sampled_steps_match_and_fit_in_a_block() public {
        real("trace_smollm2_sampled");
    }

    function test_gemma3_270m_sampled_steps_match_and_fit_in_a_block() public {
        real("trace_gemma3_270m_sampled");
    }

    // --- bind ---

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
        (SwornExecutor.Binding memory b, uint256 o) = bindingAt(d);
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
    function checkBind(string memory name) internal {
        BindCase memory c = bindCase(name);
        require(c.takes, "a transcript the game takes");
        uint256 before = gasleft();
        (bytes32 context, uint256 leaves, uint256 element, uint32 token) =
            exec.bind(c.model, c.request, c.output, c.step, c.data);
        emit log_named_uint(string.concat(name, " bind gas"), before - gasleft());
        emit log_named_uint(string.concat(name, " bind calldata bytes"), c.data.length);
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
        // Slots that are not the weights root's (one type byte changed: a quantized matrix
        // passed off as float, or the reverse) are refused.
        SwornExecutor.Binding memory b = abi.decode(c.data, (SwornExecutor.Binding));
        b.slots[4 * 44 + 3] = b.slots[4 * 44 + 3] ^ 0x01;
        try exec.bind(c.model, c.request, c.output, c.step, abi.encode(b)) {
            revert("slots that are not the weights root's are refused");
        } catch Error(string memory why) {
            assertTrue(keccak256(bytes(why)) == keccak256("executor: the slots are not the weights root"), why);
        }
    }

    function test_bind_greedy_smollm2_transcripts() public {
        checkBind("bind_greedy-text");
        checkBind("bind_greedy-chat");
    }

    function test_bind_greedy_gemma3_transcripts() public {
        checkBind("bind_gemma3-greedy-text");
        checkBind("bind_gemma3-greedy-chat");
    }

    /// Sampled transcripts bind too (their steps are executable): the context carries the
    /// temperature, top-p, min-p and seed, and the disputed token is the sampled region's.
    function test_bind_sampled_smollm2_and_gemma3_transcripts() public {
        checkBind("bind_sampled-text");
        checkBind("bind_sampled-chat");
        checkBind("bind_gemma3-sampled-text");
        checkBind("bind_gemma3-sampled-chat");
    }

    /// Each part of the executor fits the EVM's 24,576-byte code size limit (EIP-170).
    function test_the_executor_fits_the_code_size_limit() public view {
        assertTrue(address(exec).code.length <= 24_576, "SwornExecutor");
        assertTrue(address(exec.attention()).code.length <= 24_576, "SwornAttentionSteps");
        assertTrue(address(exec.weightSteps()).code.length <= 24_576, "SwornWeightSteps");
        assertTrue(address(exec.tableSteps()).code.length <= 24_576, "SwornTableSteps");
        assertTrue(address(exec.sampleSteps()).code.length <= 24_576, "SwornSampleSteps");
    }

    /// Llama 3's RoPE table 0 divides each frequency by the file's factor: a table step must
    /// carry the `rope_freqs` row, and cannot pass the factors off as absent (the absent leaf
    /// is not the slot's) or leave the slot out.
    function test_llama3_rope_table_steps_need_the_frequency_factors() public {
        File memory f = open("trace_llama3");
        f.context = exec.contextOf(f.x);
        uint256 seen;
        for (uint256 i = 0; i < f.cases; i++) {
            (uint256 element, uint32 value, SwornExecutor.Leaf[] memory leaves, SwornExecutor.Weight[] memory ws,) =
                nextParts(f);
            SwornLayout.Region memory r = SwornLayout.locate(f.x.shape, element);
            if (r.kind != SwornLayout.ROPE_TABLE || element - r.start >= r.len) continue;
            seen++;
            assertEq(ws.length, 1, "one weight row: the factors");
            assertEq(ws[0].slot, 3, "the rope_freqs slot");
            assertEq(run(f, element, leaves, ws), value, "the engine's word");

            SwornExecutor.Weight[] memory absent = new SwornExecutor.Weight[](1);
            absent[0] = ws[0];
            absent[0].code = 0xFFFFFFFF;
            absent[0].rows = 0;
            absent[0].cols = 0;
            absent[0].data = "";
            absent[0].rowProof = new bytes32[](0);
            vm.expectRevert(bytes("executor: weight proof"));
            run(f, element, leaves, absent);

            vm.expectRevert(bytes("executor: the rope_freqs slot (present or absent) is missing"));
            run(f, element, leaves, new SwornExecutor.Weight[](0));
        }
        assertTrue(seen > 0, "the vectors hold RoPE table steps");
    }

    /// Executes `element` of `f`'s trace with these leaves and weight rows (no tokens).
    function run(File memory f, uint256 element, SwornExecutor.Leaf[] memory leaves, SwornExecutor.Weight[] memory ws)
        internal
        view
        returns (uint32)
    {
        bytes memory witness = abi.encode(f.x, leaves, ws, new uint32[](0));
        return exec.execute(f.context, f.root, f.leaves, element, witness);
    }

    function test_llama3_steps_match_the_engine() public view {
        check("trace_llama3");
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

    /// Sampled steps: the temperature, the merge sort's levels, weights, running sums, top-p's
    /// and min-p's cuts, the draw and the token (penalty 1.1, top-p 0.9, min-p 0.05), and top-k's
    /// cut to 9 candidates at a hot temperature.
    function test_sampled_steps_match_the_engine() public view {
        check("trace_sampled");
        check("trace_sampled_top_k");
    }

    /// Float matrices: F32, F16 and BF16 products (eight lanes per 128 columns, then their
    /// tree) and the tied F16 embedding as the head.
    function test_float_matrix_steps_match_the_engine() public {
        real("trace_float");
    }

    function test_qwen3_steps_match_the_engine() public view {
        check("trace_qwen3");
    }
}
