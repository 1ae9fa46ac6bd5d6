// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornMerkle} from "./SwornMerkle.sol";

/// @title SwornRegistry
/// @notice Operators of `sworn serve` register a bond and their Ed25519 transcript key, anchor
/// batches of transcript digests in an append-only log, and lose the bond if they are caught:
/// trustlessly for equivocation (two different outputs for the same deterministic input), or by
/// an M-of-N committee of replaying verifiers for a wrong result. Payments are pulled with
/// `withdraw`. The protocol is specified in `docs/anchoring.md`.
contract SwornRegistry {
    // ---------------------------------------------------------------------------------------
    // Types
    // ---------------------------------------------------------------------------------------

    /// @notice A registered operator.
    struct Operator {
        /// Wei at stake; zero once slashed or withdrawn.
        uint128 bond;
        /// When the bond may be withdrawn; zero while the operator is active.
        uint64 exitAt;
        /// Wrong-result disputes not yet resolved or expired.
        uint32 openDisputes;
        /// Registered and neither exited nor slashed.
        bool active;
        /// Slashed once; a slashed address cannot register again.
        bool slashed;
        /// The operator's Ed25519 public key (transcripts carry `sha256(key)` as their key id).
        bytes32 ed25519Key;
        /// Batches anchored so far (the next batch's number).
        uint64 batches;
        /// Transcript digests anchored so far, over all batches (the log's size).
        uint64 logSize;
        /// When the latest batch was anchored.
        uint64 lastAnchorAt;
        /// When the operator (last) registered. Also keeps the word holding the log counters
        /// non-zero, so that even the first anchor pays for an update, not a fresh word.
        uint64 registeredAt;
        /// The first batch of the current registration. Batches before it belong to an earlier
        /// registration (another bond, maybe another engine): claims from them cannot be used
        /// against this one.
        uint64 epochStart;
        /// The block of the current registration, whose `OperatorRegistered` event carries the
        /// key-possession proof (`docs/anchoring.md` section 1.1).
        uint64 registeredBlock;
        /// After a slash: what is left of the reward pool (one reporter's share of the bond), held
        /// for the disputes that were open then and a deferred reporter; burned once they closed.
        uint128 slashPool;
        /// After a slash: one claimant's unit of the pool (the share over the claimants).
        uint128 slashShare;
        /// After an equivocation slash while disputes were open: the reporter, paid only if none
        /// of those disputes is won by its challenger (they came first).
        address pendingReporter;
        /// After a slash: a dispute that was open then has been won by its challenger.
        bool slashDisputeWon;
    }

    /// @notice An anchored transcript, named by its four commitments (`docs/transcript.md` section 4)
    /// and proven to be leaf `index` of batch `batch` of the operator's log. `batchSize` and
    /// `anchoredAt` are the batch's, as its `Anchored` event gave them: the contract keeps one
    /// storage word per batch, `batchWord(root, batchSize, anchoredAt)`, and checks them against it.
    struct Claim {
        bytes32 model;
        bytes32 request;
        bytes32 output;
        bytes32 meta;
        uint64 batch;
        uint64 index;
        uint64 batchSize;
        uint64 anchoredAt;
        bytes32[] proof;
    }

    /// @notice Where a wrong-result dispute stands.
    enum DisputeState {
        None,
        Open,
        ChallengerWon,
        OperatorWon,
        Expired
    }

    /// @notice A wrong-result dispute (four storage words; the challenger's claimed output is in
    /// the `DisputeOpened` event).
    struct Dispute {
        address challenger;
        uint96 bond;
        address operator;
        uint64 deadline;
        DisputeState state;
        /// The disputed transcript's digest.
        bytes32 digest;
        /// The output commitment that was anchored.
        bytes32 output;
    }

    // ---------------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------------

    error BadConfig();
    error AlreadyRegistered();
    error BondTooSmall(uint256 sent, uint256 required);
    error BadKey();
    error NotActive(address operator);
    error Exiting();
    error NotExiting();
    error TooEarly(uint256 now_, uint256 allowedAt);
    error DisputesOpen(uint256 count);
    error EmptyBatch();
    error UnknownBatch(uint64 batch);
    error NotIncluded();
    error BatchFinal(uint64 batch, uint256 finalAt);
    error NotEquivocation();
    error Slashed(address operator);
    error WrongBond(uint256 sent, uint256 required);
    error SameOutput();
    error NotOpen(uint256 dispute);
    error PastDeadline(uint256 deadline);
    error NotPastDeadline(uint256 deadline);
    error BadSignature();
    error NotVerifier(address signer);
    error SignersNotAscending();
    error NotEnoughSignatures(uint256 given, uint256 required);
    error NothingToWithdraw();
    error TransferFailed();
    error Reentrancy();
    error BadKeyProof();
    error KeyTaken(address owner);
    error OtherRegistration(uint64 batch, uint64 epochStart);
    error NotCommitted();
    error AlreadyCommitted();
    error AlreadyDisputed(uint256 dispute);
    error ClaimSettled();
    error NotGame();

    // ---------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------

    event OperatorRegistered(address indexed operator, bytes32 ed25519Key, uint256 bond, bytes keyProof);
    event BondAdded(address indexed operator, uint256 amount, uint256 bond);
    event ExitRequested(address indexed operator, uint256 exitAt);
    event OperatorExited(address indexed operator, uint256 bond);
    event Anchored(
        address indexed operator, uint64 indexed batch, bytes32 root, uint64 start, uint64 size, uint64 anchoredAt
    );
    event OperatorSlashed(address indexed operator, address indexed reporter, uint256 amount, bytes32 reason);
    event EquivocationCommitted(bytes32 indexed commitment, address indexed reporter);
    event Burned(uint256 amount);
    event DisputeCommitted(bytes32 indexed commitment, address indexed challenger);
    event DisputeOpened(
        uint256 indexed dispute,
        address indexed operator,
        address indexed challenger,
        bytes32 digest,
        bytes32 output,
        bytes32 claimedOutput,
        uint256 deadline
    );
    event DisputeResolved(uint256 indexed dispute, DisputeState state, bytes32 replayedOutput);
    event DisputeExpired(uint256 indexed dispute);
    event Credited(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);

    // ---------------------------------------------------------------------------------------
    // Constants and configuration
    // ---------------------------------------------------------------------------------------

    /// @notice Domain tag of the transcript digest (`docs/transcript.md` section 4), 20 bytes.
    bytes20 public constant DIGEST_TAG = "sworn.transcript.v2\x00";
    /// @notice EIP-712 type of a verifier's verdict: the output commitment that the verifier's
    /// replay of the dispute's transcript gives.
    bytes32 public constant VERDICT_TYPEHASH =
        keccak256("Verdict(uint256 dispute,bytes32 digest,bytes32 replayedOutput)");
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    /// @dev secp256k1n / 2: signatures with a larger `s` are malleable copies and are refused.
    uint256 private constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;
    /// @dev `_claimDispute` value of a claim the committee ruled honest: it cannot be disputed again.
    uint256 private constant SETTLED = type(uint256).max;
    /// Reason tags of `OperatorSlashed`.
    bytes32 public constant REASON_EQUIVOCATION = "equivocation";
    bytes32 public constant REASON_WRONG_RESULT = "wrong-result";
    bytes32 public constant REASON_GAME = "dispute-game";

    /// @notice Smallest bond an operator registers with.
    uint256 public immutable minBond;
    /// @notice Exact bond a challenger posts with a wrong-result dispute.
    uint256 public immutable disputeBond;
    /// @notice The part of `disputeBond` that the challenger never gets back: it pays the verifiers
    /// who rule (split among the verdict's signers), and is burned if nobody rules.
    uint256 public immutable disputeFee;
    /// @notice The share of a slashed bond (in basis points, at most half) paid out as rewards,
    /// to the reporter and the disputes open at the slash together; the rest is burned, so that
    /// slashing oneself through other addresses always loses the rest of the bond.
    uint256 public immutable reporterShareBps;
    /// @notice Seconds after anchoring during which a batch can be disputed; then it is final.
    uint64 public immutable challengeWindow;
    /// @notice Seconds the verifiers have to deliver a verdict on a dispute.
    uint64 public immutable verdictWindow;
    /// @notice Seconds between an exit request and the bond's release.
    uint64 public immutable unbondingDelay;
    /// @notice Matching verdicts needed to resolve a dispute (M of the N verifiers).
    uint256 public immutable threshold;
    /// @notice The trustless dispute game (`SwornGame`, docs/dispute.md §6) that may slash
    /// through `gameOpened` and `gameClosed`, or `address(0)` for none; fixed at deployment.
    address public immutable game;
    bytes32 private immutable domainSeparator;
    uint256 private immutable domainChainId;

    /// @notice The verifier committee, fixed at deployment.
    address[] public verifiers;
    /// @notice Whether an address is in the verifier committee.
    mapping(address => bool) public isVerifier;

    // ---------------------------------------------------------------------------------------
    // State
    // ---------------------------------------------------------------------------------------

    mapping(address => Operator) private _operators;
    /// operator => batch number => `batchWord(root, size, anchoredAt)`: one word per batch keeps
    /// anchoring cheap whatever the batch size.
    mapping(address => mapping(uint64 => bytes32)) private _batches;
    mapping(uint256 => Dispute) private _disputes;
    /// The earliest-opened game won against each slashed operator (its id + 1, and its
    /// challenger): the reward pool goes to it once no dispute is open (`_settleAfterSlash`).
    mapping(address => GameWin) private _gameWin;

    struct GameWin {
        address challenger;
        uint64 idPlusOne;
    }

    /// @notice Disputes opened so far (the next dispute's id).
    uint256 public disputeCount;
    /// @notice Wei each account can `withdraw`.
    mapping(address => uint256) public credits;
    /// @notice The operator that registered each Ed25519 key: one key, one operator, for good.
    mapping(bytes32 => address) public keyOwner;
    /// @notice Block at which each equivocation report was committed (`commitEquivocation`).
    mapping(bytes32 => uint256) public reportCommittedAt;
    /// @notice The block in which each dispute commitment (`disputeCommitment`) was posted.
    mapping(bytes32 => uint256) public disputeCommittedAt;
    /// @notice Wei taken out of circulation for good (slashed bonds beyond the rewards, fees of
    /// disputes nobody ruled on). It stays in this contract; no function can move it.
    uint256 public burned;
    /// `claimKey(operator, digest)` => open dispute id + 1, `SETTLED`, or 0 (never disputed or
    /// the last dispute expired or was lost by the operator).
    mapping(bytes32 => uint256) private _claimDispute;
    bool private transient locked;

    modifier nonReentrant() {
        if (locked) revert Reentrancy();
        locked = true;
        _;
        locked = false;
    }

    /// @notice Deploys a registry with its economic parameters and verifier committee.
    /// @param minBond_ smallest operator bond, in wei (non-zero)
    /// @param disputeBond_ the bond a wrong-result challenger posts, in wei (non-zero)
    /// @param disputeFee_ the part of it that pays the verifiers (or is burned), non-zero and at
    ///        most `disputeBond_`
    /// @param reporterShareBps_ a reporter's share of a slashed bond, 1 to 5000 basis points
    /// @param challengeWindow_ seconds a batch stays open to disputes
    /// @param verdictWindow_ seconds verifiers have to rule on a dispute
    /// @param unbondingDelay_ seconds from an exit request to the bond's release; at least
    ///        `challengeWindow_ + verdictWindow_`, so that an exit cannot outrun a dispute
    /// @param verifiers_ the committee's addresses (distinct, non-zero)
    /// @param game_ the dispute game, deployed first with this registry's address (its
    ///        `registry()` must be this contract), or `address(0)` for none
    /// @param threshold_ verdicts needed, 1 <= threshold_ <= verifiers_.length, and more than half
    constructor(
        uint256 minBond_,
        uint256 disputeBond_,
        uint256 disputeFee_,
        uint256 reporterShareBps_,
        uint64 challengeWindow_,
        uint64 verdictWindow_,
        uint64 unbondingDelay_,
        address[] memory verifiers_,
        uint256 threshold_,
        address game_
    ) {
        if (
            minBond_ == 0 || disputeBond_ == 0 || disputeBond_ > type(uint96).max || disputeFee_ == 0
                || disputeFee_ > disputeBond_ || reporterShareBps_ == 0 || reporterShareBps_ > 5000
                || challengeWindow_ == 0 || verdictWindow_ == 0
                || uint256(unbondingDelay_) < uint256(challengeWindow_) + verdictWindow_ || threshold_ == 0
                || threshold_ > verifiers_.length || 2 * threshold_ <= verifiers_.length
        ) revert BadConfig();
        for (uint256 i = 0; i < verifiers_.length; i++) {
            address v = verifiers_[i];
            if (v == address(0) || isVerifier[v]) revert BadConfig();
            isVerifier[v] = true;
            verifiers.push(v);
        }
        minBond = minBond_;
        disputeBond = disputeBond_;
        disputeFee = disputeFee_;
        reporterShareBps = reporterShareBps_;
        challengeWindow = challengeWindow_;
        verdictWindow = verdictWindow_;
        unbondingDelay = unbondingDelay_;
        threshold = threshold_;
        if (game_ != address(0)) {
            (bool ok, bytes memory ret) = game_.staticcall(abi.encodeWithSignature("registry()"));
            if (!ok || ret.length != 32 || abi.decode(ret, (address)) != address(this)) revert BadConfig();
        }
        game = game_;
        domainChainId = block.chainid;
        domainSeparator = _domainSeparator();
    }

    // ---------------------------------------------------------------------------------------
    // Operators
    // ---------------------------------------------------------------------------------------

    /// @notice Registers the caller as an operator with `msg.value` as bond. An address that
    /// exited and withdrew its bond may register again: that starts a new registration, whose
    /// log begins at its next batch (`epochStart`).
    /// @param ed25519Key the Ed25519 public key that signs the caller's transcripts; it can
    ///        belong to one operator address only, for good
    /// @param keyProof the key's Ed25519 signature over the binding message of
    ///        `docs/anchoring.md` section 1.1 (chain id, this registry, the caller). The EVM has
    ///        no Ed25519 precompile, so it is kept in the event and checked by clients
    ///        (`sworn verify --rpc` refuses an operator whose proof does not verify).
    function register(bytes32 ed25519Key, bytes calldata keyProof) external payable {
        Operator storage op = _operators[msg.sender];
        if (op.active || op.slashed || op.bond != 0) revert AlreadyRegistered();
        if (ed25519Key == bytes32(0)) revert BadKey();
        if (keyProof.length != 64) revert BadKeyProof();
        address owner = keyOwner[ed25519Key];
        if (owner != address(0) && owner != msg.sender) revert KeyTaken(owner);
        if (msg.value < minBond) revert BondTooSmall(msg.value, minBond);
        keyOwner[ed25519Key] = msg.sender;
        op.bond = uint128(msg.value);
        op.exitAt = 0;
        op.active = true;
        op.ed25519Key = ed25519Key;
        op.registeredAt = uint64(block.timestamp);
        op.epochStart = op.batches;
        op.registeredBlock = uint64(block.number);
        emit OperatorRegistered(msg.sender, ed25519Key, msg.value, keyProof);
    }

    /// @notice Adds `msg.value` to the caller's bond.
    function addBond() external payable {
        Operator storage op = _active(msg.sender);
        if (op.exitAt != 0) revert Exiting();
        op.bond += uint128(msg.value);
        emit BondAdded(msg.sender, msg.value, op.bond);
    }

    /// @notice Starts the caller's exit: no more anchoring; the bond is released after
    /// `unbondingDelay`, and only once no dispute against the caller is open.
    function requestExit() external {
        Operator storage op = _active(msg.sender);
        if (op.exitAt != 0) revert Exiting();
        uint64 exitAt = uint64(block.timestamp) + unbondingDelay;
        op.exitAt = exitAt;
        emit ExitRequested(msg.sender, exitAt);
    }

    /// @notice Completes the caller's exit: credits the bond for `withdraw`.
    function withdrawBond() external {
        Operator storage op = _active(msg.sender);
        if (op.exitAt == 0) revert NotExiting();
        if (block.timestamp < op.exitAt) revert TooEarly(block.timestamp, op.exitAt);
        if (op.openDisputes != 0) revert DisputesOpen(op.openDisputes);
        uint256 amount = op.bond;
        op.bond = 0;
        op.active = false;
        emit OperatorExited(msg.sender, amount);
        _credit(msg.sender, amount);
    }

    /// @notice The operator record of `operator`.
    function operatorInfo(address operator) external view returns (Operator memory) {
        return _operators[operator];
    }

    // ---------------------------------------------------------------------------------------
    // Anchoring
    // ---------------------------------------------------------------------------------------

    /// @notice Appends a batch of `size` transcript digests with Merkle root `root` to the caller's
    /// log. Cost does not depend on `size`.
    /// @return batch the batch's number in the caller's log
    function anchor(bytes32 root, uint64 size) external returns (uint64 batch) {
        Operator storage op = _active(msg.sender);
        if (op.exitAt != 0) revert Exiting();
        if (size == 0) revert EmptyBatch();
        batch = op.batches;
        uint64 start = op.logSize;
        uint64 now_ = uint64(block.timestamp);
        _batches[msg.sender][batch] = batchWord(root, size, now_);
        op.batches = batch + 1;
        op.logSize = start + size;
        op.lastAnchorAt = now_;
        emit Anchored(msg.sender, batch, root, start, size, now_);
    }

    /// @notice The stored word of batch `batch` of `operator`'s log (zero if there is none).
    function batchCommitment(address operator, uint64 batch) external view returns (bytes32) {
        return _batches[operator][batch];
    }

    /// @notice The word stored for a batch: `keccak256(root || uint64 size || uint64 anchoredAt)`.
    function batchWord(bytes32 root, uint64 size, uint64 anchoredAt) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(root, size, anchoredAt));
    }

    /// @notice The transcript digest of four commitments (`docs/transcript.md` section 4).
    function transcriptDigest(bytes32 model, bytes32 request, bytes32 output, bytes32 meta)
        public
        pure
        returns (bytes32)
    {
        return sha256(abi.encodePacked(DIGEST_TAG, model, request, output, meta));
    }

    /// @notice Whether `claim` is anchored in `operator`'s log.
    function isAnchored(address operator, Claim calldata claim) external view returns (bool) {
        bytes32 stored = _batches[operator][claim.batch];
        return stored != bytes32(0) && _proves(claim, stored);
    }

    // ---------------------------------------------------------------------------------------
    // Equivocation: trustless, reported by commit and reveal
    // ---------------------------------------------------------------------------------------

    /// @notice The commitment a reporter posts before revealing an equivocation report:
    /// `keccak256(abi.encode(reporter, operator, digest(a), digest(b), salt))`. It names the
    /// reporter, so copying it is useless, and hides the report until the reveal.
    function equivocationCommitment(address reporter, address operator, bytes32 digestA, bytes32 digestB, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(reporter, operator, digestA, digestB, salt));
    }

    /// @notice Step 1 of an equivocation report: records `commitment` (see
    /// `equivocationCommitment`) at this block. The reveal must come in a later block.
    function commitEquivocation(bytes32 commitment) external {
        if (reportCommittedAt[commitment] != 0) revert AlreadyCommitted();
        reportCommittedAt[commitment] = block.number;
        emit EquivocationCommitted(commitment, msg.sender);
    }

    /// @notice Step 2: slashes `operator` for two anchored transcripts of its current
    /// registration with the same model and request commitments (so the same deterministic
    /// input) and different outputs. The caller must have committed to exactly this report
    /// (with `salt`) in an earlier block, so a copy of this call pays its copier nothing. The
    /// caller gets a reward of `reporterShareBps` of the bond (divided with the disputes then open,
    /// and paid only if none of them is won: they came first; see `_slash`); the rest is burned.
    /// The later of the two batches must still be in its challenge window.
    function challengeEquivocation(address operator, Claim calldata a, Claim calldata b, bytes32 salt)
        external
        nonReentrant
    {
        Operator storage op = _operators[operator];
        if (op.slashed) revert Slashed(operator);
        if (op.bond == 0) revert NotActive(operator);
        if (a.model != b.model || a.request != b.request || a.output == b.output) revert NotEquivocation();
        bytes32 c = equivocationCommitment(
            msg.sender,
            operator,
            transcriptDigest(a.model, a.request, a.output, a.meta),
            transcriptDigest(b.model, b.request, b.output, b.meta),
            salt
        );
        uint256 committedAt = reportCommittedAt[c];
        if (committedAt == 0 || committedAt >= block.number) revert NotCommitted();
        uint64 aAt = _provenAnchorTime(operator, op, a);
        uint64 bAt = _provenAnchorTime(operator, op, b);
        uint64 later = aAt > bAt ? aAt : bAt;
        if (block.timestamp >= uint256(later) + challengeWindow) {
            revert BatchFinal(a.batch > b.batch ? a.batch : b.batch, uint256(later) + challengeWindow);
        }
        _slash(operator, op, msg.sender, REASON_EQUIVOCATION);
    }

    // ---------------------------------------------------------------------------------------
    // Wrong results: M-of-N verifier committee
    // ---------------------------------------------------------------------------------------

    /// @notice The key of a disputed claim: one open dispute per (operator, transcript digest).
    function claimKey(address operator, bytes32 digest) public pure returns (bytes32) {
        return keccak256(abi.encode(operator, digest));
    }

    /// @notice The commitment a challenger posts before opening a dispute:
    /// `keccak256(abi.encode(challenger, operator, digest, claimedOutput, salt))`. It names the
    /// challenger, so copying it is useless, and hides which transcript is disputed until the
    /// dispute is opened, so nobody (the operator included) can open it first from another
    /// address on seeing the honest challenger's transaction.
    function disputeCommitment(
        address challenger,
        address operator,
        bytes32 digest,
        bytes32 claimedOutput,
        bytes32 salt
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(challenger, operator, digest, claimedOutput, salt));
    }

    /// @notice Step 1 of a dispute: records `commitment` (see `disputeCommitment`) at this
    /// block. The dispute is opened (`openDispute`) in a later block.
    function commitDispute(bytes32 commitment) external {
        if (disputeCommittedAt[commitment] != 0) revert AlreadyCommitted();
        disputeCommittedAt[commitment] = block.number;
        emit DisputeCommitted(commitment, msg.sender);
    }

    /// @notice Step 2: disputes an anchored transcript's output, posting exactly `disputeBond`.
    /// The caller must have committed to exactly this dispute (with `salt`) in an earlier block,
    /// so a copy of this call from another address reverts. The batch must belong to the current
    /// registration and not be final; the transcript must have no open dispute and must not have
    /// been ruled honest before. Verifiers replay the transcript and sign what output commitment
    /// the replay gives; see `resolveDispute`.
    /// @param claimedOutput the output commitment the challenger says is right
    /// @param salt the secret that hid the commitment
    /// @return id the dispute's id
    function openDispute(address operator, Claim calldata claim, bytes32 claimedOutput, bytes32 salt)
        external
        payable
        returns (uint256 id)
    {
        if (msg.value != disputeBond) revert WrongBond(msg.value, disputeBond);
        Operator storage op = _active(operator);
        if (claimedOutput == claim.output) revert SameOutput();
        uint64 anchoredAt = _provenAnchorTime(operator, op, claim);
        if (block.timestamp >= uint256(anchoredAt) + challengeWindow) {
            revert BatchFinal(claim.batch, uint256(anchoredAt) + challengeWindow);
        }
        bytes32 d = transcriptDigest(claim.model, claim.request, claim.output, claim.meta);
        bytes32 key = claimKey(operator, d);
        uint256 prior = _claimDispute[key];
        if (prior == SETTLED) revert ClaimSettled();
        if (prior != 0) revert AlreadyDisputed(prior - 1);
        uint256 committedAt = disputeCommittedAt[disputeCommitment(msg.sender, operator, d, claimedOutput, salt)];
        if (committedAt == 0 || committedAt >= block.number) revert NotCommitted();
        id = disputeCount++;
        _claimDispute[key] = id + 1;
        uint64 deadline = uint64(block.timestamp) + verdictWindow;
        _disputes[id] = Dispute({
            challenger: msg.sender,
            bond: uint96(msg.value),
            operator: operator,
            deadline: deadline,
            state: DisputeState.Open,
            digest: d,
            output: claim.output
        });
        op.openDisputes += 1;
        emit DisputeOpened(id, operator, msg.sender, d, claim.output, claimedOutput, deadline);
    }

    /// @notice Resolves dispute `id` with `threshold` or more verifier signatures (65-byte
    /// `r || s || v`, signers in strictly ascending address order) over the EIP-712 verdict
    /// `Verdict(id, digest, replayedOutput)`, before the dispute's deadline. `disputeFee` of the
    /// challenger's bond is split among the signers either way. If the replay gives the anchored
    /// output, the operator gets the rest of the challenger's bond and the transcript cannot be
    /// disputed again; otherwise the challenger gets the rest back plus its reward unit of the
    /// operator's slashed bond (`_slash`), and the operator is slashed if it was not already.
    function resolveDispute(uint256 id, bytes32 replayedOutput, bytes[] calldata signatures) external nonReentrant {
        Dispute storage d = _disputes[id];
        if (d.state != DisputeState.Open) revert NotOpen(id);
        if (block.timestamp > d.deadline) revert PastDeadline(d.deadline);
        if (signatures.length < threshold) revert NotEnoughSignatures(signatures.length, threshold);
        bytes32 h = verdictHash(id, d.digest, replayedOutput);
        address last = address(0);
        uint256 feeEach = disputeFee / signatures.length;
        for (uint256 i = 0; i < signatures.length; i++) {
            address s = _recover(h, signatures[i]);
            if (!isVerifier[s]) revert NotVerifier(s);
            if (s <= last) revert SignersNotAscending();
            last = s;
            _credit(s, feeEach);
        }
        _burn(disputeFee - feeEach * signatures.length);
        address operator = d.operator;
        Operator storage op = _operators[operator];
        op.openDisputes -= 1;
        uint256 rest = d.bond - disputeFee;
        bytes32 key = claimKey(operator, d.digest);
        if (replayedOutput == d.output) {
            d.state = DisputeState.OperatorWon;
            _claimDispute[key] = SETTLED;
            emit DisputeResolved(id, DisputeState.OperatorWon, replayedOutput);
            _credit(operator, rest);
        } else {
            d.state = DisputeState.ChallengerWon;
            delete _claimDispute[key];
            emit DisputeResolved(id, DisputeState.ChallengerWon, replayedOutput);
            address challenger = d.challenger;
            _credit(challenger, rest);
            if (!op.slashed) {
                _slash(operator, op, challenger, REASON_WRONG_RESULT);
            } else {
                // Slashed since this dispute was opened: it is paid from what the slash kept.
                op.slashDisputeWon = true;
                _payFromPool(op, challenger);
            }
        }
        _settleAfterSlash(operator, op);
    }

    /// @notice Closes dispute `id` after its deadline passed without a verdict: nobody is
    /// slashed, and the challenger gets its bond back less `disputeFee`, which is burned (so
    /// disputes nobody can win are not free to open).
    function expireDispute(uint256 id) external {
        Dispute storage d = _disputes[id];
        if (d.state != DisputeState.Open) revert NotOpen(id);
        if (block.timestamp <= d.deadline) revert NotPastDeadline(d.deadline);
        d.state = DisputeState.Expired;
        Operator storage op = _operators[d.operator];
        op.openDisputes -= 1;
        delete _claimDispute[claimKey(d.operator, d.digest)];
        emit DisputeExpired(id);
        _burn(disputeFee);
        _credit(d.challenger, d.bond - disputeFee);
        _settleAfterSlash(d.operator, op);
    }

    // ---------------------------------------------------------------------------------------
    // Wrong results: the dispute game
    // ---------------------------------------------------------------------------------------

    /// @notice Called by the game when it opens game `id` on `claim`: the claim must be anchored
    /// in `operator`'s current registration, the operator active and the batch not final. The
    /// game counts as an open dispute until `gameClosed` (so the bond cannot be withdrawn).
    function gameOpened(address operator, uint256 id, Claim calldata claim) external {
        if (msg.sender != game || game == address(0)) revert NotGame();
        Operator storage op = _active(operator);
        uint64 anchoredAt = _provenAnchorTime(operator, op, claim);
        if (block.timestamp >= uint256(anchoredAt) + challengeWindow) {
            revert BatchFinal(claim.batch, uint256(anchoredAt) + challengeWindow);
        }
        op.openDisputes += 1;
        id; // the game's own record names it
    }

    /// @notice Called by the game when game `id` ends, with the challenger's bond as
    /// `msg.value`, credited to `payee` (the winner). A challenger win slashes the operator if it
    /// was not already (`_slash`); the reward share goes, once no dispute of the operator is
    /// open, to the earliest-opened game won against it: a game the operator opens against
    /// itself from another address after an honest challenger's cannot take that challenger's
    /// reward, however fast the operator lets it win.
    function gameClosed(address operator, uint256 id, address challenger, bool challengerWon, address payee)
        external
        payable
        nonReentrant
    {
        if (msg.sender != game || game == address(0)) revert NotGame();
        Operator storage op = _operators[operator];
        op.openDisputes -= 1;
        _credit(payee, msg.value);
        if (challengerWon) {
            GameWin storage w = _gameWin[operator];
            if (w.idPlusOne == 0 || id + 1 < w.idPlusOne) {
                (w.challenger, w.idPlusOne) = (challenger, uint64(id + 1));
            }
            op.slashDisputeWon = true;
            if (!op.slashed) _slash(operator, op, challenger, REASON_GAME);
        }
        _settleAfterSlash(operator, op);
    }

    /// @notice Dispute `id`.
    function disputeInfo(uint256 id) external view returns (Dispute memory) {
        return _disputes[id];
    }

    /// @notice The open dispute of a transcript (`id + 1`), `type(uint256).max` if the committee
    /// ruled it honest, or 0.
    function claimDispute(address operator, bytes32 digest) external view returns (uint256) {
        return _claimDispute[claimKey(operator, digest)];
    }

    /// @notice The EIP-712 digest a verifier signs for dispute `id`.
    function verdictHash(uint256 id, bytes32 digest, bytes32 replayedOutput) public view returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(VERDICT_TYPEHASH, id, digest, replayedOutput));
        return keccak256(abi.encodePacked("\x19\x01", domainSeparatorV4(), structHash));
    }

    /// @notice The EIP-712 domain separator (name "SwornRegistry", version "1", this chain, this
    /// contract); recomputed if the chain id changed since deployment (a fork).
    function domainSeparatorV4() public view returns (bytes32) {
        return block.chainid == domainChainId ? domainSeparator : _domainSeparator();
    }

    /// @notice The number of verifiers in the committee.
    function verifierCount() external view returns (uint256) {
        return verifiers.length;
    }

    // ---------------------------------------------------------------------------------------
    // Payments
    // ---------------------------------------------------------------------------------------

    /// @notice Sends the caller everything credited to it.
    function withdraw() external nonReentrant {
        uint256 amount = credits[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        credits[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    // ---------------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------------

    function _active(address operator) private view returns (Operator storage op) {
        op = _operators[operator];
        if (!op.active) revert NotActive(operator);
    }

    /// Checks that `c` is included in its batch of `operator`'s log, a batch of the current
    /// registration; returns the batch's time.
    function _provenAnchorTime(address operator, Operator storage op, Claim calldata c) private view returns (uint64) {
        if (c.batch < op.epochStart) revert OtherRegistration(c.batch, op.epochStart);
        bytes32 stored = _batches[operator][c.batch];
        if (stored == bytes32(0)) revert UnknownBatch(c.batch);
        if (!_proves(c, stored)) revert NotIncluded();
        return c.anchoredAt;
    }

    /// Whether `c`'s digest, proof, batch size and time give the batch word `stored`.
    function _proves(Claim calldata c, bytes32 stored) private pure returns (bool) {
        bytes32 d = transcriptDigest(c.model, c.request, c.output, c.meta);
        (bool ok, bytes32 root) = SwornMerkle.rootFromInclusion(d, c.index, c.batchSize, c.proof);
        return ok && batchWord(root, c.batchSize, c.anchoredAt) == stored;
    }

    /// Slashes `operator`: of its whole bond, one reporter's share (`reporterShareBps`) is kept
    /// as the reward pool and the rest is burned at once. The pool is paid whole to one claimant
    /// that proved the fraud, never split by the number of disputes open: a won dispute is paid
    /// at once (the first one won takes the pool; a later win gets its bond back, less the fee);
    /// an equivocation reporter is paid only once every dispute open now has closed without a
    /// challenger win (`_settleAfterSlash`), so an operator about to lose a dispute gains
    /// nothing by reporting itself. Disputes the operator opens against its own honest
    /// transcripts (which it loses) therefore dilute nobody's reward. Whatever the pool still
    /// holds when no dispute is open any more is burned. Whoever calls, the operator and all its
    /// addresses together get back at most one share.
    function _slash(address operator, Operator storage op, address reporter, bytes32 reason) private {
        uint256 amount = op.bond;
        uint256 share = amount * reporterShareBps / 10_000;
        op.bond = 0;
        op.active = false;
        op.slashed = true;
        op.slashShare = uint128(share);
        op.slashPool = uint128(share);
        emit OperatorSlashed(operator, reporter, amount, reason);
        _burn(amount - share);
        if (reason == REASON_GAME) {
            // Paid by `_settleAfterSlash` to the earliest-opened game won.
        } else if (reason == REASON_WRONG_RESULT || op.openDisputes == 0) {
            _payFromPool(op, reporter);
        } else {
            op.pendingReporter = reporter;
        }
    }

    /// Pays one share (or what is left of the pool, if less) to `to`.
    function _payFromPool(Operator storage op, address to) private {
        uint128 pay = op.slashShare < op.slashPool ? op.slashShare : op.slashPool;
        op.slashPool -= pay;
        _credit(to, pay);
    }

    /// Once a slashed operator has no open dispute left: pays a deferred reporter unless one of
    /// those disputes was won, and burns the rest of the pool.
    function _settleAfterSlash(address operator, Operator storage op) private {
        if (!op.slashed || op.openDisputes != 0) return;
        GameWin memory w = _gameWin[operator];
        if (w.idPlusOne != 0) {
            delete _gameWin[operator];
            _payFromPool(op, w.challenger);
        }
        address reporter = op.pendingReporter;
        if (reporter != address(0)) {
            op.pendingReporter = address(0);
            if (!op.slashDisputeWon) _payFromPool(op, reporter);
        }
        uint256 rest = op.slashPool;
        op.slashPool = 0;
        _burn(rest);
    }

    function _burn(uint256 amount) private {
        if (amount == 0) return;
        burned += amount;
        emit Burned(amount);
    }

    function _credit(address account, uint256 amount) private {
        if (amount == 0) return;
        credits[account] += amount;
        emit Credited(account, amount);
    }

    function _recover(bytes32 h, bytes calldata sig) private pure returns (address) {
        if (sig.length != 65) revert BadSignature();
        bytes32 r = bytes32(sig[0:32]);
        bytes32 s = bytes32(sig[32:64]);
        uint8 v = uint8(sig[64]);
        if (uint256(s) > HALF_N || (v != 27 && v != 28)) revert BadSignature();
        address a = ecrecover(h, v, r, s);
        if (a == address(0)) revert BadSignature();
        return a;
    }

    function _domainSeparator() private view returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("SwornRegistry"), keccak256("1"), block.chainid, address(this))
        );
    }
}
