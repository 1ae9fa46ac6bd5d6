// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornRegistry} from "../src/SwornRegistry.sol";
import {SwornGame} from "../src/SwornGame.sol";
import {SwornTrace} from "../src/SwornTrace.sol";
import {SwornF32} from "../src/SwornF32.sol";
import {ISwornExecutor} from "../src/ISwornExecutor.sol";
import {TestBase} from "./Vm.sol";
import {MerkleBuilder} from "./MerkleBuilder.sol";

/// A test double for the executor, so that the game's mechanics are tested apart from any
/// model's layout: its trace is `n` binary32 elements, `e0 = a`, `e1 = b`, `e_i = e_{i-1} -
/// e_{i-2}` (a rotation: values stay bounded and a changed bit never dies out), in leaves of 32
/// (the last zero-padded). The "transcript" commits `request = keccak(a, b, n)` and `output =
/// keccak(claimed last element)`; output step 0's token is element `n - 1`.
contract RotationExecutor is ISwornExecutor {
    struct Witness {
        uint32 a;
        uint32 b;
        uint256 n;
        uint32[32] first;
        bytes32[] firstProof;
        uint32[32] second;
        bytes32[] secondProof;
    }

    function bind(bytes32, bytes32 request, bytes32 output, uint256 step, bytes calldata data)
        external
        pure
        returns (bytes32 context, uint256 leaves, uint256 element, uint32 token)
    {
        (uint32 a, uint32 b, uint256 n, uint32 claimed) = abi.decode(data, (uint32, uint32, uint256, uint32));
        require(step == 0 && n >= 3, "rotation: step");
        require(request == keccak256(abi.encode(a, b, n)), "rotation: request");
        require(output == keccak256(abi.encode(claimed)), "rotation: output");
        return (request, (n + 31) / 32, n - 1, claimed);
    }

    function execute(bytes32 context, bytes32 root, uint256 leaves, uint256 element, bytes calldata witness)
        external
        pure
        returns (uint32)
    {
        Witness memory w = abi.decode(witness, (Witness));
        require(context == keccak256(abi.encode(w.a, w.b, w.n)), "rotation: context");
        if (element == 0) return w.a;
        if (element == 1) return w.b;
        if (element >= w.n) return 0;
        (uint256 i, uint256 j) = (element - 1, element - 2);
        require(SwornTrace.proves(w.first, i / 32, leaves, w.firstProof, root), "rotation: input 1");
        require(SwornTrace.proves(w.second, j / 32, leaves, w.secondProof, root), "rotation: input 2");
        return SwornF32.sub(w.first[i % 32], w.second[j % 32]);
    }
}

