// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {SwornProducts} from "../src/SwornProducts.sol";
import {SwornF32} from "../src/SwornF32.sol";
import {SwornMath} from "../src/SwornMath.sol";
import {VectorTest} from "./Vectors.sol";

/// Matrix-row products against the engine, on the vectors of `sworn_engine::float_vectors`:
/// `products.bin` (Q4_0, Q4_1 and Q8_0 rows of two blocks, by the engine's scalar kernel),
/// `pieces_*.bin` (10,000 fold steps `acc + term` of each quantized type, by the engine's reference
/// reader), `folds.bin` (segments of rows of eight pieces of every type, a fifth of them whole
/// rows that the generator checked against the scalar kernel) and `float_rows.bin` (F32, F16 and
/// BF16 rows by the scalar kernel).
contract SwornProductsTest is VectorTest {
    /// The 32 bytes at `offset` of `data` as one word.
    function word256(bytes memory data, uint256 offset) internal pure returns (bytes32 w) {
        assembly {
            w := mload(add(add(data, 32), offset))
        }
    }

    /// `n` bytes of `data` from `offset`.
    function slice(bytes memory data, uint256 offset, uint256 n) internal pure returns (bytes memory out) {
        out = new bytes(n);
        for (uint256 k = 0; k < n; k++) {
            out[k] = data[offset + k];
        }
    }

    /// The activation block at `o` (`q[8 words] d s`).
    function act(bytes memory data, uint256 o) internal pure returns (SwornProducts.Act memory) {
        return SwornProducts.Act(word256(data, o), word(data, o + 32), word(data, o + 36));
    }

    /// Bytes of `n` blocks of `kind`, padded to whole words.
    function padded(uint256 kind, uint256 n) internal pure returns (uint256 raw, uint256 words) {
        (uint256 bb,) = SwornProducts.shape(kind);
        raw = n * bb;
        words = (raw + 3) / 4;
    }

    // --- products.bin: `type row (q[32 words] d qsum s)[2] result` ---

    function checkProduct(bytes memory data, uint256 o) internal pure returns (uint256) {
        uint256 kind = word(data, o);
        (uint256 rawLen, uint256 rawWords) = padded(kind, 2);
        bytes memory raw = slice(data, o + 4, rawLen);
        uint256 a = o + 4 + 4 * rawWords;
        SwornProducts.Act[] memory x = new SwornProducts.Act[](2);
        for (uint256 b = 0; b < 2; b++) {
            uint256 q;
            for (uint256 j = 0; j < 32; j++) {
                q |= uint256(uint8(uint32(word(data, a + 4 * j)))) << (8 * (31 - j));
            }
            x[b] = SwornProducts.Act(bytes32(q), word(data, a + 128), word(data, a + 136));
            a += 140;
        }
        if (SwornProducts.fold(kind, raw, 0, 2, x, 0) != word(data, a)) return 0;
        return a + 4;
    }

    function skipProduct(bytes memory data, uint256 o) internal pure returns (uint256) {
        (, uint256 rawWords) = padded(word(data, o), 2);
        return o + 4 + 4 * rawWords + 2 * 140 + 4;
    }

    function products(uint256 p) internal view {
        bytes memory data = vectors("products");
        uint256 o = 0;
        for (uint256 i = 0; i < CASES; i++) {
            if (i % 4 == p && checkProduct(data, o) == 0) revert(string.concat("products case ", vm.toString(i)));
            o = skipProduct(data, o);
        }
        assertEq(o, data.length, "products: case count");
    }

    function test_products_match_rust_0() public view {
        products(0);
    }

    function test_products_match_rust_1() public view {
        products(1);
    }

    function test_products_match_rust_2() public view {
        products(2);
    }

    function test_products_match_rust_3() public view {
        products(3);
    }

    // --- pieces_*.bin: `k acc (q[8] d s) block result`, one file per type ---

    /// Cases `p, p + parts, ...` of the type's file.
    function pieces(string memory name, uint256 kind, uint256 p, uint256 parts) internal view {
        bytes memory data = vectors(name);
        (uint256 bb,) = SwornProducts.shape(kind);
        (, uint256 blockWords) = padded(kind, 1);
        uint256 size = 8 + 40 + 4 * blockWords + 4;
        assertEq(data.length, CASES * size, string.concat(name, ": case count"));
        for (uint256 i = p; i < CASES; i += parts) {
            uint256 o = i * size;
            bytes memory raw = slice(data, o + 48, bb);
            SwornProducts.Piece memory piece = SwornProducts.piece(kind, raw, word(data, o));
            uint32 got = SwornF32.add(word(data, o + 4), SwornProducts.term(piece, act(data, o + 8)));
            if (got != word(data, o + size - 4)) revert(string.concat(name, " case ", vm.toString(i)));
        }
    }

    function test_pieces_q4_0() public view {
        pieces("pieces_q4_0", SwornProducts.Q4_0, 0, 1);
    }

    function test_pieces_q4_1() public view {
        pieces("pieces_q4_1", SwornProducts.Q4_1, 0, 1);
    }

    function test_pieces_q5_0() public view {
        pieces("pieces_q5_0", SwornProducts.Q5_0, 0, 1);
    }

    function test_pieces_q5_1() public view {
        pieces("pieces_q5_1", SwornProducts.Q5_1, 0, 1);
    }

    function test_pieces_q8_0() public view {
        pieces("pieces_q8_0", SwornProducts.Q8_0, 0, 1);
    }

    function test_pieces_q2_k_0() public view {
        pieces("pieces_q2_k", SwornProducts.Q2_K, 0, 3);
    }

    function test_pieces_q2_k_1() public view {
        pieces("pieces_q2_k", SwornProducts.Q2_K, 1, 3);
    }

    function test_pieces_q2_k_2() public view {
        pieces("pieces_q2_k", SwornProducts.Q2_K, 2, 3);
    }

    function test_pieces_q3_k_0() public view {
        pieces("pieces_q3_k", SwornProducts.Q3_K, 0, 3);
    }

    function test_pieces_q3_k_1() public view {
        pieces("pieces_q3_k", SwornProducts.Q3_K, 1, 3);
    }

    function test_pieces_q3_k_2() public view {
        pieces("pieces_q3_k", SwornProducts.Q3_K, 2, 3);
    }

    function test_pieces_q4_k_0() public view {
        pieces("pieces_q4_k", SwornProducts.Q4_K, 0, 3);
    }

    function test_pieces_q4_k_1() public view {
        pieces("pieces_q4_k", SwornProducts.Q4_K, 1, 3);
    }

    function test_pieces_q4_k_2() public view {
        pieces("pieces_q4_k", SwornProducts.Q4_K, 2, 3);
    }

    function test_pieces_q5_k_0() public view {
        pieces("pieces_q5_k", SwornProducts.Q5_K, 0, 3);
    }

    function test_pieces_q5_k_1() public view {
        pieces("pieces_q5_k", SwornProducts.Q5_K, 1, 3);
    }

    function test_pieces_q5_k_2() public view {
        pieces("pieces_q5_k", SwornProducts.Q5_K, 2, 3);
    }

    function test_pieces_q6_k_0() public view {
        pieces("pieces_q6_k", SwornProducts.Q6_K, 0, 3);
    }

    function test_pieces_q6_k_1() public view {
        pieces("pieces_q6_k", SwornProducts.Q6_K, 1, 3);
    }

    function test_pieces_q6_k_2() public view {
        pieces("pieces_q6_k", SwornProducts.Q6_K, 2, 3);
    }

    // --- folds.bin: `type from to acc row (q[8] d s)[8] result` ---

    /// The activation blocks of pieces `from .. to` of the record at `o` (row at `o + 16`).
    function foldActs(bytes memory data, uint256 o, uint256 rawLen)
        internal
        pure
        returns (SwornProducts.Act[] memory x)
    {
        (uint256 from, uint256 to) = (word(data, o + 4), word(data, o + 8));
        uint256 a = o + 16 + 4 * ((rawLen + 3) / 4);
        x = new SwornProducts.Act[](to - from);
        for (uint256 k = from; k < to; k++) {
            x[k - from] = act(data, a + 40 * k);
        }
    }

    /// Checks the record at `o`: the offset after it, and whether it matched.
    function checkFold(bytes memory data, uint256 o) internal pure returns (uint256 next, bool ok) {
        uint256 kind = word(data, o);
        (uint256 bb, uint256 per) = SwornProducts.shape(kind);
        uint256 rawLen = (8 / per) * bb;
        uint32 got = SwornProducts.fold(
            kind,
            slice(data, o + 16, rawLen),
            word(data, o + 4),
            word(data, o + 8),
            foldActs(data, o, rawLen),
            word(data, o + 12)
        );
        next = o + 16 + 4 * ((rawLen + 3) / 4) + 8 * 40 + 4;
        ok = got == word(data, next - 4);
    }

    function test_folds_match_rust() public view {
        bytes memory data = vectors("folds");
        uint256 o = 0;
        uint256 n = 0;
        while (o < data.length) {
            bool ok;
            (o, ok) = checkFold(data, o);
            if (!ok) revert(string.concat("folds case ", vm.toString(n)));
            n++;
        }
        assertEq(n, CASES / 10, "folds: case count");
    }

    // --- float_rows.bin: `type n row x[n] result` ---

    function floatRows(uint256 p) internal view {
        bytes memory data = vectors("float_rows");
        uint256 o = 0;
        for (uint256 i = 0; i < CASES; i++) {
            uint256 kind = word(data, o);
            uint256 n = word(data, o + 4);
            uint256 rawLen = kind == SwornProducts.F32 ? 4 * n : 2 * n;
            uint256 a = o + 8 + 4 * ((rawLen + 3) / 4);
            uint256 next = a + 4 * n + 4;
            if (i % 2 == p) {
                bytes memory raw = slice(data, o + 8, rawLen);
                uint32[] memory x = new uint32[](n);
                for (uint256 k = 0; k < n; k++) {
                    x[k] = word(data, a + 4 * k);
                }
                uint32[8] memory zero;
                uint32 got = SwornMath.tree8(SwornProducts.lanes(kind, raw, 0, x, zero));
                if (got != word(data, next - 4)) revert(string.concat("float_rows case ", vm.toString(i)));
            }
            o = next;
        }
        assertEq(o, data.length, "float_rows: case count");
    }

    function test_float_rows_match_rust_0() public view {
        floatRows(0);
    }

    function test_float_rows_match_rust_1() public view {
        floatRows(1);
    }
}
