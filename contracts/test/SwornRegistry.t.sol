// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornRegistry} from "../src/SwornRegistry.sol";
import {SwornMerkle} from "../src/SwornMerkle.sol";
import {TestBase} from "./Vm.sol";
import {MerkleBuilder} from "./MerkleBuilder.sol";

/// Exposes the library's calldata verifier.
contract MerkleHarness {
    function verify(bytes32 leaf, uint256 index, uint256 size, bytes32[] calldata proof, bytes32 root)
        external
        pure
        returns (bool)
    {
        return SwornMerkle.verifyInclusion(leaf, index, size, proof, root);
    }
}

/// An account whose `receive` calls back into the registry: it must get nothing twice.
contract Reentrant {
    SwornRegistry public immutable reg;
    uint256 public reentries;
    bool public innerFailed;

    constructor(SwornRegistry r) {
        reg = r;
    }

    function register(bytes32 key) external payable {
        reg.register{value: msg.value}(key, new bytes(64));
    }

    function anchor(bytes32 root, uint64 size) external {
        reg.anchor(root, size);
    }

    function requestExit() external {
        reg.requestExit();
    }

    function withdrawBond() external {
        reg.withdrawBond();
    }

    function withdraw() external {
        reg.withdraw();
    }

    receive() external payable {
        reentries++;
        try reg.withdraw() {}
        catch {
            innerFailed = true;
        }
    }
}

