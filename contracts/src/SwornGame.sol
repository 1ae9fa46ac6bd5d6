// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornRegistry} from "./SwornRegistry.sol";
import {ISwornExecutor} from "./ISwornExecutor.sol";
import {SwornTrace} from "./SwornTrace.sol";

/// @title SwornGame
/// @notice The trustless wrong-result dispute (docs/dispute.md §6): a challenger and an
/// operator each commit to the trace of a transcript's replay (a Merkle root over every
/// operation's output, `SwornTrace`); they bisect, in rounds with deadlines, to the first trace
/// element they disagree on, agreeing on everything before it; the executor computes that one
/// element from agreed inputs, and whoever's value differs from its result loses. No committee,
/// no tolerance: the arithmetic is exact.
///
/// Money: the challenger posts `bond`; the operator's stake is its registry bond. The loser of a
/// game pays: a losing challenger's bond goes to the operator; a losing operator is slashed by
/// the registry (`SwornRegistry.gameClosed`), whose reward share goes to the earliest-opened game
/// won against it, and the challenger gets its bond back. Every move has a deadline
/// (`moveWindow`); a party that misses one loses, so no game lasts longer than
/// `(depth + 4) * moveWindow` with `depth = ceil(log2(leaves))`.
contract SwornGame {
    // ---------------------------------------------------------------------------------------
    // Types, errors, events
    // ---------------------------------------------------------------------------------------

    /// @notice Where a game stands.
    enum Phase {
        None,
        /// Waiting for the operator's trace root (`respond`).
        Respond,
        /// Both parties reveal the children of the node they disagree on (`bisect`), or the
        /// leaf itself once the node is one leaf (`revealLeaf`).
        Bisect,
        /// One element is left: waiting for its one-step execution (`execute`).
        Execute,
        ChallengerWon,
        OperatorWon
    }

    /// @notice A game. `lo .. hi` are the leaves the disputed node covers; `opNode` and `chNode`
    /// the two parties' hashes of it. Once in `Execute`, `element` is the first element they
    /// disagree on (before: the element holding the disputed output token).
    struct Game {
        address challenger;
        uint64 deadline;
        Phase phase;
        /// Who moved at this level: bit 0 the operator, bit 1 the challenger.
        uint8 moved;
        address operator;
        uint64 leaves;
        uint32 rounds;
        uint64 lo;
        uint64 hi;
        uint64 element;
        uint32 token;
        uint32 opValue;
        uint32 chValue;
        bytes32 digest;
        bytes32 context;
        bytes32 opRoot;
        bytes32 chRoot;
        bytes32 opNode;
        bytes32 chNode;
        bytes32 opLeft;
        bytes32 opRight;
        bytes32 chLeft;
        bytes32 chRight;
    }

    error BadConfig();
    error WrongBond(uint256 sent, uint256 required);
    error NotCommitted();
    error AlreadyCommitted();
    error NotDisagreeing();
    error BadProof();
    error WrongPhase(uint256 game, Phase phase);
    error PastDeadline(uint256 deadline);
    error NotPastDeadline(uint256 deadline);
    error NotAParty();
    error AlreadyMoved();
    error NotYourNode();
    error NotTheOperator();

    event GameCommitted(bytes32 indexed commitment, address indexed challenger);
    event GameOpened(
        uint256 indexed game,
        address indexed operator,
        address indexed challenger,
        bytes32 digest,
        uint256 step,
        bytes32 challengerRoot,
        uint256 leaves,
        uint256 deadline
    );
    event GameResponded(uint256 indexed game, bytes32 operatorRoot, uint256 deadline);
    event Bisected(uint256 indexed game, address indexed party, bytes32 left, bytes32 right);
    event Narrowed(uint256 indexed game, uint256 lo, uint256 hi, uint256 deadline);
    event LeafRevealed(uint256 indexed game, address indexed party, uint32[32] words);
    event Disagreed(
        uint256 indexed game, uint256 element, uint32 operatorValue, uint32 challengerValue, uint256 deadline
    );
    event Executed(uint256 indexed game, uint32 value);
    event GameEnded(uint256 indexed game, bool challengerWon, bytes32 reason);

    bytes32 private constant BY_EXECUTION = "execution";
    bytes32 private constant OPERATOR_SILENT = "operator missed a deadline";
    bytes32 private constant CHALLENGER_SILENT = "challenger missed a deadline";

    // ---------------------------------------------------------------------------------------
    // Configuration and state
    // ---------------------------------------------------------------------------------------

    /// @notice The registry that holds operator bonds and anchors, and pays out.
    SwornRegistry public immutable registry;
    /// @notice The layout and one-step execution of traces.
    ISwornExecutor public immutable executor;
    /// @notice Exact bond a challenger posts.
    uint256 public immutable bond;
    /// @notice Seconds each move may take.
    uint64 public immutable moveWindow;

    /// @notice Games opened so far (the next game's id).
    uint256 public gameCount;
    /// @notice The block in which each opening commitment (`commitment`) was posted.
    mapping(bytes32 => uint256) public committedAt;
    mapping(uint256 => Game) private _games;

    /// @param registry_ the registry this game slashes through. It must name this contract as
    ///        its game (`SwornRegistry.game`): deploy the game first, at the address the registry
    ///        will check.
    constructor(SwornRegistry registry_, ISwornExecutor executor_, uint256 bond_, uint64 moveWindow_) {
        if (address(registry_) == address(0) || address(executor_) == address(0) || bond_ == 0 || moveWindow_ == 0) {
            revert BadConfig();
        }
        registry = registry_;
        executor = executor_;
        bond = bond_;
        moveWindow = moveWindow_;
    }

    // ---------------------------------------------------------------------------------------
    // Opening: commit, then open
    // ---------------------------------------------------------------------------------------

    /// @notice The commitment a challenger posts before opening a game. It names the
    /// challenger, so a copy is useless to anyone else, and hides the transcript, step and trace
    /// until the game opens.
    function commitment(address challenger, address operator, bytes32 digest, uint256 step, bytes32 root, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(challenger, operator, digest, step, root, salt));
    }

    /// @notice Step 1 of opening: records `c` (see `commitment`) at this block.
    function commit(bytes32 c) external {
        if (committedAt[c] != 0) revert AlreadyCommitted();
        committedAt[c] = block.number;
        emit GameCommitted(c, msg.sender);
    }

    /// @notice What a challenger opens a game with: the disputed output step, the data the
    /// executor binds the game to the transcript with (`ISwornExecutor.bind`), its trace root,
    /// the leaf of that trace holding the step's token with its proof, and the commitment's salt.
    struct Opening {
        uint256 step;
        bytes32 root;
        bytes32 salt;
        uint32[32] leaf;
        bytes32[] proof;
        bytes bindData;
    }

    /// @notice Step 2: opens a game on an anchored transcript's output step `o.step`, posting
    /// exactly `bond`. The caller committed to exactly this in an earlier block. `o.leaf` and
    /// `o.proof` show that the caller's trace holds another token at that step than the
    /// transcript. The registry checks the claim is anchored, in the operator's current
    /// registration and inside its challenge window, and counts the game as an open dispute (the
    /// operator cannot withdraw its bond while it is open).
    function open(address operator, SwornRegistry.Claim calldata claim, Opening calldata o)
        external
        payable
        returns (uint256 id)
    {
        if (msg.value != bond) revert WrongBond(msg.value, bond);
        bytes32 digest = registry.transcriptDigest(claim.model, claim.request, claim.output, claim.meta);
        uint256 committed = committedAt[commitment(msg.sender, operator, digest, o.step, o.root, o.salt)];
        if (committed == 0 || committed >= block.number) revert NotCommitted();
        id = gameCount++;
        registry.gameOpened(operator, id, claim);
        Game storage g = _games[id];
        (g.challenger, g.operator, g.digest, g.chRoot) = (msg.sender, operator, digest, o.root);
        _bind(g, claim, o);
        g.phase = Phase.Respond;
        g.deadline = uint64(block.timestamp) + moveWindow;
        emit GameOpened(id, operator, msg.sender, digest, o.step, o.root, g.leaves, g.deadline);
    }

    /// Binds game `g` to the transcript through the executor and checks the challenger's token.
    function _bind(Game storage g, SwornRegistry.Claim calldata claim, Opening calldata o) private {
        (bytes32 context, uint256 leaves, uint256 element, uint32 token) =
            executor.bind(claim.model, claim.request, claim.output, o.step, o.bindData);
        if (!SwornTrace.proves(o.leaf, element / SwornTrace.WIDTH, leaves, o.proof, o.root)) revert BadProof();
        if (o.leaf[element % SwornTrace.WIDTH] == token) revert NotDisagreeing();
        g.context = context;
        g.leaves = uint64(leaves);
        g.element = uint64(element);
        g.token = token;
    }

    // ---------------------------------------------------------------------------------------
    // The operator's answer, bisection, the last leaf
    // ---------------------------------------------------------------------------------------

    /// @notice The operator's trace root, with the proof that its element holding the disputed
    /// token is the transcript's token (the trace it defends is the transcript's). The two roots
    /// then differ, and bisection starts over all `leaves` leaves.
    function respond(uint256 id, bytes32 root, uint32[32] calldata leaf, bytes32[] calldata proof) external {
        Game storage g = _live(id, Phase.Respond);
        if (msg.sender != g.operator) revert NotTheOperator();
        if (!SwornTrace.proves(leaf, g.element / SwornTrace.WIDTH, g.leaves, proof, root)) revert BadProof();
        if (leaf[g.element % SwornTrace.WIDTH] != g.token) revert NotDisagreeing();
        g.opRoot = root;
        g.opNode = root;
        g.chNode = g.chRoot;
        g.lo = 0;
        g.hi = g.leaves;
        g.phase = Phase.Bisect;
        g.deadline = uint64(block.timestamp) + moveWindow;
        emit GameResponded(id, root, g.deadline);
    }

    /// @notice A party's children of the node in dispute (which covers two leaves or more). Once
    /// both have moved, the game goes to the left child if the parties' left children differ,
    /// else to the right: every leaf left of the new node is then the same in both traces.
    function bisect(uint256 id, bytes32 left, bytes32 right) external {
        Game storage g = _live(id, Phase.Bisect);
        if (g.hi - g.lo < 2) revert WrongPhase(id, g.phase);
        bool isOp = _mark(g);
        if (SwornTrace.nodeHash(left, right) != (isOp ? g.opNode : g.chNode)) revert NotYourNode();
        if (isOp) (g.opLeft, g.opRight) = (left, right);
        else (g.chLeft, g.chRight) = (left, right);
        emit Bisected(id, msg.sender, left, right);
        if (g.moved != 3) return;
        uint64 mid = g.lo + uint64(SwornTrace.split(g.hi - g.lo));
        if (g.opLeft != g.chLeft) {
            (g.hi, g.opNode, g.chNode) = (mid, g.opLeft, g.chLeft);
        } else {
            (g.lo, g.opNode, g.chNode) = (mid, g.opRight, g.chRight);
        }
        g.moved = 0;
        g.rounds += 1;
        g.deadline = uint64(block.timestamp) + moveWindow;
        emit Narrowed(id, g.lo, g.hi, g.deadline);
    }

    /// @notice A party's words of the one leaf left. The first to reveal gives its own words
    /// (published in `LeafRevealed`); the second gives its own and the first's, so the contract
    /// never stores a leaf. Then the first word where they differ is the element in dispute.
    function revealLeaf(uint256 id, uint32[32] calldata own, uint32[32] calldata other) external {
        Game storage g = _live(id, Phase.Bisect);
        if (g.hi - g.lo != 1) revert WrongPhase(id, g.phase);
        bool isOp = _mark(g);
        if (SwornTrace.leafHash(own) != (isOp ? g.opNode : g.chNode)) revert NotYourNode();
        emit LeafRevealed(id, msg.sender, own);
        if (g.moved != 3) return;
        if (SwornTrace.leafHash(other) != (isOp ? g.chNode : g.opNode)) revert NotYourNode();
        (uint32[32] calldata op, uint32[32] calldata ch) = isOp ? (own, other) : (other, own);
        uint256 e = 0;
        while (op[e] == ch[e]) {
            e++; // the hashes differ, so some word does
        }
        g.element = g.lo * uint64(SwornTrace.WIDTH) + uint64(e);
        (g.opValue, g.chValue) = (op[e], ch[e]);
        g.phase = Phase.Execute;
        g.deadline = uint64(block.timestamp) + moveWindow;
        emit Disagreed(id, g.element, op[e], ch[e], g.deadline);
    }

    // ---------------------------------------------------------------------------------------
    // The end: execution, or a missed deadline
    // ---------------------------------------------------------------------------------------

    /// @notice Executes the element in dispute (anyone may call; the operator must, by the
    /// deadline, or it loses): the executor computes it from inputs `witness` proves against the
    /// operator's trace (every element before this one, which both traces share) and the
    /// transcript. If the result is the operator's value the operator wins, else the challenger.
    function execute(uint256 id, bytes calldata witness) external {
        Game storage g = _live(id, Phase.Execute);
        uint32 v = executor.execute(g.context, g.opRoot, g.leaves, g.element, witness);
        emit Executed(id, v);
        _end(id, g, v != g.opValue, BY_EXECUTION);
    }

    /// @notice Ends a game whose deadline passed without the move it waited for. Waiting for
    /// the operator's root or an execution: the challenger wins. In bisection: whoever did not
    /// move loses; if neither did, the challenger loses (it carries the dispute).
    function timeout(uint256 id) external {
        Game storage g = _games[id];
        Phase p = g.phase;
        if (p != Phase.Respond && p != Phase.Bisect && p != Phase.Execute) revert WrongPhase(id, p);
        if (block.timestamp <= g.deadline) revert NotPastDeadline(g.deadline);
        bool challengerWon = p != Phase.Bisect || g.moved == 2;
        _end(id, g, challengerWon, challengerWon ? OPERATOR_SILENT : CHALLENGER_SILENT);
    }

    /// @notice Game `id`.
    function gameInfo(uint256 id) external view returns (Game memory) {
        return _games[id];
    }

    // ---------------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------------

    /// The game, in phase `p` and before its deadline.
    function _live(uint256 id, Phase p) private view returns (Game storage g) {
        g = _games[id];
        if (g.phase != p) revert WrongPhase(id, g.phase);
        if (block.timestamp > g.deadline) revert PastDeadline(g.deadline);
    }

    /// Records the caller's move at this level; whether it is the operator.
    function _mark(Game storage g) private returns (bool isOp) {
        isOp = msg.sender == g.operator;
        if (!isOp && msg.sender != g.challenger) revert NotAParty();
        uint8 bit = isOp ? 1 : 2;
        if (g.moved & bit != 0) revert AlreadyMoved();
        g.moved |= bit;
    }

    function _end(uint256 id, Game storage g, bool challengerWon, bytes32 reason) private {
        g.phase = challengerWon ? Phase.ChallengerWon : Phase.OperatorWon;
        emit GameEnded(id, challengerWon, reason);
        address payee = challengerWon ? g.challenger : g.operator;
        registry.gameClosed{value: bond}(g.operator, id, g.challenger, challengerWon, payee);
    }
}
