// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title ISwornExecutor
/// @notice What the dispute game (`SwornGame`) asks of the code that knows a trace's layout
/// (docs/dispute.md §5-§6): how a transcript's trace is shaped, and the one-step execution of
/// any element of it. The game itself knows nothing of models: it bisects over a Merkle tree of
/// `leaves` leaves to the first element two parties disagree on, then asks the executor for that
/// element's correct value.
interface ISwornExecutor {
    /// @notice Binds a dispute to an anchored transcript, from its model, request and output
    /// commitments and `data` (the preimages the executor needs, which it checks against them).
    /// Reverts for a transcript whose trace it cannot execute every element of.
    /// @param step the output step the challenger disputes
    /// @return context a hash of everything the final step needs beyond the trace (checked again
    ///         by `execute`)
    /// @return leaves the trace's leaf count (32 values a leaf)
    /// @return element the trace element that holds output token `step`
    /// @return token that token, as the transcript has it
    function bind(bytes32 model, bytes32 request, bytes32 output, uint256 step, bytes calldata data)
        external
        view
        returns (bytes32 context, uint256 leaves, uint256 element, uint32 token);

    /// @notice The correct value of trace element `element`, computed by one bounded step from
    /// inputs that `witness` proves: trace elements before `element` against `root` (a tree of
    /// `leaves` leaves), everything else against `context`. Reverts if the witness proves
    /// nothing of the kind.
    function execute(bytes32 context, bytes32 root, uint256 leaves, uint256 element, bytes calldata witness)
        external
        view
        returns (uint32);
}
