// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {VaultSetup} from "./VaultSetup.sol";
import {PorTreeV2, PorEntry, PorScope} from "./PorTreeV2.sol";
import {Vault} from "../../src/Vault.sol";
import {EscapeHatch} from "../../src/EscapeHatch.sol";
import {ReserveRegistry} from "../../src/ReserveRegistry.sol";

/// The test vault (VaultSetup) with its proof-of-reserves registry (USDT and ETH listed) named
/// in it, and the history of three accounts behind the epoch-1 USDT tree:
///   A (exit alice): deposited 1,500, was paid 500, holds 1,000
///   B (exit bob):   deposited 2,000, holds 2,000
///   C (no exit address): deposited 300, holds 300
/// The fourth leaf is empty. Each publication's total is declared held on another chain, so the
/// tests choose the vault's holdings freely.
abstract contract EscapeSetup is VaultSetup {
    address internal constant OPERATOR = address(0x0BE7);
    bytes32 internal constant USDT_ID = keccak256("USDT");
    bytes32 internal constant ETH_ID = keccak256("ETH");
    uint256 internal constant OTHER_CHAIN = 137;
    string internal constant CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    uint64 internal constant A = 11;
    uint64 internal constant B = 12;
    uint64 internal constant C = 13;
    uint64 internal constant OTHER = 99; // an account in no tree

    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B0);
    ReserveRegistry internal registry;
    mapping(uint64 epoch => mapping(bytes32 assetId => PorEntry[4])) internal published;

    function setUp() public virtual override {
        super.setUp();
        vm.roll(100);
        registry = registryFor(address(vault));
        vault.setRegistry(address(registry));
        vm.label(address(registry), "registry");
        vm.label(alice, "alice");
        vm.label(bob, "bob");
    }

    function registryFor(address v) internal returns (ReserveRegistry) {
        bytes32[] memory ids = new bytes32[](2);
        address[] memory tokens = new address[](2);
        (ids[0], ids[1]) = (USDT_ID, ETH_ID);
        (tokens[0], tokens[1]) = (address(usdt), address(0));
        return new ReserveRegistry(OPERATOR, v, ids, tokens);
    }

    // ------------------------------------------------------------------ the history and trees

    /// The on-chain history of A, B and C before the first snapshot.
    function history() internal {
        deposit(A, 1_500e6);
        pay("a-1", A, address(0xA1), 500e6);
        deposit(B, 2_000e6);
        deposit(C, 300e6);
    }

    /// The USDT entries of A, B and C as the exchange sees them after `history`.
    function usdtEntries() internal view returns (PorEntry[4] memory e) {
        e[0] = PorEntry(A, 1_000e6, alice, 1_500e6, 500e6);
        e[1] = PorEntry(B, 2_000e6, bob, 2_000e6, 0);
        e[2] = PorEntry(C, 300e6, address(0), 300e6, 0);
        e[3] = PorEntry(0, 0, address(0), 0, 0);
    }

    function scope(uint64 epoch, bytes32 assetId) internal view returns (PorScope memory) {
        return PorScope(block.chainid, address(registry), epoch, assetId);
    }

    /// Publish the tree of `e` as (epoch, assetId), its total declared held on another chain.
    function publish(uint64 epoch, bytes32 assetId, PorEntry[4] memory e) internal {
        for (uint256 i; i < 4; ++i) {
            published[epoch][assetId][i] = e[i];
        }
        (bytes32 root, uint256 total) = PorTreeV2.root4(scope(epoch, assetId), e);
        publishRoot(epoch, assetId, root, total, 2);
    }

    function publishRoot(uint64 epoch, bytes32 assetId, bytes32 root, uint256 total, uint8 depth) internal {
        vm.roll(block.number + 1);
        ReserveRegistry.Declaration[] memory d = new ReserveRegistry.Declaration[](1);
        d[0] = ReserveRegistry.Declaration(OTHER_CHAIN, total);
        uint64 snapshot = uint64(block.number - 1);
        vm.prank(OPERATOR);
        registry.publish(epoch, assetId, root, total, depth, snapshot, blockhash(snapshot), CID, d);
    }

    /// The proof of leaf `i` of the published tree (epoch, assetId).
    function leafOf(uint64 epoch, bytes32 assetId, uint256 i) internal view returns (EscapeHatch.LeafV2 memory) {
        PorEntry[4] memory e;
        for (uint256 j; j < 4; ++j) {
            e[j] = published[epoch][assetId][j];
        }
        return PorTreeV2.proof4(scope(epoch, assetId), e, i);
    }

    // ------------------------------------------------------------------ chain actions

    function deposit(uint64 account, uint256 amount) internal {
        usdt.mint(user, amount);
        vm.startPrank(user);
        usdt.approve(address(vault), amount);
        vault.depositToken(address(usdt), amount, account);
        vm.stopPrank();
    }

    function withdrawalOf(bytes32 id, uint64 account, address to, uint256 amount)
        internal
        view
        returns (Vault.Withdrawal memory)
    {
        return Vault.Withdrawal({
            id: id, account: account, token: address(usdt), to: to, amount: amount, deadline: block.timestamp + 1 hours
        });
    }

    /// An ordinary signed USDT withdrawal of `account`; true when paid at once.
    function pay(bytes32 id, uint64 account, address to, uint256 amount) internal returns (bool) {
        Vault.Withdrawal memory w = withdrawalOf(id, account, to, amount);
        return vault.withdraw(w, sign3(w));
    }

    function forcedZeroDigest(address v, bytes32 requestId, uint256 deadline) internal view returns (bytes32) {
        return typedDigest(
            v, block.chainid, keccak256(abi.encode(keccak256("ForcedZero(bytes32 requestId,uint256 deadline)"), requestId, deadline))
        );
    }

    function request(EscapeHatch.LeafV2 memory leaf) internal returns (bytes32 id) {
        vm.prank(leaf.exitAddress);
        id = vault.requestForcedWithdrawal(leaf);
    }
}
