//! Rust bindings of the contracts, generated at build time by `alloy`'s `sol!` from the
//! committed artifacts (ABI and bytecode; CI rebuilds the contracts and refuses a stale
//! artifact), so the bindings cannot drift from the contracts that are deployed. Each contract
//! has its own module: the game's ABI names the registry's `Claim` struct, which `sol!` declares
//! again beside it.

alloy::sol!(
    #[sol(rpc, all_derives)]
    #[allow(missing_docs, clippy::too_many_arguments)]
    SwornRegistry,
    "contracts/artifacts/SwornRegistry.json"
);

/// The trustless dispute game (`docs/dispute.md` §6).
pub mod game {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        #[allow(missing_docs, clippy::too_many_arguments)]
        SwornGame,
        "contracts/artifacts/SwornGame.json"
    );
}

/// The one-step executor (`docs/dispute.md` §5).
pub mod executor {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        #[allow(missing_docs, clippy::too_many_arguments)]
        SwornExecutor,
        "contracts/artifacts/SwornExecutor.json"
    );
}

/// The executor's attention steps (deployed apart: one contract would pass the code-size limit).
pub mod attention_steps {
    alloy::sol!(
        #[sol(rpc)]
        #[allow(missing_docs)]
        SwornAttentionSteps,
        "contracts/artifacts/SwornAttentionSteps.json"
    );
}

/// The executor's weight steps (products, norms, the head).
pub mod weight_steps {
    alloy::sol!(
        #[sol(rpc)]
        #[allow(missing_docs)]
        SwornWeightSteps,
        "contracts/artifacts/SwornWeightSteps.json"
    );
}

/// The executor's table steps (the RoPE tables, in binary64).
pub mod table_steps {
    alloy::sol!(
        #[sol(rpc)]
        #[allow(missing_docs)]
        SwornTableSteps,
        "contracts/artifacts/SwornTableSteps.json"
    );
}

/// The executor's sampled steps (temperature, the merge sort, top-p, min-p, the draw).
pub mod sample_steps {
    alloy::sol!(
        #[sol(rpc)]
        #[allow(missing_docs)]
        SwornSampleSteps,
        "contracts/artifacts/SwornSampleSteps.json"
    );
}
