// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ReserveRegistry} from "../../src/ReserveRegistry.sol";
import {EscapeHatch} from "../../src/EscapeHatch.sol";

/// An account's entry in a test tree of leaf version 2.
struct PorEntry {
    uint64 account;
    uint256 balance;
    address exitAddress;
    uint256 deposited;
    uint256 withdrawn;
}

/// The tree a leaf belongs to: (chain, registry, epoch, asset).
struct PorScope {
    uint256 chainId;
    address registry;
    uint64 epoch;
    bytes32 assetId;
}

/// The words a leaf of version 2 hashes, in order: abi.encode of this (static) struct is the
/// abi.encode of its fields one after the other.
struct PorLeafPreimage {
    bytes32 tag;
    uint256 chainId;
    address registry;
    uint64 epoch;
    bytes32 assetId;
    bytes32 accountKey;
    uint256 balance;
    bytes32 salt;
    address exitAddress;
    uint256 deposited;
    uint256 withdrawn;
}

/// Proof-of-reserves trees of leaf version 2 (docs/proof-of-reserves.md), computed here from the
/// specification and not with the contracts' own functions: four leaves (depth 2), or one leaf
/// on a path of any depth whose other leaves are empty. They stand in for the shared vectors
/// until those carry version 2 leaves.
library PorTreeV2 {
    bytes32 internal constant LEAF_TAG_V2 = keccak256("DPG-POR-LEAF-v2");
    bytes32 internal constant NODE_TAG = keccak256("DPG-POR-NODE-v1");

    function accountKey(uint64 account) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("DPG-POR-ACCOUNT-v1:", decimal(account)));
    }

    function decimal(uint256 n) internal pure returns (bytes memory out) {
        if (n == 0) return "0";
        uint256 digits;
        for (uint256 m = n; m != 0; m /= 10) {
            ++digits;
        }
        out = new bytes(digits);
        for (; n != 0; n /= 10) {
            out[--digits] = bytes1(uint8(48 + n % 10));
        }
    }

    function salt(PorScope memory s, uint64 account) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", s.epoch, s.assetId, account));
    }

    function leaf(PorScope memory s, PorEntry memory e) internal pure returns (bytes32) {
        PorLeafPreimage memory p;
        p.tag = LEAF_TAG_V2;
        p.chainId = s.chainId;
        p.registry = s.registry;
        p.epoch = s.epoch;
        p.assetId = s.assetId;
        p.accountKey = accountKey(e.account);
        p.balance = e.balance;
        p.salt = salt(s, e.account);
        p.exitAddress = e.exitAddress;
        p.deposited = e.deposited;
        p.withdrawn = e.withdrawn;
        return keccak256(abi.encode(keccak256(abi.encode(p))));
    }

    function node(bytes32 lh, uint256 lv, bytes32 rh, uint256 rv) internal pure returns (bytes32) {
        return keccak256(abi.encode(NODE_TAG, lh, lv, rh, rv));
    }

    /// The root and total of the tree of four entries at leaves 0 to 3.
    function root4(PorScope memory s, PorEntry[4] memory e) internal pure returns (bytes32 root, uint256 total) {
        (bytes32 left, bytes32 right) = _halves(s, e);
        root = node(left, e[0].balance + e[1].balance, right, e[2].balance + e[3].balance);
        total = e[0].balance + e[1].balance + e[2].balance + e[3].balance;
    }

    /// The proof of leaf `i` of the tree of four entries, as the vault takes it.
    function proof4(PorScope memory s, PorEntry[4] memory e, uint256 i)
        internal
        pure
        returns (EscapeHatch.LeafV2 memory p)
    {
        (bytes32 left, bytes32 right) = _halves(s, e);
        uint256 j = i ^ 1;
        p = _fields(s, e[i], i, 2);
        p.siblings[0] = ReserveRegistry.Sibling(leaf(s, e[j]), e[j].balance);
        p.siblings[1] = i < 2
            ? ReserveRegistry.Sibling(right, e[2].balance + e[3].balance)
            : ReserveRegistry.Sibling(left, e[0].balance + e[1].balance);
    }

    /// Entry `e` at leaf `index` of a tree of `depth` levels whose other leaves are empty: the
    /// tree's root (its total is e.balance) and the entry's proof.
    function lonePath(PorScope memory s, PorEntry memory e, uint256 index, uint8 depth)
        internal
        pure
        returns (bytes32 root, EscapeHatch.LeafV2 memory p)
    {
        p = _fields(s, e, index, depth);
        root = leaf(s, e);
        for (uint256 level; level < depth; ++level) {
            bytes32 other = keccak256(abi.encode("empty subtree", level));
            p.siblings[level] = ReserveRegistry.Sibling(other, 0);
            root = (index >> level) & 1 == 1 ? node(other, 0, root, e.balance) : node(root, e.balance, other, 0);
        }
    }

    function _halves(PorScope memory s, PorEntry[4] memory e) private pure returns (bytes32 left, bytes32 right) {
        left = node(leaf(s, e[0]), e[0].balance, leaf(s, e[1]), e[1].balance);
        right = node(leaf(s, e[2]), e[2].balance, leaf(s, e[3]), e[3].balance);
    }

    function _fields(PorScope memory s, PorEntry memory e, uint256 index, uint256 depth)
        private
        pure
        returns (EscapeHatch.LeafV2 memory p)
    {
        p.account = e.account;
        p.assetId = s.assetId;
        p.balance = e.balance;
        p.salt = salt(s, e.account);
        p.exitAddress = e.exitAddress;
        p.deposited = e.deposited;
        p.withdrawn = e.withdrawn;
        p.index = index;
        p.siblings = new ReserveRegistry.Sibling[](depth);
    }
}