/// One party's trace, with the tree over it (RFC 6962 shape, `SwornTrace` hashes).
library Traces {
    struct Trace {
        uint32[] e;
        bytes32[] leafHashes;
    }

    /// The rotation's trace from `a`, `b`, with element `bad` (if below `n`) xor-ed with `flip`
    /// and everything after it computed from the changed value (a consistent cheater), or, with
    /// `propagate` false, only that element changed (a liar about one value).
    function make(uint32 a, uint32 b, uint256 n, uint256 bad, uint32 flip, bool propagate)
        internal
        pure
        returns (Trace memory t)
    {
        t.e = new uint32[](((n + 31) / 32) * 32);
        for (uint256 i = 0; i < n; i++) {
            uint32 v = i == 0 ? a : i == 1 ? b : SwornF32.sub(t.e[i - 1], t.e[i - 2]);
            t.e[i] = v;
        }
        if (bad < n) {
            t.e[bad] ^= flip;
            if (propagate) {
                for (uint256 i = bad + 1; i < n; i++) {
                    t.e[i] = i == 1 ? b : SwornF32.sub(t.e[i - 1], t.e[i - 2]);
                }
            }
        }
        t.leafHashes = new bytes32[](t.e.length / 32);
        for (uint256 l = 0; l < t.leafHashes.length; l++) {
            t.leafHashes[l] = SwornTrace.leafHash(leaf(t, l));
        }
    }

    function leaf(Trace memory t, uint256 l) internal pure returns (uint32[32] memory w) {
        for (uint256 i = 0; i < 32; i++) {
            w[i] = t.e[32 * l + i];
        }
    }

    function root(Trace memory t, uint256 lo, uint256 hi) internal pure returns (bytes32) {
        if (hi - lo == 1) return t.leafHashes[lo];
        uint256 k = SwornTrace.split(hi - lo);
        return SwornTrace.nodeHash(root(t, lo, lo + k), root(t, lo + k, hi));
    }

    function root(Trace memory t) internal pure returns (bytes32) {
        return root(t, 0, t.leafHashes.length);
    }

    /// The inclusion proof of leaf `m` in the subtree `lo .. hi` (deepest sibling first).
    function proof(Trace memory t, uint256 m, uint256 lo, uint256 hi) internal pure returns (bytes32[] memory p) {
        if (hi - lo == 1) return new bytes32[](0);
        uint256 k = SwornTrace.split(hi - lo);
        bytes32[] memory rest;
        bytes32 sibling;
        if (m < lo + k) {
            rest = proof(t, m, lo, lo + k);
            sibling = root(t, lo + k, hi);
        } else {
            rest = proof(t, m, lo + k, hi);
            sibling = root(t, lo, lo + k);
        }
        p = new bytes32[](rest.length + 1);
        for (uint256 i = 0; i < rest.length; i++) {
            p[i] = rest[i];
        }
        p[rest.length] = sibling;
    }

    function proof(Trace memory t, uint256 m) internal pure returns (bytes32[] memory) {
        return proof(t, m, 0, t.leafHashes.length);
    }
}

