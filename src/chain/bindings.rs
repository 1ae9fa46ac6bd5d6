//! Rust bindings of `SwornRegistry`, generated at build time by `alloy`'s `sol!` from the
//! committed artifact (ABI and bytecode; CI rebuilds the contract and refuses a stale artifact),
//! so the bindings cannot drift from the contract that is deployed.

alloy::sol!(
    #[sol(rpc, all_derives)]
    #[allow(missing_docs, clippy::too_many_arguments)]
    SwornRegistry,
    "contracts/artifacts/SwornRegistry.json"
);
