// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title SwornTranscript
/// @notice Reads what a dispute needs out of a transcript's commitments (docs/transcript.md §1,
/// §4; docs/dispute.md §6.1): the request's body (the bytes its commitment hashes after the
/// tag), parsed field by field (big-endian, u32 lengths and counts) for the prompt tokens, the
/// sampling parameters and whether a grammar constrains the output. Every read is bounded by
/// the body's length; a malformed body reverts.
library SwornTranscript {
    /// What the game needs of a request.
    struct Request {
        bytes specVersion;
        uint32[] promptTokens;
        uint32 temperature;
        uint32 topK;
        uint32 topP;
        uint32 minP;
        uint32 repeatPenalty;
        uint32 repeatLastN;
        uint64 seed;
        bool grammar;
    }

    struct Cursor {
        bytes b;
        uint256 pos;
    }

    function need(Cursor memory c, uint256 n) private pure {
        require(c.pos + n <= c.b.length, "transcript: request body too short");
    }

    function u8(Cursor memory c) private pure returns (uint256 v) {
        need(c, 1);
        v = uint8(c.b[c.pos]);
        c.pos += 1;
    }

    function u32(Cursor memory c) private pure returns (uint32 v) {
        need(c, 4);
        bytes memory b = c.b;
        uint256 pos = c.pos;
        assembly {
            v := shr(224, mload(add(add(b, 32), pos)))
        }
        c.pos += 4;
    }

    /// Skips a `str` (u32 length, bytes).
    function skipStr(Cursor memory c) private pure {
        uint256 n = u32(c);
        need(c, n);
        c.pos += n;
    }

    /// Skips an optional string: u8 0, or u8 1 and the string.
    function skipOpt(Cursor memory c) private pure returns (bool present) {
        uint256 k = u8(c);
        require(k <= 1, "transcript: optional field kind");
        if (k == 1) skipStr(c);
        return k == 1;
    }

    /// @notice Parses a format-3/4 request body (`sworn.request.v3`).
    function request(bytes memory body) internal pure returns (Request memory r) {
        Cursor memory c = Cursor(body, 0);
        uint256 n = u32(c);
        need(c, n);
        r.specVersion = new bytes(n);
        for (uint256 i = 0; i < n; i++) {
            r.specVersion[i] = body[c.pos + i];
        }
        c.pos += n;
        skipPrompt(c);
        n = u32(c);
        require(n <= (body.length - c.pos) / 4, "transcript: prompt tokens");
        r.promptTokens = new uint32[](n);
        for (uint256 i = 0; i < n; i++) {
            r.promptTokens[i] = u32(c);
        }
        r.temperature = u32(c);
        r.topK = u32(c);
        r.topP = u32(c);
        r.minP = u32(c);
        r.repeatPenalty = u32(c);
        r.repeatLastN = u32(c);
        uint64 high = u32(c); // (two statements: an expression's evaluation order is unspecified)
        r.seed = (high << 32) | u32(c);
        u32(c); // max_tokens
        n = u32(c); // stop strings
        for (uint256 i = 0; i < n; i++) {
            skipStr(c);
        }
        uint256 lp = u8(c); // logprobs: 0, or 1 and n
        require(lp <= 1, "transcript: logprobs kind");
        if (lp == 1) u8(c);
        r.grammar = skipOpt(c);
        skipOpt(c); // tools
        require(c.pos == body.length, "transcript: trailing bytes in the request");
    }

    /// Skips the prompt: kind 0 (text) or 2 (raw text), a string; kind 1, chat messages (role,
    /// content, tool calls of three strings each, an optional tool-call id).
    function skipPrompt(Cursor memory c) private pure {
        uint256 kind = u8(c);
        if (kind == 0 || kind == 2) return skipStr(c);
        require(kind == 1, "transcript: prompt kind");
        uint256 n = u32(c);
        for (uint256 i = 0; i < n; i++) {
            skipStr(c);
            skipStr(c);
            uint256 calls = u32(c);
            for (uint256 j = 0; j < calls; j++) {
                skipStr(c);
                skipStr(c);
                skipStr(c);
            }
            skipOpt(c);
        }
    }
}