contract SwornGameTest is TestBase {
    using Traces for Traces.Trace;

    SwornRegistry reg;
    SwornGame game;
    RotationExecutor exec;

    address op = address(0x09E0);
    address challenger = address(0xC4A1);
    address sock = address(0x50C4); // the operator's second address
    bytes32 constant KEY = bytes32(uint256(0xED25519));
    bytes constant POP = new bytes(64);
    uint256 constant BOND = 0.5 ether;
    uint256 constant OP_BOND = 2 ether;
    uint256 constant SHARE_BPS = 1000;
    uint64 constant WINDOW = 1 days;
    uint64 constant MOVE = 1 hours;

    uint32 constant A = 0x3E99999A; // 0.3
    uint32 constant B = 0x3F333333; // 0.7
    uint256 constant N = 32 * 37 - 5; // 37 leaves, the last one partial: an uneven tree

    function setUp() public {
        vm.warp(1_000_000);
        vm.deal(op, 10 ether);
        vm.deal(challenger, 10 ether);
        vm.deal(sock, 10 ether);
        exec = new RotationExecutor();
        uint64 nonce = vm.getNonce(address(this));
        address predicted = vm.computeCreateAddress(address(this), nonce + 1);
        game = new SwornGame(SwornRegistry(predicted), exec, BOND, MOVE);
        address[] memory vs = new address[](1);
        vs[0] = address(0xA11CE);
        reg = new SwornRegistry(1 ether, 0.1 ether, 0.01 ether, SHARE_BPS, WINDOW, 1 days, 3 days, vs, 1, address(game));
        assertEq(address(reg), predicted, "the registry is where the game expects it");
        vm.prank(op);
        reg.register{value: OP_BOND}(KEY, POP);
    }

    // -------------------------------------------------------------------------------------
    // Helpers: a transcript, its claim, the players
    // -------------------------------------------------------------------------------------

    /// Anchors, as `op`, the transcript whose output claims `claimed` as the last element, and
    /// returns its claim.
    function anchored(uint32 claimed) internal returns (SwornRegistry.Claim memory c) {
        bytes32 request = keccak256(abi.encode(A, B, N));
        bytes32 output = keccak256(abi.encode(claimed));
        bytes32[] memory leaves = new bytes32[](2);
        leaves[0] = reg.transcriptDigest(bytes32("model"), request, output, bytes32("meta"));
        leaves[1] = keccak256("another transcript");
        bytes32 root = MerkleBuilder.root(leaves);
        vm.prank(op);
        uint64 batch = reg.anchor(root, 2);
        c = SwornRegistry.Claim(
            bytes32("model"),
            request,
            output,
            bytes32("meta"),
            batch,
            0,
            2,
            uint64(block.timestamp),
            MerkleBuilder.proof(leaves, 0)
        );
    }

    function opening(Traces.Trace memory t, uint32 claimed, bytes32 salt)
        internal
        pure
        returns (SwornGame.Opening memory o)
    {
        uint256 last = (N - 1) / 32;
        o = SwornGame.Opening(0, t.root(), salt, t.leaf(last), t.proof(last), abi.encode(A, B, N, claimed));
    }

    /// `who` commits, and a block later opens, a game on `c` with trace `t`.
    function openGame(address who, SwornRegistry.Claim memory c, Traces.Trace memory t, uint32 claimed)
        internal
        returns (uint256 id)
    {
        SwornGame.Opening memory o = opening(t, claimed, bytes32(uint256(uint160(who))));
        bytes32 d = reg.transcriptDigest(c.model, c.request, c.output, c.meta);
        vm.prank(who);
        game.commit(game.commitment(who, op, d, 0, o.root, o.salt));
        vm.roll(block.number + 1);
        vm.prank(who);
        id = game.open{value: BOND}(op, c, o);
    }

    function respond(uint256 id, Traces.Trace memory t) internal {
        uint256 last = (N - 1) / 32;
        vm.prank(op);
        game.respond(id, t.root(), t.leaf(last), t.proof(last));
    }

    /// One party's move at the current level: children, or the leaf.
    function move(uint256 id, address who, Traces.Trace memory own, Traces.Trace memory other) internal {
        SwornGame.Game memory g = game.gameInfo(id);
        vm.prank(who);
        if (g.hi - g.lo == 1) {
            game.revealLeaf(id, own.leaf(g.lo), other.leaf(g.lo));
        } else {
            uint256 k = SwornTrace.split(g.hi - g.lo);
            game.bisect(id, own.root(g.lo, g.lo + k), own.root(g.lo + k, g.hi));
        }
    }

    /// Plays the bisection to the end, both parties moving, the challenger first on even rounds.
    function bisectAll(uint256 id, Traces.Trace memory opTrace, Traces.Trace memory chTrace)
        internal
        returns (uint256 moves)
    {
        while (game.gameInfo(id).phase == SwornGame.Phase.Bisect) {
            if (moves % 2 == 0) {
                move(id, challenger, chTrace, opTrace);
                move(id, op, opTrace, chTrace);
            } else {
                move(id, op, opTrace, chTrace);
                move(id, challenger, chTrace, opTrace);
            }
            moves++;
        }
    }

    /// The witness of element `e` from trace `t` (its two inputs with their proofs).
    function witness(Traces.Trace memory t, uint256 e) internal pure returns (bytes memory) {
        uint256 i = e >= 1 ? (e - 1) / 32 : 0;
        uint256 j = e >= 2 ? (e - 2) / 32 : 0;
        return abi.encode(RotationExecutor.Witness(A, B, N, t.leaf(i), t.proof(i), t.leaf(j), t.proof(j)));
    }

    /// How many levels down leaf `m` of a tree of `n` leaves lies.
    function depth(uint256 m, uint256 n) internal pure returns (uint256 d) {
        (uint256 lo, uint256 hi) = (0, n);
        while (hi - lo > 1) {
            uint256 mid = lo + SwornTrace.split(hi - lo);
            if (m < mid) hi = mid;
            else lo = mid;
            d++;
        }
    }

    function honest() internal pure returns (Traces.Trace memory) {
        return Traces.make(A, B, N, type(uint256).max, 0, false);
    }

    // -------------------------------------------------------------------------------------
    // The game's outcomes
    // -------------------------------------------------------------------------------------

    /// A cheating operator (one bit of one element changed, everything after computed from it,
    /// so its transcript's last value is wrong) loses to an honest challenger by execution, at
    /// corruption points all over the trace (first and last leaf, a leaf's first and last word).
    function test_a_cheating_operator_loses_its_bond_to_an_honest_challenger() public {
        uint256[5] memory points = [uint256(2), 31, 32 * 17, 32 * 36 - 1, N - 1];
        for (uint256 k = 0; k < points.length; k++) {
            if (k > 0) setUp();
            Traces.Trace memory cheat = Traces.make(A, B, N, points[k], uint32(1 << (k * 5)), true);
            Traces.Trace memory truth = honest();
            uint32 claimed = cheat.e[N - 1];
            assertTrue(claimed != truth.e[N - 1], "the corruption reaches the output");
            SwornRegistry.Claim memory c = anchored(claimed);
            uint256 id = openGame(challenger, c, truth, claimed);
            respond(id, cheat);
            uint256 rounds = bisectAll(id, cheat, truth);
            SwornGame.Game memory g = game.gameInfo(id);
            assertEq(uint256(g.phase), uint256(SwornGame.Phase.Execute), "one element left");
            assertEq(g.element, points[k], "bisection finds the corrupted element");
            assertEq(rounds, depth(points[k] / 32, 37) + 1, "the leaf's depth in levels, then the leaf");
            assertTrue(rounds <= 7, "at most ceil(log2 37) levels and the leaf");
            uint256 before = reg.credits(challenger);
            game.execute(id, witness(cheat, g.element));
            assertEq(uint256(game.gameInfo(id).phase), uint256(SwornGame.Phase.ChallengerWon), "challenger wins");
            assertTrue(reg.operatorInfo(op).slashed, "the operator is slashed");
            assertEq(reg.credits(challenger) - before, BOND + OP_BOND * SHARE_BPS / 10_000, "bond back plus the share");
            assertEq(reg.operatorInfo(op).openDisputes, 0, "no dispute left open");
        }
    }

    /// An honest operator against a challenger that lies about one element keeps its bond and
    /// wins the challenger's, whether the lie is in a leaf's first, middle or last word.
    function test_an_honest_operator_wins_against_a_lying_challenger() public {
        uint256[3] memory points = [uint256(5), 32 * 20 + 16, N - 1];
        for (uint256 k = 0; k < points.length; k++) {
            if (k > 0) setUp();
            Traces.Trace memory truth = honest();
            // The liar changes one value and carries the change on (its last element must differ
            // from the transcript's to open at all).
            Traces.Trace memory lie = Traces.make(A, B, N, points[k], 0x400, true);
            SwornRegistry.Claim memory c = anchored(truth.e[N - 1]);
            uint256 id = openGame(challenger, c, lie, truth.e[N - 1]);
            respond(id, truth);
            bisectAll(id, truth, lie);
            SwornGame.Game memory g = game.gameInfo(id);
            assertEq(g.element, points[k], "the lie is found");
            uint256 before = reg.credits(op);
            vm.prank(op);
            game.execute(id, witness(truth, g.element));
            assertEq(uint256(game.gameInfo(id).phase), uint256(SwornGame.Phase.OperatorWon), "operator wins");
            assertEq(reg.credits(op) - before, BOND, "the challenger's bond");
            assertTrue(!reg.operatorInfo(op).slashed && reg.operatorInfo(op).bond == OP_BOND, "bond intact");
        }
    }

    /// A witness that proves other inputs than the agreed trace's is refused, so a cheater
    /// cannot make its wrong value come out right.
    function test_a_forged_witness_is_refused() public {
        Traces.Trace memory cheat = Traces.make(A, B, N, 300, 1, true);
        Traces.Trace memory truth = honest();
        uint32 claimed = cheat.e[N - 1];
        uint256 id = openGame(challenger, anchored(claimed), truth, claimed);
        respond(id, cheat);
        bisectAll(id, cheat, truth);
        // Inputs from the challenger's tree, which is not the one the game checks against.
        Traces.Trace memory forged = Traces.make(A, B, N, 299, 1, true);
        bytes memory w = witness(forged, 300);
        vm.expectRevert(bytes("rotation: input 1"));
        game.execute(id, w);
    }

    // -------------------------------------------------------------------------------------
    // Deadlines
    // -------------------------------------------------------------------------------------

    function test_an_operator_that_does_not_respond_loses() public {
        Traces.Trace memory cheat = Traces.make(A, B, N, 40, 1, true);
        uint32 claimed = cheat.e[N - 1];
        uint256 id = openGame(challenger, anchored(claimed), honest(), claimed);
        vm.expectRevert(abi.encodeWithSelector(SwornGame.NotPastDeadline.selector, block.timestamp + MOVE));
        game.timeout(id);
        vm.warp(block.timestamp + MOVE + 1);
        game.timeout(id);
        assertEq(uint256(game.gameInfo(id).phase), uint256(SwornGame.Phase.ChallengerWon), "challenger wins");
        assertTrue(reg.operatorInfo(op).slashed, "slashed");
    }

    /// In bisection, whoever does not move by the deadline loses; if neither moves, the
    /// challenger loses.
    function test_a_missed_bisection_deadline_loses_on_each_side() public {
        for (uint256 who = 0; who < 3; who++) {
            if (who > 0) setUp();
            Traces.Trace memory truth = honest();
            Traces.Trace memory lie = Traces.make(A, B, N, 100, 1, true);
            uint256 id = openGame(challenger, anchored(truth.e[N - 1]), lie, truth.e[N - 1]);
            respond(id, truth);
            move(id, challenger, lie, truth);
            move(id, op, truth, lie); // one full round
            if (who == 0) move(id, challenger, lie, truth); // only the challenger moves
            if (who == 1) move(id, op, truth, lie); // only the operator moves
            vm.warp(block.timestamp + MOVE + 1);
            game.timeout(id);
            SwornGame.Phase want = who == 0 ? SwornGame.Phase.ChallengerWon : SwornGame.Phase.OperatorWon;
            assertEq(uint256(game.gameInfo(id).phase), uint256(want), "the silent party loses");
        }
    }

    /// An operator that does not execute the last element loses, even when it was right: it
    /// holds the witness, so silence is its loss.
    function test_an_operator_that_does_not_execute_loses() public {
        Traces.Trace memory cheat = Traces.make(A, B, N, 64, 1, true);
        uint32 claimed = cheat.e[N - 1];
        uint256 id = openGame(challenger, anchored(claimed), honest(), claimed);
        respond(id, cheat);
        bisectAll(id, cheat, honest());
        vm.warp(block.timestamp + MOVE + 1);
        vm.expectRevert(abi.encodeWithSelector(SwornGame.PastDeadline.selector, block.timestamp - 1));
        game.execute(id, witness(cheat, 64));
        game.timeout(id);
        assertEq(uint256(game.gameInfo(id).phase), uint256(SwornGame.Phase.ChallengerWon), "challenger wins");
    }

    // -------------------------------------------------------------------------------------
    // Who can do what
    // -------------------------------------------------------------------------------------

    /// A copy of the challenger's `open` from another address (the operator's included) reverts:
    /// the commitment names the challenger. Opening in the commitment's own block reverts too.
    function test_opening_cannot_be_front_run() public {
        Traces.Trace memory cheat = Traces.make(A, B, N, 40, 1, true);
        uint32 claimed = cheat.e[N - 1];
        SwornRegistry.Claim memory c = anchored(claimed);
        SwornGame.Opening memory o = opening(honest(), claimed, bytes32("salt"));
        bytes32 d = reg.transcriptDigest(c.model, c.request, c.output, c.meta);
        vm.prank(challenger);
        game.commit(game.commitment(challenger, op, d, 0, o.root, o.salt));
        vm.prank(challenger);
        vm.expectRevert(SwornGame.NotCommitted.selector);
        game.open{value: BOND}(op, c, o); // same block
        vm.roll(block.number + 1);
        vm.prank(sock);
        vm.expectRevert(SwornGame.NotCommitted.selector);
        game.open{value: BOND}(op, c, o); // the copy
        vm.prank(challenger);
        game.open{value: BOND}(op, c, o);
    }

    function test_only_the_parties_move_and_each_once_a_level() public {
        Traces.Trace memory cheat = Traces.make(A, B, N, 40, 1, true);
        Traces.Trace memory truth = honest();
        uint32 claimed = cheat.e[N - 1];
        uint256 id = openGame(challenger, anchored(claimed), truth, claimed);
        vm.prank(challenger);
        vm.expectRevert(SwornGame.NotTheOperator.selector);
        game.respond(id, truth.root(), truth.leaf(0), truth.proof(0));
        respond(id, cheat);
        vm.prank(sock);
        vm.expectRevert(SwornGame.NotAParty.selector);
        game.bisect(id, bytes32(0), bytes32(0));
        // Children that do not hash to one's own root.
        uint256 k = SwornTrace.split(37);
        bytes32 l = truth.root(0, k);
        bytes32 r = truth.root(k, 37);
        vm.prank(op);
        vm.expectRevert(SwornGame.NotYourNode.selector);
        game.bisect(id, l, r);
        move(id, op, cheat, truth);
        vm.prank(op);
        vm.expectRevert(SwornGame.AlreadyMoved.selector);
        game.bisect(id, cheat.root(0, k), cheat.root(k, 37));
    }

    /// The challenger must disagree with the transcript at the step it names, and the operator
    /// must defend the transcript's own token there.
    function test_the_traces_must_disagree_at_the_disputed_token() public {
        Traces.Trace memory truth = honest();
        SwornRegistry.Claim memory c = anchored(truth.e[N - 1]);
        SwornGame.Opening memory o = opening(truth, truth.e[N - 1], bytes32("s"));
        bytes32 d = reg.transcriptDigest(c.model, c.request, c.output, c.meta);
        vm.prank(challenger);
        game.commit(game.commitment(challenger, op, d, 0, o.root, o.salt));
        vm.roll(block.number + 1);
        vm.prank(challenger);
        vm.expectRevert(SwornGame.NotDisagreeing.selector);
        game.open{value: BOND}(op, c, o);

        Traces.Trace memory cheat = Traces.make(A, B, N, 40, 1, true);
        uint256 id = openGame(challenger, anchored(cheat.e[N - 1]), truth, cheat.e[N - 1]);
        uint256 last = (N - 1) / 32;
        vm.prank(op);
        vm.expectRevert(SwornGame.NotDisagreeing.selector);
        game.respond(id, truth.root(), truth.leaf(last), truth.proof(last)); // not its transcript
    }

    function test_a_game_needs_an_anchored_transcript_inside_its_window_and_the_exact_bond() public {
        Traces.Trace memory cheat = Traces.make(A, B, N, 40, 1, true);
        uint32 claimed = cheat.e[N - 1];
        SwornRegistry.Claim memory c = anchored(claimed);
        SwornGame.Opening memory o = opening(honest(), claimed, bytes32("s"));
        bytes32 d = reg.transcriptDigest(c.model, c.request, c.output, c.meta);
        vm.prank(challenger);
        game.commit(game.commitment(challenger, op, d, 0, o.root, o.salt));
        vm.roll(block.number + 1);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(SwornGame.WrongBond.selector, BOND - 1, BOND));
        game.open{value: BOND - 1}(op, c, o);
        vm.warp(block.timestamp + WINDOW);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.BatchFinal.selector, c.batch, c.anchoredAt + WINDOW));
        game.open{value: BOND}(op, c, o);
    }

    /// Only the game calls the registry's game hooks; a registry refuses a game that names
    /// another registry.
    function test_the_registry_trusts_only_its_own_game() public {
        SwornRegistry.Claim memory c = anchored(1);
        vm.expectRevert(SwornRegistry.NotGame.selector);
        reg.gameOpened(op, 0, c);
        vm.expectRevert(SwornRegistry.NotGame.selector);
        reg.gameClosed(op, 0, challenger, true, challenger);
        address[] memory vs = new address[](1);
        vs[0] = address(0xA11CE);
        vm.expectRevert(SwornRegistry.BadConfig.selector);
        new SwornRegistry(1 ether, 0.1 ether, 0.01 ether, SHARE_BPS, WINDOW, 1 days, 3 days, vs, 1, address(game));
    }

    /// An open game keeps the operator's bond in place: it cannot exit and withdraw before the
    /// game ends.
    function test_an_open_game_blocks_the_bond() public {
        Traces.Trace memory cheat = Traces.make(A, B, N, 40, 1, true);
        uint32 claimed = cheat.e[N - 1];
        uint256 id = openGame(challenger, anchored(claimed), honest(), claimed);
        vm.prank(op);
        reg.requestExit();
        vm.warp(block.timestamp + 3 days + 1);
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.DisputesOpen.selector, 1));
        reg.withdrawBond();
        game.timeout(id);
        assertTrue(reg.operatorInfo(op).slashed, "slashed for not answering");
    }

    // -------------------------------------------------------------------------------------
    // Incentives
    // -------------------------------------------------------------------------------------

    /// The operator cannot take an honest challenger's reward with a game of its own: its second
    /// address opens a game after the honest one and the operator lets it win, before or after
    /// the honest game wins, but the reward goes to the earliest-opened game won (the honest
    /// one) once both have ended; the second address gets its bond back and nothing more. The
    /// operator loses its whole bond.
    function test_the_operator_cannot_capture_the_reward_with_its_own_game() public {
        for (uint256 sockFirst = 0; sockFirst < 2; sockFirst++) {
            if (sockFirst == 1) setUp();
            Traces.Trace memory cheat = Traces.make(A, B, N, 200, 1, true);
            uint32 claimed = cheat.e[N - 1];
            SwornRegistry.Claim memory c = anchored(claimed);
            uint256 honestId = openGame(challenger, c, honest(), claimed);
            uint256 sockId = openGame(sock, c, honest(), claimed);
            assertTrue(sockId > honestId, "opened later");
            // The operator never responds to either game: both are won by timeout, in turn.
            vm.warp(block.timestamp + MOVE + 1);
            game.timeout(sockFirst == 1 ? sockId : honestId);
            assertTrue(reg.operatorInfo(op).slashed, "slashed by the first game won");
            assertEq(reg.credits(sockFirst == 1 ? sock : challenger), BOND, "its bond back, the reward held");
            game.timeout(sockFirst == 1 ? honestId : sockId);
            assertEq(reg.credits(challenger), BOND + OP_BOND * SHARE_BPS / 10_000, "the reward goes to the first game");
            assertEq(reg.credits(sock), BOND, "nothing more for the operator's address");
            assertEq(reg.burned(), OP_BOND - OP_BOND * SHARE_BPS / 10_000, "the rest of the bond burned");
        }
    }

    /// A challenger that loses pays the operator; a game lost by the operator's own second
    /// address settles nothing: another challenger can still open and win.
    function test_a_lost_game_does_not_protect_the_transcript() public {
        Traces.Trace memory cheat = Traces.make(A, B, N, 200, 1, true);
        Traces.Trace memory truth = honest();
        uint32 claimed = cheat.e[N - 1];
        SwornRegistry.Claim memory c = anchored(claimed);
        // The operator's address opens and then stops moving: it loses on purpose.
        uint256 sockId = openGame(sock, c, truth, claimed);
        respond(sockId, cheat);
        move(sockId, op, cheat, truth);
        vm.warp(block.timestamp + MOVE + 1);
        game.timeout(sockId);
        assertEq(uint256(game.gameInfo(sockId).phase), uint256(SwornGame.Phase.OperatorWon), "lost on purpose");
        uint256 id = openGame(challenger, c, truth, claimed);
        respond(id, cheat);
        bisectAll(id, cheat, truth);
        game.execute(id, witness(cheat, game.gameInfo(id).element));
        assertEq(uint256(game.gameInfo(id).phase), uint256(SwornGame.Phase.ChallengerWon), "the honest game still wins");
        assertTrue(reg.operatorInfo(op).slashed, "slashed");
    }
}
