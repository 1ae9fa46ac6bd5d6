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

    // ---------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------

    event OperatorRegistered(address indexed operator, bytes32 ed25519Key, uint256 bond);
    event BondAdded(address indexed operator, uint256 amount, uint256 bond);
    event ExitRequested(address indexed operator, uint256 exitAt);
    event OperatorExited(address indexed operator, uint256 bond);
    event Anchored(
        address indexed operator, uint64 indexed batch, bytes32 root, uint64 start, uint64 size, uint64 anchoredAt
    );
    event OperatorSlashed(address indexed operator, address indexed beneficiary, uint256 amount, bytes32 reason);
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
    bytes20 public constant DIGEST_TAG = "sworn.transcript.v1\x00";
    /// @notice EIP-712 type of a verifier's verdict: the output commitment that the verifier's
    /// replay of the dispute's transcript gives.
    bytes32 public constant VERDICT_TYPEHASH =
        keccak256("Verdict(uint256 dispute,bytes32 digest,bytes32 replayedOutput)");
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    /// @dev secp256k1n / 2: signatures with a larger `s` are malleable copies and are refused.
    uint256 private constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;
    /// Reason tags of `OperatorSlashed`.
    bytes32 public constant REASON_EQUIVOCATION = "equivocation";
    bytes32 public constant REASON_WRONG_RESULT = "wrong-result";

    /// @notice Smallest bond an operator registers with.
    uint256 public immutable minBond;
    /// @notice Exact bond a challenger posts with a wrong-result dispute.
    uint256 public immutable disputeBond;
    /// @notice Seconds after anchoring during which a batch can be disputed; then it is final.
    uint64 public immutable challengeWindow;
    /// @notice Seconds the verifiers have to deliver a verdict on a dispute.
    uint64 public immutable verdictWindow;
    /// @notice Seconds between an exit request and the bond's release.
    uint64 public immutable unbondingDelay;
    /// @notice Matching verdicts needed to resolve a dispute (M of the N verifiers).
    uint256 public immutable threshold;
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
    /// @notice Disputes opened so far (the next dispute's id).
    uint256 public disputeCount;
    /// @notice Wei each account can `withdraw`.
    mapping(address => uint256) public credits;
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
    /// @param challengeWindow_ seconds a batch stays open to disputes
    /// @param verdictWindow_ seconds verifiers have to rule on a dispute
    /// @param unbondingDelay_ seconds from an exit request to the bond's release; at least
    ///        `challengeWindow_ + verdictWindow_`, so that an exit cannot outrun a dispute
    /// @param verifiers_ the committee's addresses (distinct, non-zero)
    /// @param threshold_ verdicts needed, 1 <= threshold_ <= verifiers_.length, and more than half
    constructor(
        uint256 minBond_,
        uint256 disputeBond_,
        uint64 challengeWindow_,
        uint64 verdictWindow_,
        uint64 unbondingDelay_,
        address[] memory verifiers_,
        uint256 threshold_
    ) {
        if (
            minBond_ == 0 || disputeBond_ == 0 || disputeBond_ > type(uint96).max || challengeWindow_ == 0
                || verdictWindow_ == 0 || uint256(unbondingDelay_) < uint256(challengeWindow_) + verdictWindow_
                || threshold_ == 0 || threshold_ > verifiers_.length || 2 * threshold_ <= verifiers_.length
        ) revert BadConfig();
        for (uint256 i = 0; i < verifiers_.length; i++) {
            address v = verifiers_[i];
            if (v == address(0) || isVerifier[v]) revert BadConfig();
            isVerifier[v] = true;
            verifiers.push(v);
        }
        minBond = minBond_;
        disputeBond = disputeBond_;
        challengeWindow = challengeWindow_;
        verdictWindow = verdictWindow_;
        unbondingDelay = unbondingDelay_;
        threshold = threshold_;
        domainChainId = block.chainid;
        domainSeparator = _domainSeparator();
    }

    // ---------------------------------------------------------------------------------------
    // Operators
    // ---------------------------------------------------------------------------------------

    /// @notice Registers the caller as an operator with `msg.value` as bond.
    /// @param ed25519Key the Ed25519 public key that signs the caller's transcripts
    function register(bytes32 ed25519Key) external payable {
        Operator storage op = _operators[msg.sender];
        if (op.active || op.slashed || op.bond != 0) revert AlreadyRegistered();
        if (ed25519Key == bytes32(0)) revert BadKey();
        if (msg.value < minBond) revert BondTooSmall(msg.value, minBond);
        op.bond = uint128(msg.value);
        op.exitAt = 0;
        op.active = true;
        op.ed25519Key = ed25519Key;
        op.registeredAt = uint64(block.timestamp);
        emit OperatorRegistered(msg.sender, ed25519Key, msg.value);
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
    // Equivocation: trustless
    // ---------------------------------------------------------------------------------------

    /// @notice Slashes `operator` for two anchored transcripts with the same model and request
    /// commitments (so the same deterministic input) and different outputs. The whole bond is
    /// credited to the caller. The later of the two batches must still be in its challenge window.
    function challengeEquivocation(address operator, Claim calldata a, Claim calldata b) external nonReentrant {
        Operator storage op = _operators[operator];
        if (op.slashed) revert Slashed(operator);
        if (op.bond == 0) revert NotActive(operator);
        if (a.model != b.model || a.request != b.request || a.output == b.output) revert NotEquivocation();
        uint64 aAt = _provenAnchorTime(operator, a);
        uint64 bAt = _provenAnchorTime(operator, b);
        uint64 later = aAt > bAt ? aAt : bAt;
        if (block.timestamp >= uint256(later) + challengeWindow) {
            revert BatchFinal(a.batch > b.batch ? a.batch : b.batch, uint256(later) + challengeWindow);
        }
        _slash(operator, msg.sender, 0, REASON_EQUIVOCATION);
    }

    // ---------------------------------------------------------------------------------------
    // Wrong results: M-of-N verifier committee
    // ---------------------------------------------------------------------------------------

    /// @notice Disputes an anchored transcript's output, posting exactly `disputeBond`. The batch
    /// must not be final. Verifiers replay the transcript and sign what output commitment the
    /// replay gives; see `resolveDispute`.
    /// @param claimedOutput the output commitment the challenger says is right
    /// @return id the dispute's id
    function openDispute(address operator, Claim calldata claim, bytes32 claimedOutput)
        external
        payable
        returns (uint256 id)
    {
        if (msg.value != disputeBond) revert WrongBond(msg.value, disputeBond);
        Operator storage op = _active(operator);
        if (claimedOutput == claim.output) revert SameOutput();
        uint64 anchoredAt = _provenAnchorTime(operator, claim);
        if (block.timestamp >= uint256(anchoredAt) + challengeWindow) {
            revert BatchFinal(claim.batch, uint256(anchoredAt) + challengeWindow);
        }
        id = disputeCount++;
        uint64 deadline = uint64(block.timestamp) + verdictWindow;
        bytes32 d = transcriptDigest(claim.model, claim.request, claim.output, claim.meta);
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

    /// @notice Resolves dispute `id` with `threshold` verifier signatures (65-byte `r || s || v`,
    /// signers in strictly ascending address order) over the EIP-712 verdict
    /// `Verdict(id, digest, replayedOutput)`, before the dispute's deadline. If the replay gives
    /// the anchored output the operator wins the challenger's bond; otherwise the operator is
    /// slashed and the challenger gets their bond back plus the operator's bond.
    function resolveDispute(uint256 id, bytes32 replayedOutput, bytes[] calldata signatures) external nonReentrant {
        Dispute storage d = _disputes[id];
        if (d.state != DisputeState.Open) revert NotOpen(id);
        if (block.timestamp > d.deadline) revert PastDeadline(d.deadline);
        if (signatures.length < threshold) revert NotEnoughSignatures(signatures.length, threshold);
        bytes32 h = verdictHash(id, d.digest, replayedOutput);
        address last = address(0);
        for (uint256 i = 0; i < signatures.length; i++) {
            address s = _recover(h, signatures[i]);
            if (!isVerifier[s]) revert NotVerifier(s);
            if (s <= last) revert SignersNotAscending();
            last = s;
        }
        _operators[d.operator].openDisputes -= 1;
        if (replayedOutput == d.output) {
            d.state = DisputeState.OperatorWon;
            emit DisputeResolved(id, DisputeState.OperatorWon, replayedOutput);
            _credit(d.operator, d.bond);
        } else {
            d.state = DisputeState.ChallengerWon;
            emit DisputeResolved(id, DisputeState.ChallengerWon, replayedOutput);
            _slash(d.operator, d.challenger, d.bond, REASON_WRONG_RESULT);
        }
    }

    /// @notice Closes dispute `id` after its deadline passed without a verdict: the challenger's
    /// bond is returned and nobody is slashed.
    function expireDispute(uint256 id) external {
        Dispute storage d = _disputes[id];
        if (d.state != DisputeState.Open) revert NotOpen(id);
        if (block.timestamp <= d.deadline) revert NotPastDeadline(d.deadline);
        d.state = DisputeState.Expired;
        _operators[d.operator].openDisputes -= 1;
        emit DisputeExpired(id);
        _credit(d.challenger, d.bond);
    }

    /// @notice Dispute `id`.
    function disputeInfo(uint256 id) external view returns (Dispute memory) {
        return _disputes[id];
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

    /// Checks that `c` is included in its batch of `operator`'s log; returns the batch's time.
    function _provenAnchorTime(address operator, Claim calldata c) private view returns (uint64) {
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

    /// Takes `operator`'s whole bond and credits it, plus `extra`, to `beneficiary`.
    function _slash(address operator, address beneficiary, uint256 extra, bytes32 reason) private {
        Operator storage op = _operators[operator];
        uint256 amount = op.bond;
        op.bond = 0;
        op.active = false;
        op.slashed = true;
        emit OperatorSlashed(operator, beneficiary, amount, reason);
        _credit(beneficiary, amount + extra);
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
