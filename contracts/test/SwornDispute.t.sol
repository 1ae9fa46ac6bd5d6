// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornRegistry} from "../src/SwornRegistry.sol";
import {SwornGame} from "../src/SwornGame.sol";
import {SwornExecutor} from "../src/SwornExecutor.sol";
import {SwornAttentionSteps} from "../src/SwornAttentionSteps.sol";
import {SwornWeightSteps} from "../src/SwornWeightSteps.sol";
import {SwornTableSteps} from "../src/SwornTableSteps.sol";
import {SwornSampleSteps} from "../src/SwornSampleSteps.sol";
import {TraceVectors} from "./TraceVectors.sol";
import {MerkleBuilder} from "./MerkleBuilder.sol";

/// Whole disputes on the real SmolLM2, through the real game, registry and executor: the moves
/// of both players come from the engine (`sworn_engine::dispute_vectors::generate_games`: a
/// cheating operator's completion, its computation changed at one word, and the honest
/// challenger's trace of its transcript; or an honest operator and a challenger lying about a
/// token). The transcript is anchored; the challenger commits and opens with `bind`'s data, the
/// operator answers, both bisect to one word, and `execute` settles it by the engine's
/// arithmetic: the cheater loses its bond to the challenger, the liar its bond to the operator.
contract SwornDisputeTest is TraceVectors {
    SwornRegistry reg;
    SwornGame game;
    SwornExecutor exec;

    address op = address(0x09E0);
    address challenger = address(0xC4A1);
    uint256 constant BOND = 0.5 ether;
    uint256 constant OP_BOND = 2 ether;
    uint64 constant MOVE = 1 hours;

    /// Forge prints these with `-vv`.
    event log_named_uint(string key, uint256 val);

    function setUp() public {
        vm.warp(1_000_000);
        vm.deal(op, 10 ether);
        vm.deal(challenger, 10 ether);
        exec = new SwornExecutor(
            new SwornAttentionSteps(), new SwornWeightSteps(), new SwornTableSteps(), new SwornSampleSteps()
        );
        address predicted = vm.computeCreateAddress(address(this), vm.getNonce(address(this)) + 1);
        game = new SwornGame(SwornRegistry(predicted), exec, BOND, MOVE);
        address[] memory vs = new address[](1);
        vs[0] = address(0xA11CE);
        reg = new SwornRegistry(1 ether, 0.1 ether, 0.01 ether, 1000, 1 days, 1 days, 3 days, vs, 1, address(game));
        vm.prank(op);
        reg.register{value: OP_BOND}(bytes32(uint256(0xED25519)), new bytes(64));
    }

    // --- reading a game file ---

    /// The binding data and the four commitments at the start of a game file.
    function binding(bytes memory d) internal pure returns (bytes memory data, bytes32[4] memory c, uint256 o) {
        SwornExecutor.Binding memory b;
        (b, o) = bindingAt(d);
        for (uint256 i = 0; i < 4; i++) {
            c[i] = hashAt(d, o + 32 * i);
        }
        data = abi.encode(b);
        o += 128;
    }

    /// The witness at `o`: leaves, weight rows, whether it reads the tokens.
    function witnessAt(bytes memory d, uint256 o, bytes memory bindData) internal view returns (bytes memory, uint256) {
        (SwornExecutor.Leaf[] memory leaves, uint256 at) = leavesAt(d, o);
        SwornExecutor.Weight[] memory ws;
        (ws, at) = weightsAt(d, at);
        (SwornExecutor.Context memory x, uint32[] memory tokens) = exec.execution(bindData);
        if (word(d, at) == 0) tokens = new uint32[](0);
        return (abi.encode(x, leaves, ws, tokens), at + 4);
    }

    /// Anchors the transcript of commitments `c` as `op`'s batch.
    function anchor(bytes32[4] memory c) internal returns (SwornRegistry.Claim memory claim) {
        bytes32[] memory leaves = new bytes32[](2);
        leaves[0] = reg.transcriptDigest(c[0], c[1], c[2], c[3]);
        leaves[1] = keccak256("another transcript");
        bytes32 root = MerkleBuilder.root(leaves);
        vm.prank(op);
        uint64 batch = reg.anchor(root, 2);
        claim = SwornRegistry.Claim(
            c[0], c[1], c[2], c[3], batch, 0, 2, uint64(block.timestamp), MerkleBuilder.proof(leaves, 0)
        );
    }

    struct Play {
        bytes d;
        bytes bindData;
        uint256 id;
        uint256 at;
        uint256 step;
        uint256 element;
    }

    /// Opens the game of file `name`: the anchoring, the challenger's commitment and opening,
    /// the operator's answer.
    function start(string memory name) internal returns (Play memory p) {
        p.d = vectors(name);
        bytes32[4] memory c;
        (p.bindData, c, p.at) = binding(p.d);
        SwornRegistry.Claim memory claim = anchor(c);
        p.step = word(p.d, p.at);
        p.element = word(p.d, p.at + 4);
        uint256 o = p.at + 12;
        SwornGame.Opening memory open;
        open.step = p.step;
        open.root = hashAt(p.d, o);
        open.leaf = wordsAt(p.d, o + 32);
        (open.proof, o) = proofAt(p.d, o + 160);
        open.salt = keccak256(bytes(name));
        open.bindData = p.bindData;
        bytes32 digest = reg.transcriptDigest(c[0], c[1], c[2], c[3]);
        vm.prank(challenger);
        game.commit(game.commitment(challenger, op, digest, p.step, open.root, open.salt));
        vm.roll(block.number + 1);
        vm.prank(challenger);
        p.id = game.open{value: BOND}(op, claim, open);
        bytes32 opRoot = hashAt(p.d, o);
        uint32[32] memory opLeaf = wordsAt(p.d, o + 32);
        bytes32[] memory opProof;
        (opProof, o) = proofAt(p.d, o + 160);
        vm.prank(op);
        game.respond(p.id, opRoot, opLeaf, opProof);
        p.at = o;
    }

    /// Bisects to the leaf and reveals it, as both players would; returns the levels played.
    function bisect(Play memory p) internal returns (uint256 levels) {
        levels = word(p.d, p.at);
        uint256 o = p.at + 4;
        for (uint256 i = 0; i < levels; i++) {
            vm.prank(op);
            game.bisect(p.id, hashAt(p.d, o), hashAt(p.d, o + 32));
            vm.prank(challenger);
            game.bisect(p.id, hashAt(p.d, o + 64), hashAt(p.d, o + 96));
            o += 128;
        }
        uint32[32] memory opLeaf = wordsAt(p.d, o);
        uint32[32] memory chLeaf = wordsAt(p.d, o + 128);
        vm.prank(challenger);
        game.revealLeaf(p.id, chLeaf, opLeaf);
        vm.prank(op);
        game.revealLeaf(p.id, opLeaf, chLeaf);
        p.at = o + 256;
    }

    /// Plays game `name` to the end; `who` executes the word in dispute.
    function play(string memory name) internal {
        Play memory p = start(name);
        uint256 levels = bisect(p);
        SwornGame.Game memory g = game.gameInfo(p.id);
        assertEq(uint256(g.phase), uint256(SwornGame.Phase.Execute), "one word left");
        assertEq(g.element, word(p.d, p.at), "the word the engine's players expect");
        assertEq(g.opValue, word(p.d, p.at + 4), "the operator's value");
        assertEq(g.chValue, word(p.d, p.at + 8), "the challenger's value");
        (bytes memory witness, uint256 o) = witnessAt(p.d, p.at + 12, p.bindData);
        bool challengerWins = word(p.d, o) == 1;
        (uint256 opBefore, uint256 chBefore) = (reg.credits(op), reg.credits(challenger));
        vm.prank(challengerWins ? challenger : op);
        game.execute(p.id, witness);
        emit log_named_uint(string.concat(name, ": levels"), levels);
        emit log_named_uint(string.concat(name, ": execution gas"), vm.lastCallGas().gasTotalUsed);
        g = game.gameInfo(p.id);
        if (challengerWins) {
            assertEq(uint256(g.phase), uint256(SwornGame.Phase.ChallengerWon), "the cheater loses");
            assertTrue(reg.operatorInfo(op).slashed, "and is slashed");
            assertEq(reg.credits(challenger) - chBefore, BOND + OP_BOND / 10, "bond back and the reward");
        } else {
            assertEq(uint256(g.phase), uint256(SwornGame.Phase.OperatorWon), "the liar loses");
            assertTrue(!reg.operatorInfo(op).slashed, "the honest operator keeps its bond");
            assertEq(reg.credits(op) - opBefore, BOND, "and wins the liar's");
        }
    }

    function test_a_cheating_q4_1_product_is_slashed() public {
        play("game_smollm2_q4_1_product");
    }

    function test_a_cheating_q8_0_head_is_slashed() public {
        play("game_smollm2_q8_0_head");
    }

    function test_a_cheating_greedy_token_is_slashed() public {
        play("game_smollm2_greedy_token");
    }

    function test_a_cheating_residual_is_slashed() public {
        play("game_smollm2_residual");
    }

    function test_a_cheating_norm_is_slashed() public {
        play("game_smollm2_out_norm");
    }

    function test_an_honest_operator_beats_a_lying_challenger() public {
        play("game_smollm2_lie");
    }

    /// An honest operator that misses the execution deadline loses even so, and a challenger
    /// that stops bisecting loses (the real game's timeouts on a real transcript).
    function test_missed_deadlines_lose_on_each_side() public {
        Play memory p = start("game_smollm2_lie");
        bisect(p);
        vm.warp(block.timestamp + MOVE + 1);
        game.timeout(p.id);
        assertEq(uint256(game.gameInfo(p.id).phase), uint256(SwornGame.Phase.ChallengerWon), "silent operator");
        setUp();
        p = start("game_smollm2_q8_0_head");
        vm.prank(op);
        game.bisect(p.id, hashAt(p.d, p.at + 4), hashAt(p.d, p.at + 36));
        vm.warp(block.timestamp + MOVE + 1);
        game.timeout(p.id);
        assertEq(uint256(game.gameInfo(p.id).phase), uint256(SwornGame.Phase.OperatorWon), "silent challenger");
    }
}