contract SwornRegistryTest is TestBase {
    SwornRegistry reg;
    MerkleHarness harness;

    uint256 constant V1 = 0xA11CE;
    uint256 constant V2 = 0xB0B;
    uint256 constant V3 = 0xCA401;
    uint256 constant OUTSIDER = 0xBAD;
    address op = address(0x09E0);
    address other = address(0x07E4);
    address challenger = address(0xC4A1);
    bytes32 constant KEY = bytes32(uint256(0xED25519));
    bytes32 constant KEY2 = bytes32(uint256(0xED25519 + 2));
    bytes32 constant KEY3 = bytes32(uint256(0xED25519 + 3));
    /// The key-possession proof: 64 bytes, checked off-chain only (`docs/anchoring.md` 1.1).
    bytes constant POP =
        hex"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    uint256 constant FEE = 0.01 ether;
    uint256 constant SHARE_BPS = 1000;
    uint64 constant WINDOW = 1 days;
    uint64 constant VERDICT = 1 days;
    uint64 constant UNBONDING = 3 days;

    function setUp() public {
        harness = new MerkleHarness();
        vm.warp(1_000_000);
        vm.deal(op, 10 ether);
        vm.deal(other, 10 ether);
        vm.deal(challenger, 10 ether);
        deploy(WINDOW, UNBONDING);
    }

    /// A fresh registry with challenge window `window`, `op` registered with a 2 ether bond.
    function deploy(uint64 window, uint64 unbonding) internal {
        address[] memory vs = new address[](3);
        vs[0] = vm.addr(V1);
        vs[1] = vm.addr(V2);
        vs[2] = vm.addr(V3);
        reg = new SwornRegistry(1 ether, 0.1 ether, FEE, SHARE_BPS, window, VERDICT, unbonding, vs, 2, address(0));
        vm.prank(op);
        reg.register{value: 2 ether}(KEY, POP);
    }

    // -------------------------------------------------------------------------------------
    // Helpers
    // -------------------------------------------------------------------------------------

    struct T {
        bytes32 model;
        bytes32 request;
        bytes32 output;
        bytes32 meta;
    }

    function t(uint256 i) internal pure returns (T memory) {
        return T(
            keccak256(abi.encode("model")),
            keccak256(abi.encode("req", i)),
            keccak256(abi.encode("out", i)),
            keccak256(abi.encode("meta", i))
        );
    }

    function digest(T memory x) internal view returns (bytes32) {
        return reg.transcriptDigest(x.model, x.request, x.output, x.meta);
    }

    /// Anchors `ts` as one batch of `who`; returns the batch number and the leaves.
    /// When each (operator, batch) was anchored, as the `Anchored` event says.
    mapping(address => mapping(uint64 => uint64)) anchoredAt;

    function anchorAll(address who, T[] memory ts) internal returns (uint64 batch, bytes32[] memory leaves) {
        leaves = new bytes32[](ts.length);
        for (uint256 i = 0; i < ts.length; i++) {
            leaves[i] = digest(ts[i]);
        }
        bytes32 root = MerkleBuilder.root(leaves);
        vm.prank(who); // after computing the root: the SHA-256 precompile is a call too
        batch = reg.anchor(root, uint64(ts.length));
        anchoredAt[who][batch] = uint64(block.timestamp);
    }

    function claim(address who, T memory x, uint64 batch, bytes32[] memory leaves, uint64 index)
        internal
        view
        returns (SwornRegistry.Claim memory c)
    {
        c = SwornRegistry.Claim(
            x.model,
            x.request,
            x.output,
            x.meta,
            batch,
            index,
            uint64(leaves.length),
            anchoredAt[who][batch],
            MerkleBuilder.proof(leaves, index)
        );
    }

    /// A copy (memory structs assign by reference).
    function copy(SwornRegistry.Claim memory c) internal pure returns (SwornRegistry.Claim memory) {
        return
            SwornRegistry.Claim(
                c.model, c.request, c.output, c.meta, c.batch, c.index, c.batchSize, c.anchoredAt, c.proof
            );
    }

    function batchOf(uint256 n, uint256 salt) internal pure returns (T[] memory ts) {
        ts = new T[](n);
        for (uint256 i = 0; i < n; i++) {
            ts[i] = t(salt * 1000 + i);
        }
    }

    function sig(uint256 key, bytes32 h) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, h);
        return abi.encodePacked(r, s, v);
    }

    /// Two signatures from V1..V3's keys `a` and `b`, ordered by signer address.
    function sigs(uint256 a, uint256 b, bytes32 h) internal pure returns (bytes[] memory out) {
        out = new bytes[](2);
        (uint256 lo, uint256 hi) = vm.addr(a) < vm.addr(b) ? (a, b) : (b, a);
        out[0] = sig(lo, h);
        out[1] = sig(hi, h);
    }

    /// Anchors a batch and opens a dispute on its leaf 1; returns the dispute id and the claim.
    uint256 salts = 100;

    function openOne() internal returns (uint256 id, SwornRegistry.Claim memory c) {
        T[] memory ts = batchOf(3, salts++);
        (uint64 b, bytes32[] memory leaves) = anchorAll(op, ts);
        c = claim(op, ts[1], b, leaves, 1);
        commitOpen(challenger, c, keccak256("the right output"));
        vm.prank(challenger);
        id = reg.openDispute{value: 0.1 ether}(op, c, keccak256("the right output"), SALT);
    }

    /// Posts `who`'s commitment to dispute `c` (of `op`) claiming `claimed`, with SALT, then
    /// moves to the next block, where the dispute may be opened.
    function commitOpen(address who, SwornRegistry.Claim memory c, bytes32 claimed) internal {
        vm.prank(who);
        reg.commitDispute(reg.disputeCommitment(who, op, dg(c), claimed, SALT));
        vm.roll(block.number + 1);
    }

    // -------------------------------------------------------------------------------------
    // Deployment and registry
    // -------------------------------------------------------------------------------------

    function test_constructor_rejects_bad_configs() public {
        address[] memory vs = new address[](3);
        vs[0] = vm.addr(V1);
        vs[1] = vm.addr(V2);
        vs[2] = vm.addr(V3);
        vm.expectRevert(SwornRegistry.BadConfig.selector);
        new SwornRegistry(1 ether, 0.1 ether, FEE, SHARE_BPS, WINDOW, VERDICT, WINDOW, vs, 2, address(0)); // unbonding too short
        vm.expectRevert(SwornRegistry.BadConfig.selector);
        new SwornRegistry(1 ether, 0.1 ether, FEE, SHARE_BPS, WINDOW, VERDICT, UNBONDING, vs, 1, address(0)); // not a majority
        vm.expectRevert(SwornRegistry.BadConfig.selector);
        new SwornRegistry(1 ether, 0.1 ether, FEE, SHARE_BPS, WINDOW, VERDICT, UNBONDING, vs, 4, address(0)); // more than N
        vs[2] = vs[1];
        vm.expectRevert(SwornRegistry.BadConfig.selector);
        new SwornRegistry(1 ether, 0.1 ether, FEE, SHARE_BPS, WINDOW, VERDICT, UNBONDING, vs, 2, address(0)); // duplicate
    }

    function test_register() public {
        SwornRegistry.Operator memory o = reg.operatorInfo(op);
        assertTrue(o.active, "active");
        assertEq(o.bond, 2 ether, "bond");
        assertEq(o.ed25519Key, KEY, "key");
        assertEq(o.registeredBlock, block.number, "registration block");
        assertEq(reg.keyOwner(KEY), op, "key owner");
        vm.prank(op);
        vm.expectRevert(SwornRegistry.AlreadyRegistered.selector);
        reg.register{value: 1 ether}(KEY, POP);
        vm.prank(other);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.BondTooSmall.selector, 0.5 ether, 1 ether));
        reg.register{value: 0.5 ether}(KEY2, POP);
        vm.prank(other);
        vm.expectRevert(SwornRegistry.BadKey.selector);
        reg.register{value: 1 ether}(bytes32(0), POP);
        vm.prank(other);
        vm.expectRevert(SwornRegistry.BadKeyProof.selector);
        reg.register{value: 1 ether}(KEY2, new bytes(63));
        vm.prank(op);
        reg.addBond{value: 1 ether}();
        assertEq(reg.operatorInfo(op).bond, 3 ether, "bond added");
    }

    // -------------------------------------------------------------------------------------
    // Anchoring
    // -------------------------------------------------------------------------------------

    function test_anchor_extends_the_log() public {
        (uint64 b0,) = anchorAll(op, batchOf(5, 1));
        (uint64 b1, bytes32[] memory leaves) = anchorAll(op, batchOf(3, 2));
        assertEq(b0, 0, "first batch");
        assertEq(b1, 1, "second batch");
        assertEq(
            reg.batchCommitment(op, 1),
            reg.batchWord(MerkleBuilder.root(leaves), 3, uint64(block.timestamp)),
            "stored word"
        );
        assertEq(reg.batchCommitment(op, 2), bytes32(0), "no third batch");
        assertEq(reg.operatorInfo(op).logSize, 8, "log size");
    }

    /// Gas of one `anchor` transaction. foundry.toml sets `isolate = true`, so every call from a
    /// test runs as its own transaction and this includes the 21,000 base cost and calldata.
    function anchorGas(bytes32 root, uint64 size) internal returns (uint256 used) {
        vm.prank(op);
        reg.anchor(root, size);
        used = vm.lastCallGas().gasTotalUsed;
        assertTrue(used > 21_000, "isolation mode is on (the figure includes the base cost)");
        assertTrue(
            used <= 60_000, string.concat("an anchor transaction costs at most 60k gas, used ", vm.toString(used))
        );
    }

    function test_anchor_gas_does_not_depend_on_batch_size() public {
        // The first anchor also turns the operator's log counters from zero to non-zero.
        anchorGas(keccak256("a"), 1);
        uint256 small = anchorGas(keccak256("b"), 1);
        uint256 big = anchorGas(keccak256("c"), type(uint32).max);
        assertTrue(big <= small + 100 && small <= big + 100, "same cost for 1 and 4e9 digests");
    }

    function test_anchor_refusals() public {
        vm.prank(op);
        vm.expectRevert(SwornRegistry.EmptyBatch.selector);
        reg.anchor(keccak256("a"), 0);
        vm.prank(other);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.NotActive.selector, other));
        reg.anchor(keccak256("a"), 1);
        vm.prank(op);
        reg.requestExit();
        vm.prank(op);
        vm.expectRevert(SwornRegistry.Exiting.selector);
        reg.anchor(keccak256("a"), 1);
    }

    function test_inclusion_against_the_right_operator_only() public {
        vm.prank(other);
        reg.register{value: 1 ether}(KEY2, POP);
        T[] memory ts = batchOf(6, 3);
        (uint64 b, bytes32[] memory leaves) = anchorAll(other, ts);
        SwornRegistry.Claim memory c = claim(other, ts[4], b, leaves, 4);
        assertTrue(reg.isAnchored(other, c), "anchored by other");
        // The same proof names batch 0 of `op`, which does not exist (or holds other digests).
        assertTrue(!reg.isAnchored(op, c), "not anchored by op");
        anchorAll(op, batchOf(6, 4));
        assertTrue(!reg.isAnchored(op, c), "still not anchored by op");
        SwornRegistry.Claim memory w = copy(c);
        w.index = 5;
        assertTrue(!reg.isAnchored(other, w), "wrong index");
        w = copy(c);
        w.anchoredAt += 1;
        assertTrue(!reg.isAnchored(other, w), "wrong anchoring time");
        w = copy(c);
        w.batchSize = 8;
        assertTrue(!reg.isAnchored(other, w), "wrong batch size");
    }

    // -------------------------------------------------------------------------------------
    // Equivocation
    // -------------------------------------------------------------------------------------

    function equivocation() internal returns (SwornRegistry.Claim memory a, SwornRegistry.Claim memory b) {
        T[] memory first = batchOf(4, 5);
        T[] memory second = batchOf(3, 6);
        second[2].model = first[1].model;
        second[2].request = first[1].request; // same input, different output and meta
        (uint64 b0, bytes32[] memory l0) = anchorAll(op, first);
        vm.warp(block.timestamp + 3600);
        (uint64 b1, bytes32[] memory l1) = anchorAll(op, second);
        a = claim(op, first[1], b0, l0, 1);
        b = claim(op, second[2], b1, l1, 2);
    }

    bytes32 constant SALT = keccak256("salt");

    function dg(SwornRegistry.Claim memory c) internal view returns (bytes32) {
        return reg.transcriptDigest(c.model, c.request, c.output, c.meta);
    }

    /// `who` requests its exit, waits out the unbonding delay and withdraws its bond.
    function exitFully(address who) internal {
        vm.prank(who);
        reg.requestExit();
        vm.warp(block.timestamp + UNBONDING);
        vm.prank(who);
        reg.withdrawBond();
    }

    /// Step 1 of `who`'s report of (a, b) against `op`, then the next block.
    function commitReport(address who, SwornRegistry.Claim memory a, SwornRegistry.Claim memory b) internal {
        bytes32 c = reg.equivocationCommitment(who, op, dg(a), dg(b), SALT);
        vm.prank(who);
        reg.commitEquivocation(c);
        vm.roll(block.number + 1);
    }

    /// Both steps of `who`'s report.
    function report(address who, SwornRegistry.Claim memory a, SwornRegistry.Claim memory b) internal {
        commitReport(who, a, b);
        vm.prank(who);
        reg.challengeEquivocation(op, a, b, SALT);
    }

    function test_equivocation_slashes_and_pays_the_reporter_its_share() public {
        (SwornRegistry.Claim memory a, SwornRegistry.Claim memory b) = equivocation();
        uint256 before = challenger.balance;
        report(challenger, a, b);
        SwornRegistry.Operator memory o = reg.operatorInfo(op);
        assertTrue(o.slashed && !o.active && o.bond == 0, "slashed");
        assertEq(reg.credits(challenger), 0.2 ether, "10% of the 2 ether bond");
        assertEq(reg.burned(), 1.8 ether, "the rest burned");
        vm.prank(challenger);
        reg.withdraw();
        assertEq(challenger.balance, before + 0.2 ether, "paid");
        // Double slashing.
        commitReport(other, a, b);
        vm.prank(other);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.Slashed.selector, op));
        reg.challengeEquivocation(op, a, b, SALT);
        // A slashed address cannot come back.
        vm.prank(op);
        vm.expectRevert(SwornRegistry.AlreadyRegistered.selector);
        reg.register{value: 1 ether}(KEY, POP);
        assertEq(address(reg).balance, 1.8 ether, "only the burned part stays in the contract");
    }

    function test_equivocation_needs_same_input_and_different_outputs() public {
        (SwornRegistry.Claim memory a, SwornRegistry.Claim memory b) = equivocation();
        vm.expectRevert(SwornRegistry.NotEquivocation.selector);
        reg.challengeEquivocation(op, a, a, SALT);
        SwornRegistry.Claim memory c = copy(b);
        c.request = keccak256("another request");
        vm.expectRevert(SwornRegistry.NotEquivocation.selector);
        reg.challengeEquivocation(op, a, c, SALT);
    }

    function test_equivocation_needs_both_anchored_by_that_operator() public {
        (SwornRegistry.Claim memory a, SwornRegistry.Claim memory b) = equivocation();
        // Forged second transcript: same input, made-up output, never anchored.
        SwornRegistry.Claim memory f = copy(a);
        f.output = keccak256("forged");
        commitReport(challenger, a, f);
        vm.prank(challenger);
        vm.expectRevert(SwornRegistry.NotIncluded.selector);
        reg.challengeEquivocation(op, a, f, SALT);
        // Another operator's batch, proven with a proof from that batch.
        vm.prank(other);
        reg.register{value: 1 ether}(KEY2, POP);
        T[] memory ts = batchOf(2, 7);
        ts[0].model = a.model;
        ts[0].request = a.request;
        (uint64 ob, bytes32[] memory ol) = anchorAll(other, ts);
        SwornRegistry.Claim memory x = claim(other, ts[0], ob, ol, 0);
        commitReport(challenger, a, x);
        vm.prank(challenger);
        vm.expectRevert(SwornRegistry.NotIncluded.selector);
        reg.challengeEquivocation(op, a, x, SALT); // batch 0 of op holds other digests
        x.batch = 9; // the commitment names digests, not batches: it still stands
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.UnknownBatch.selector, uint64(9)));
        reg.challengeEquivocation(op, a, x, SALT);
        assertTrue(b.batch == 1, "b is in op's second batch");
    }

    function test_equivocation_after_the_window_is_refused() public {
        (SwornRegistry.Claim memory a, SwornRegistry.Claim memory b) = equivocation();
        commitReport(challenger, a, b);
        uint256 finalAt = anchoredAt[op][1] + WINDOW;
        vm.warp(finalAt - 1);
        uint256 snap = block.timestamp;
        vm.warp(finalAt);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.BatchFinal.selector, uint64(1), finalAt));
        reg.challengeEquivocation(op, a, b, SALT);
        vm.warp(snap);
        vm.prank(challenger);
        reg.challengeEquivocation(op, a, b, SALT);
    }

    /// A bot that copies a reporter's reveal (or its commitment) earns nothing: the commitment
    /// names the reporter, and a reveal needs a commitment from an earlier block.
    function test_a_copied_equivocation_report_earns_the_copier_nothing() public {
        (SwornRegistry.Claim memory a, SwornRegistry.Claim memory b) = equivocation();
        bytes32 c = reg.equivocationCommitment(challenger, op, dg(a), dg(b), SALT);
        // The copier front-runs the commitment itself: it is bound to the challenger's address.
        vm.prank(other);
        reg.commitEquivocation(c);
        vm.prank(challenger);
        vm.expectRevert(SwornRegistry.AlreadyCommitted.selector);
        reg.commitEquivocation(c);
        vm.roll(block.number + 1);
        // The copier copies the reveal: no commitment of its own.
        vm.prank(other);
        vm.expectRevert(SwornRegistry.NotCommitted.selector);
        reg.challengeEquivocation(op, a, b, SALT);
        // Nor can it commit and reveal in one block, after seeing the reveal.
        vm.prank(other);
        reg.commitEquivocation(reg.equivocationCommitment(other, op, dg(a), dg(b), SALT));
        vm.prank(other);
        vm.expectRevert(SwornRegistry.NotCommitted.selector);
        reg.challengeEquivocation(op, a, b, SALT);
        // The reporter's reveal pays the reporter.
        vm.prank(challenger);
        reg.challengeEquivocation(op, a, b, SALT);
        assertEq(reg.credits(challenger), 0.2 ether, "reporter paid");
        assertEq(reg.credits(other), 0, "copier paid nothing");
    }

    /// An operator that slashes itself through a second address keeps at most the reporter's
    /// share: worse than an honest exit, which returns the whole bond.
    function test_self_slash_through_a_second_address_loses_the_bond() public {
        address sybil = address(0x5B11);
        // Honest exit returns the bond.
        vm.prank(other);
        reg.register{value: 2 ether}(KEY2, POP);
        exitFully(other);
        uint256 honestExit = reg.credits(other);
        assertEq(honestExit, 2 ether, "honest exit");
        // Self-slash: op anchors two outputs for one request and reports itself.
        (SwornRegistry.Claim memory a, SwornRegistry.Claim memory b) = equivocation();
        report(sybil, a, b);
        uint256 selfSlash = reg.credits(op) + reg.credits(sybil);
        assertEq(selfSlash, 0.2 ether, "the sybil's share only");
        assertTrue(selfSlash + 1.5 ether < honestExit, "self-slashing loses most of the bond");
    }

    /// With a wrong-result dispute pending, an operator cannot escape by reporting its own
    /// equivocation first: the dispute is paid, the self-reporter nothing.
    function test_a_pending_dispute_is_paid_before_a_self_report() public {
        address sybil = address(0x5B11);
        (uint256 id,) = openOne();
        (SwornRegistry.Claim memory a, SwornRegistry.Claim memory b) = equivocation();
        report(sybil, a, b);
        SwornRegistry.Operator memory o = reg.operatorInfo(op);
        assertTrue(o.slashed, "slashed");
        assertEq(reg.credits(sybil), 0, "the reporter waits for the open dispute");
        assertEq(reg.burned(), 1.8 ether, "all but the 10% reward pool burned at once");
        // Withdrawal is impossible, and the dispute can still be resolved and is paid.
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.NotActive.selector, op));
        reg.withdrawBond();
        bytes32 h = reg.verdictHash(id, reg.disputeInfo(id).digest, RIGHT);
        reg.resolveDispute(id, RIGHT, sigs(V1, V2, h));
        assertEq(reg.credits(challenger), 0.09 ether + 0.2 ether, "bond less fee, plus the whole share");
        assertEq(reg.credits(sybil), 0, "the self-report gets nothing once the dispute is won");
        assertEq(reg.credits(op), 0, "operator gets nothing");
        assertEq(reg.burned(), 1.8 ether, "only the bond beyond the share burned");
        assertEq(reg.operatorInfo(op).slashPool, 0, "pool empty");
    }

    /// An honest report made while a dispute is open is paid once the dispute closes without a
    /// challenger win.
    function test_a_report_is_paid_once_open_disputes_close_unwon() public {
        (uint256 id, SwornRegistry.Claim memory c) = openOne();
        (SwornRegistry.Claim memory a, SwornRegistry.Claim memory b) = equivocation();
        address reporter = address(0x4E90);
        report(reporter, a, b);
        assertEq(reg.credits(reporter), 0, "deferred");
        bytes32 h = reg.verdictHash(id, reg.disputeInfo(id).digest, c.output);
        reg.resolveDispute(id, c.output, sigs(V1, V2, h));
        assertEq(reg.credits(reporter), 0.2 ether, "the whole share: the open dispute was not won");
        assertEq(reg.credits(op), 0.09 ether, "the operator was right on that transcript");
        assertEq(reg.burned(), 1.8 ether, "the bond beyond the share");
    }

    /// Several won disputes: the bond pays out at most `reporterShareBps` in all, to the first
    /// dispute won; a later win gets its bond back less the fee.
    function test_won_disputes_share_one_reward() public {
        (uint256 id1,) = openOne();
        (uint256 id2,) = openOne();
        bytes32 h1 = reg.verdictHash(id1, reg.disputeInfo(id1).digest, RIGHT);
        bytes32 h2 = reg.verdictHash(id2, reg.disputeInfo(id2).digest, RIGHT);
        reg.resolveDispute(id1, RIGHT, sigs(V1, V2, h1));
        assertEq(reg.credits(challenger), 0.09 ether + 0.2 ether, "first: the whole share");
        reg.resolveDispute(id2, RIGHT, sigs(V1, V2, h2));
        assertEq(reg.credits(challenger), 2 * 0.09 ether + 0.2 ether, "second: its bond back");
        assertEq(reg.burned(), 1.8 ether, "90% of the bond burned");
    }

    /// Sham disputes do not dilute an honest challenger: an operator about to lose opens nine
    /// disputes (from a second address) against its own honest transcripts; the honest
    /// challenger who wins still gets the whole share (0.2 ether, not 0.02), and the shams, ruled
    /// honest, cost their opener the fee each. (Before, every open dispute counted as a claimant
    /// and the winner got 1/(k+1) of the share.)
    function test_sham_disputes_do_not_dilute_the_winner() public {
        address sybil = address(0x5B11);
        vm.deal(sybil, 10 ether);
        (uint256 honest,) = openOne();
        uint256[] memory shams = new uint256[](9);
        SwornRegistry.Claim[] memory honestClaims = new SwornRegistry.Claim[](9);
        for (uint256 i = 0; i < 9; i++) {
            T[] memory ts = batchOf(3, salts++);
            (uint64 b, bytes32[] memory leaves) = anchorAll(op, ts);
            honestClaims[i] = claim(op, ts[1], b, leaves, 1);
            commitOpen(sybil, honestClaims[i], keccak256("a lie"));
            vm.prank(sybil);
            shams[i] = reg.openDispute{value: 0.1 ether}(op, honestClaims[i], keccak256("a lie"), SALT);
        }
        assertEq(reg.operatorInfo(op).openDisputes, 10, "ten open disputes");
        bytes32 h = reg.verdictHash(honest, reg.disputeInfo(honest).digest, RIGHT);
        reg.resolveDispute(honest, RIGHT, sigs(V1, V2, h));
        assertEq(reg.credits(challenger), 0.09 ether + 0.2 ether, "the whole share, undiluted");
        for (uint256 i = 0; i < 9; i++) {
            bytes32 out = honestClaims[i].output;
            bytes32 hs = reg.verdictHash(shams[i], reg.disputeInfo(shams[i]).digest, out);
            reg.resolveDispute(shams[i], out, sigs(V1, V2, hs));
        }
        assertEq(reg.credits(sybil), 0, "the shams earn their opener nothing");
        assertEq(reg.credits(op), 9 * 0.09 ether, "each sham's bond less its fee");
        assertEq(reg.operatorInfo(op).slashPool, 0, "pool empty");
    }

    // -------------------------------------------------------------------------------------
    // Registrations and keys
    // -------------------------------------------------------------------------------------

    /// Exit, withdraw, register again: the old log's batches cannot be set against the new ones.
    function test_a_new_registration_is_not_slashable_for_the_old_log() public {
        T[] memory first = batchOf(2, 8);
        (uint64 b0, bytes32[] memory l0) = anchorAll(op, first);
        SwornRegistry.Claim memory old = claim(op, first[0], b0, l0, 0);
        exitFully(op);
        vm.prank(op);
        reg.register{value: 1 ether}(KEY, POP); // the same key, the same address
        assertEq(reg.operatorInfo(op).epochStart, 1, "the new registration starts at batch 1");
        T[] memory second = batchOf(2, 9);
        second[1].model = first[0].model;
        second[1].request = first[0].request; // an upgraded engine answers the old request anew
        (uint64 b1, bytes32[] memory l1) = anchorAll(op, second);
        SwornRegistry.Claim memory fresh = claim(op, second[1], b1, l1, 1);
        commitReport(challenger, old, fresh);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.OtherRegistration.selector, uint64(0), uint64(1)));
        reg.challengeEquivocation(op, old, fresh, SALT);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.OtherRegistration.selector, uint64(0), uint64(1)));
        reg.openDispute{value: 0.1 ether}(op, old, keccak256("x"), SALT);
        assertTrue(reg.isAnchored(op, old), "the old batch stays provable");
        assertTrue(!reg.operatorInfo(op).slashed, "not slashed");
    }

    function test_one_key_one_operator() public {
        vm.prank(other);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.KeyTaken.selector, op));
        reg.register{value: 1 ether}(KEY, POP);
        // Still taken after op has left.
        exitFully(op);
        vm.prank(other);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.KeyTaken.selector, op));
        reg.register{value: 1 ether}(KEY, POP);
        vm.prank(other);
        reg.register{value: 1 ether}(KEY2, POP);
        assertEq(reg.keyOwner(KEY2), other, "other's own key");
    }

    // -------------------------------------------------------------------------------------
    // Wrong-result disputes
    // -------------------------------------------------------------------------------------

    function test_dispute_challenger_wins() public {
        (uint256 id, SwornRegistry.Claim memory c) = openOne();
        assertEq(reg.operatorInfo(op).openDisputes, 1, "open");
        SwornRegistry.Dispute memory d = reg.disputeInfo(id);
        bytes32 replayed = keccak256("the right output");
        reg.resolveDispute(id, replayed, sigs(V1, V3, reg.verdictHash(id, d.digest, replayed)));
        d = reg.disputeInfo(id);
        assertTrue(d.state == SwornRegistry.DisputeState.ChallengerWon, "won");
        assertEq(reg.credits(challenger), 0.09 ether + 0.2 ether, "bond less fee, plus 10% of the bond");
        assertEq(reg.credits(vm.addr(V1)) + reg.credits(vm.addr(V3)), FEE, "the fee pays the signers");
        assertEq(reg.credits(vm.addr(V1)), FEE / 2, "split evenly");
        assertEq(reg.burned(), 1.8 ether, "the rest of the bond burned");
        assertTrue(reg.operatorInfo(op).slashed, "slashed");
        assertEq(reg.operatorInfo(op).openDisputes, 0, "closed");
        // Resolving twice.
        bytes[] memory s2 = sigs(V1, V2, reg.verdictHash(id, d.digest, replayed));
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.NotOpen.selector, id));
        reg.resolveDispute(id, replayed, s2);
        assertTrue(c.index == 1, "claim");
    }

    function test_dispute_operator_wins() public {
        (uint256 id, SwornRegistry.Claim memory c) = openOne();
        SwornRegistry.Dispute memory d = reg.disputeInfo(id);
        reg.resolveDispute(id, c.output, sigs(V2, V3, reg.verdictHash(id, d.digest, c.output)));
        assertTrue(reg.disputeInfo(id).state == SwornRegistry.DisputeState.OperatorWon, "operator won");
        assertEq(reg.credits(op), 0.09 ether, "operator gets the challenger's bond less the fee");
        assertEq(reg.credits(vm.addr(V2)) + reg.credits(vm.addr(V3)), FEE, "the fee pays the signers");
        assertTrue(!reg.operatorInfo(op).slashed, "not slashed");
        assertEq(reg.operatorInfo(op).bond, 2 ether, "bond intact");
    }

    function test_dispute_opening_refusals() public {
        T[] memory ts = batchOf(3, 1);
        (uint64 b, bytes32[] memory leaves) = anchorAll(op, ts);
        SwornRegistry.Claim memory c = claim(op, ts[0], b, leaves, 0);
        vm.startPrank(challenger);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.WrongBond.selector, 0.05 ether, 0.1 ether));
        reg.openDispute{value: 0.05 ether}(op, c, keccak256("x"), SALT);
        vm.expectRevert(SwornRegistry.SameOutput.selector);
        reg.openDispute{value: 0.1 ether}(op, c, c.output, SALT);
        SwornRegistry.Claim memory f = copy(c);
        f.output = keccak256("not what was anchored");
        vm.expectRevert(SwornRegistry.NotIncluded.selector);
        reg.openDispute{value: 0.1 ether}(op, f, keccak256("x"), SALT);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.NotActive.selector, other));
        reg.openDispute{value: 0.1 ether}(other, c, keccak256("x"), SALT);
        // A final batch cannot be disputed.
        uint256 finalAt = anchoredAt[op][b] + WINDOW;
        vm.warp(finalAt);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.BatchFinal.selector, b, finalAt));
        reg.openDispute{value: 0.1 ether}(op, c, keccak256("x"), SALT);
        vm.warp(finalAt - 1);
        // Not committed (or committed in this very block): refused.
        vm.expectRevert(SwornRegistry.NotCommitted.selector);
        reg.openDispute{value: 0.1 ether}(op, c, keccak256("x"), SALT);
        reg.commitDispute(reg.disputeCommitment(challenger, op, dg(c), keccak256("x"), SALT));
        vm.expectRevert(SwornRegistry.NotCommitted.selector);
        reg.openDispute{value: 0.1 ether}(op, c, keccak256("x"), SALT);
        vm.roll(block.number + 1);
        reg.openDispute{value: 0.1 ether}(op, c, keccak256("x"), SALT);
        vm.stopPrank();
    }

    bytes32 constant RIGHT = keccak256("the right output");

    /// Opens a dispute; returns its id and the verdict hash for RIGHT.
    function verdictFor() internal returns (uint256 id, bytes32 h) {
        (id,) = openOne();
        h = reg.verdictHash(id, reg.disputeInfo(id).digest, RIGHT);
    }

    function test_verdict_too_few_duplicated_or_unordered() public {
        (uint256 id, bytes32 h) = verdictFor();
        bytes[] memory one = new bytes[](1);
        one[0] = sig(V1, h);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.NotEnoughSignatures.selector, 1, 2));
        reg.resolveDispute(id, RIGHT, one);
        bytes[] memory twice = new bytes[](2);
        twice[0] = sig(V1, h);
        twice[1] = sig(V1, h);
        vm.expectRevert(SwornRegistry.SignersNotAscending.selector);
        reg.resolveDispute(id, RIGHT, twice);
        bytes[] memory s = sigs(V1, V2, h);
        bytes[] memory desc = new bytes[](2);
        desc[0] = s[1];
        desc[1] = s[0];
        vm.expectRevert(SwornRegistry.SignersNotAscending.selector);
        reg.resolveDispute(id, RIGHT, desc);
        reg.resolveDispute(id, RIGHT, s);
    }

    function test_verdict_forged_or_replayed() public {
        (uint256 id, bytes32 h) = verdictFor();
        (uint256 id2,) = openOne();
        bytes32 dg = reg.disputeInfo(id).digest;
        // An outsider's key.
        bytes[] memory forged = sigs(V1, OUTSIDER, h);
        address outsider = vm.addr(OUTSIDER);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.NotVerifier.selector, outsider));
        reg.resolveDispute(id, RIGHT, forged);
        // Verdicts signed for another dispute, or for another replayed output, recover to
        // addresses outside the committee.
        bytes[] memory replayed = sigs(V1, V2, reg.verdictHash(id2, dg, RIGHT));
        vm.expectRevert();
        reg.resolveDispute(id, RIGHT, replayed);
        bytes[] memory otherOut = sigs(V1, V2, reg.verdictHash(id, dg, keccak256("other")));
        vm.expectRevert();
        reg.resolveDispute(id, RIGHT, otherOut);
        // A verdict for another chain (same contract address after a fork) does not count here.
        uint256 chain = block.chainid;
        vm.chainId(chain + 1);
        bytes[] memory forked = sigs(V1, V2, reg.verdictHash(id, dg, RIGHT));
        vm.chainId(chain);
        vm.expectRevert();
        reg.resolveDispute(id, RIGHT, forked);
        reg.resolveDispute(id, RIGHT, sigs(V1, V2, h));
    }

    function test_verdict_malleable_or_garbage() public {
        (uint256 id, bytes32 h) = verdictFor();
        bytes[] memory mal = sigs(V1, V2, h);
        mal[0] = malleate(mal[0]);
        vm.expectRevert(SwornRegistry.BadSignature.selector);
        reg.resolveDispute(id, RIGHT, mal);
        bytes[] memory bad = sigs(V1, V2, h);
        bad[1] = hex"1234";
        vm.expectRevert(SwornRegistry.BadSignature.selector);
        reg.resolveDispute(id, RIGHT, bad);
        bytes[] memory zero = sigs(V1, V2, h);
        zero[1] = new bytes(65);
        vm.expectRevert(SwornRegistry.BadSignature.selector);
        reg.resolveDispute(id, RIGHT, zero);
        reg.resolveDispute(id, RIGHT, sigs(V1, V2, h));
    }

    function malleate(bytes memory sg) internal pure returns (bytes memory) {
        bytes32 r;
        bytes32 s;
        uint8 v = uint8(sg[64]);
        assembly {
            r := mload(add(sg, 32))
            s := mload(add(sg, 64))
        }
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        return abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }

    function test_dispute_deadlines() public {
        (uint256 id,) = openOne();
        SwornRegistry.Dispute memory d = reg.disputeInfo(id);
        bytes32 replayed = keccak256("the right output");
        bytes[] memory s = sigs(V1, V2, reg.verdictHash(id, d.digest, replayed));
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.NotPastDeadline.selector, d.deadline));
        reg.expireDispute(id);
        vm.warp(d.deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.PastDeadline.selector, d.deadline));
        reg.resolveDispute(id, replayed, s);
        reg.expireDispute(id);
        assertEq(reg.credits(challenger), 0.09 ether, "bond returned less the fee");
        assertEq(reg.burned(), FEE, "the fee of a dispute nobody ruled on is burned");
        assertTrue(!reg.operatorInfo(op).slashed, "nobody slashed");
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.NotOpen.selector, id));
        reg.expireDispute(id);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.NotOpen.selector, id));
        reg.resolveDispute(id, replayed, s);
    }

    function test_verdict_at_the_deadline_counts() public {
        (uint256 id,) = openOne();
        SwornRegistry.Dispute memory d = reg.disputeInfo(id);
        bytes32 replayed = keccak256("the right output");
        vm.warp(d.deadline);
        reg.resolveDispute(id, replayed, sigs(V1, V2, reg.verdictHash(id, d.digest, replayed)));
    }

    /// A dispute cannot be front-run: a copy of the challenger's `openDispute` from another
    /// address (the cheating operator's, say) reverts, since the copier committed to nothing,
    /// and the commitment itself names the challenger and hides the transcript, so posting a copy
    /// of it is useless too. (Before, a copier of the pending call became the challenger and the
    /// honest one reverted with `AlreadyDisputed`.)
    function test_a_copied_dispute_cannot_take_the_challengers_place() public {
        address sybil = address(0x5B11);
        vm.deal(sybil, 1 ether);
        T[] memory ts = batchOf(3, salts++);
        (uint64 b, bytes32[] memory leaves) = anchorAll(op, ts);
        SwornRegistry.Claim memory c = claim(op, ts[1], b, leaves, 1);
        commitOpen(challenger, c, RIGHT);
        // The copier sees the pending call and sends it first, with the same salt.
        vm.prank(sybil);
        vm.expectRevert(SwornRegistry.NotCommitted.selector);
        reg.openDispute{value: 0.1 ether}(op, c, RIGHT, SALT);
        // Copying the commitment (it names the challenger) does not help either.
        bytes32 copied = reg.disputeCommitment(challenger, op, dg(c), RIGHT, SALT);
        vm.prank(sybil);
        vm.expectRevert(SwornRegistry.AlreadyCommitted.selector);
        reg.commitDispute(copied);
        vm.prank(challenger);
        uint256 id = reg.openDispute{value: 0.1 ether}(op, c, RIGHT, SALT);
        assertEq(reg.disputeInfo(id).challenger, challenger, "the honest challenger's dispute");
    }

    /// At most one open dispute per transcript; a transcript ruled honest is never disputed again.
    function test_one_open_dispute_per_claim() public {
        deploy(3 days, 4 days); // long enough to dispute again after an expiry
        (uint256 id, SwornRegistry.Claim memory c) = openOne();
        vm.prank(other);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.AlreadyDisputed.selector, id));
        reg.openDispute{value: 0.1 ether}(op, c, keccak256("another claimed output"), SALT);
        assertEq(reg.claimDispute(op, dg(c)), id + 1, "open");
        // After expiry it may be disputed again (nobody ruled), for another fee.
        vm.warp(reg.disputeInfo(id).deadline + 1);
        reg.expireDispute(id);
        assertEq(reg.claimDispute(op, dg(c)), 0, "closed");
        commitOpen(other, c, keccak256("x"));
        vm.prank(other);
        uint256 id2 = reg.openDispute{value: 0.1 ether}(op, c, keccak256("x"), SALT);
        // Ruled honest: settled for good.
        bytes32 h = reg.verdictHash(id2, reg.disputeInfo(id2).digest, c.output);
        reg.resolveDispute(id2, c.output, sigs(V1, V2, h));
        vm.prank(other);
        vm.expectRevert(SwornRegistry.ClaimSettled.selector);
        reg.openDispute{value: 0.1 ether}(op, c, keccak256("x"), SALT);
        // Griefing cost: the first griefer lost the fee, the second the whole bond less the fee
        // paid to the verifiers; the operator was compensated with the rest.
        assertEq(reg.credits(other), 0, "the second griefer gets nothing back");
        assertEq(reg.credits(op), 0.09 ether, "the operator is compensated");
        assertEq(reg.burned(), FEE, "the first griefer's fee");
    }

    /// Every signer of a verdict is paid an equal part of the fee; a remainder is burned.
    function test_the_fee_is_split_among_all_signers() public {
        (uint256 id, SwornRegistry.Claim memory c) = openOne();
        bytes32 h = reg.verdictHash(id, reg.disputeInfo(id).digest, c.output);
        uint256[3] memory keys = [V1, V2, V3];
        // Sort the three keys by address.
        for (uint256 i = 0; i < 3; i++) {
            for (uint256 j = i + 1; j < 3; j++) {
                if (vm.addr(keys[j]) < vm.addr(keys[i])) (keys[i], keys[j]) = (keys[j], keys[i]);
            }
        }
        bytes[] memory all = new bytes[](3);
        for (uint256 i = 0; i < 3; i++) {
            all[i] = sig(keys[i], h);
        }
        reg.resolveDispute(id, c.output, all);
        for (uint256 i = 0; i < 3; i++) {
            assertEq(reg.credits(vm.addr(keys[i])), FEE / 3, "a third each");
        }
        assertEq(reg.burned(), FEE - 3 * (FEE / 3), "the remainder");
    }

    // -------------------------------------------------------------------------------------
    // Exit
    // -------------------------------------------------------------------------------------

    function test_exit_waits_for_unbonding_and_disputes() public {
        (uint256 id,) = openOne();
        vm.prank(op);
        reg.requestExit();
        uint256 exitAt = reg.operatorInfo(op).exitAt;
        assertEq(exitAt, block.timestamp + UNBONDING, "exit time");
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.TooEarly.selector, block.timestamp, exitAt));
        reg.withdrawBond();
        vm.warp(exitAt);
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.DisputesOpen.selector, 1));
        reg.withdrawBond();
        reg.expireDispute(id);
        vm.prank(op);
        reg.withdrawBond();
        assertEq(reg.credits(op), 2 ether, "bond credited");
        assertTrue(!reg.operatorInfo(op).active, "gone");
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.NotActive.selector, op));
        reg.withdrawBond();
        vm.prank(op);
        reg.withdraw();
        vm.prank(op);
        vm.expectRevert(SwornRegistry.NothingToWithdraw.selector);
        reg.withdraw();
    }

    function test_an_exiting_operator_can_still_be_slashed() public {
        (SwornRegistry.Claim memory a, SwornRegistry.Claim memory b) = equivocation();
        vm.prank(op);
        reg.requestExit();
        report(challenger, a, b);
        vm.warp(block.timestamp + UNBONDING);
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(SwornRegistry.NotActive.selector, op));
        reg.withdrawBond();
    }

    // -------------------------------------------------------------------------------------
    // Reentrancy
    // -------------------------------------------------------------------------------------

    function test_withdraw_is_not_reentrant() public {
        Reentrant r = new Reentrant(reg);
        vm.deal(address(r), 5 ether);
        r.register{value: 1 ether}(KEY3);
        r.requestExit();
        vm.warp(block.timestamp + UNBONDING);
        r.withdrawBond();
        assertEq(reg.credits(address(r)), 1 ether, "credited");
        uint256 before = address(r).balance;
        r.withdraw();
        assertEq(r.reentries(), 1, "receive ran once");
        assertTrue(r.innerFailed(), "the nested withdraw was refused");
        assertEq(address(r).balance, before + 1 ether, "paid exactly once");
        assertEq(reg.credits(address(r)), 0, "nothing left");
        assertEq(address(reg).balance, 2 ether, "op's bond stays");
    }

    // -------------------------------------------------------------------------------------
    // Merkle verification (fuzzed)
    // -------------------------------------------------------------------------------------

    function leavesOf(uint256 n, uint256 salt) internal pure returns (bytes32[] memory l) {
        l = new bytes32[](n);
        for (uint256 i = 0; i < n; i++) {
            l[i] = keccak256(abi.encode(salt, i));
        }
    }

    function testFuzz_inclusion_proofs_verify(uint8 n8, uint8 m8, uint256 salt) public view {
        uint256 n = uint256(n8) % 70 + 1;
        uint256 m = uint256(m8) % n;
        bytes32[] memory l = leavesOf(n, salt);
        bytes32 root = MerkleBuilder.root(l);
        bytes32[] memory p = MerkleBuilder.proof(l, m);
        assertTrue(harness.verify(l[m], m, n, p, root), "valid proof");
        assertTrue(!harness.verify(l[m], m + 1, n, p, root) || n == 1, "wrong index");
        // (A proof can also fit a tree of another size: the contract never takes the size from
        // the caller, it uses the anchored batch's.)
        assertTrue(!harness.verify(l[m], m, m, p, root), "index past the size");
        assertTrue(!harness.verify(keccak256("x"), m, n, p, root), "wrong leaf");
    }

    function testFuzz_tampered_proofs_fail(uint8 n8, uint8 m8, uint8 k8, uint8 bit, uint256 salt) public view {
        uint256 n = uint256(n8) % 70 + 2;
        uint256 m = uint256(m8) % n;
        bytes32[] memory l = leavesOf(n, salt);
        bytes32 root = MerkleBuilder.root(l);
        bytes32[] memory p = MerkleBuilder.proof(l, m);
        uint256 k = uint256(k8) % p.length;
        p[k] = p[k] ^ bytes32(uint256(1) << bit);
        assertTrue(!harness.verify(l[m], m, n, p, root), "flipped bit");
        bytes32[] memory shorter = new bytes32[](p.length - 1);
        for (uint256 i = 0; i + 1 < p.length; i++) {
            shorter[i] = MerkleBuilder.proof(l, m)[i];
        }
        assertTrue(!harness.verify(l[m], m, n, shorter, root), "truncated proof");
    }
}
