// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TestBase} from "./utils/TestBase.sol";
import {PorVectors, PorTree, PorProof, PorNode, PorAttack} from "./utils/PorVectors.sol";
import {ReserveRegistry} from "../src/ReserveRegistry.sol";
import {DevToken} from "../src/DevToken.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

interface Roll {
    function roll(uint256 newHeight) external;
}

/// The registry against the shared test vectors (tests/por/vectors.json, through the generated
/// PorVectors library) and the attacks of the specification.
contract ReserveRegistryTest is TestBase {
    // anvil's account 0: its first deployment lands at PorVectors.REGISTRY
    address internal constant OPERATOR = 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266;
    address internal constant VAULT = address(0x7A17);
    uint256 internal constant OTHER_CHAIN = 137;
    bytes32 internal constant USDT = keccak256("USDT");
    bytes32 internal constant BTC = keccak256("BTC");
    bytes32 internal constant ETH = keccak256("ETH");
    string internal constant CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

    ReserveRegistry internal registry;
    DevToken internal usdt;
    DevToken internal wbtc;

    function setUp() public {
        vm.chainId(PorVectors.CHAIN_ID);
        usdt = new DevToken("Tether USD (dev)", "USDT", 6);
        wbtc = new DevToken("Wrapped BTC (dev)", "WBTC", 8);
        registry = _deploy(OPERATOR);
        vm.assertEq(address(registry), PorVectors.REGISTRY, "the vectors' registry address");
        Roll(address(vm)).roll(100);
    }

    function _deploy(address deployer) internal returns (ReserveRegistry r) {
        bytes32[] memory ids = new bytes32[](3);
        address[] memory tokens = new address[](3);
        (ids[0], ids[1], ids[2]) = (USDT, BTC, ETH);
        (tokens[0], tokens[1], tokens[2]) = (address(usdt), address(wbtc), address(0));
        vm.prank(deployer);
        r = new ReserveRegistry(OPERATOR, VAULT, ids, tokens);
    }

    function _noDecl() internal pure returns (ReserveRegistry.Declaration[] memory) {
        return new ReserveRegistry.Declaration[](0);
    }

    function _decl(uint256 chainId, uint256 amount) internal pure returns (ReserveRegistry.Declaration[] memory d) {
        d = new ReserveRegistry.Declaration[](1);
        d[0] = ReserveRegistry.Declaration(chainId, amount);
    }

    /// Publish with the total covered by a declaration for another chain (the vault holds nothing).
    function _publish(ReserveRegistry r, uint64 epoch, bytes32 assetId, bytes32 root, uint256 total, uint8 depth)
        internal
    {
        vm.prank(OPERATOR);
        r.publish(epoch, assetId, root, total, depth, 99, blockhash(99), CID, _decl(OTHER_CHAIN, total));
    }

    /// The shared vectors' proofs (leaf version 1 until the vectors are regenerated): their leaf,
    /// computed here, and its path through the registry's verifyPath (the tree shape is unchanged).
    function _verify(ReserveRegistry r, PorProof memory p) internal view returns (bool) {
        bytes32 leaf = keccak256(
            abi.encode(
                keccak256(
                    abi.encode(
                        keccak256("DPG-POR-LEAF-v1"), block.chainid, address(r), p.epoch, p.assetId, p.accountKey,
                        p.balance, p.salt
                    )
                )
            )
        );
        return r.verifyPath(p.epoch, p.assetId, leaf, p.balance, p.index, p.siblings);
    }

    function _publishVectors() internal returns (PorTree[] memory t) {
        t = PorVectors.trees();
        for (uint256 i; i < t.length; ++i) {
            _publish(registry, PorVectors.EPOCH, t[i].assetId, t[i].root, t[i].total, t[i].depth);
        }
    }

    // ------------------------------------------------------------------ the shared vectors

    function test_Vectors_Tags() public view {
        vm.assertEq(registry.LEAF_TAG_V2(), keccak256("DPG-POR-LEAF-v2"), "leaf tag");
        vm.assertEq(registry.NODE_TAG(), keccak256("DPG-POR-NODE-v1"), "node tag");
        vm.assertEq(registry.PAD_TAG(), keccak256("DPG-POR-PAD-v1"), "pad tag");
    }

    function test_Vectors_EveryNode() public view {
        PorNode[] memory n = PorVectors.nodes();
        vm.assertGe(n.length, 10, "nodes");
        for (uint256 i; i < n.length; ++i) {
            vm.assertEq(registry.nodeHash(n[i].leftHash, n[i].leftValue, n[i].rightHash, n[i].rightValue), n[i].hash,
                "node hash");
        }
    }

    function test_Vectors_EveryLeafAndProof() public {
        PorTree[] memory t = _publishVectors();
        uint256 count;
        for (uint256 i; i < t.length; ++i) {
            (bytes32 root, uint256 total, uint8 depth) = registry.rootOf(PorVectors.EPOCH, t[i].assetId);
            vm.assertEq(root, t[i].root, "root");
            vm.assertEq(total, t[i].total, "total");
            vm.assertEq(depth, t[i].depth, "depth");
            for (uint256 j; j < t[i].proofs.length; ++j) {
                vm.assertTrue(_verify(registry, t[i].proofs[j]), "a vector proof does not verify");
                ++count;
            }
        }
        vm.assertEq(count, 9, "proofs");
    }

    function test_Vectors_Attacks() public {
        _publishVectors();
        PorAttack[] memory a = PorVectors.attacks();
        vm.assertGe(a.length, 12, "attacks");
        for (uint256 i; i < a.length; ++i) {
            (,, uint8 depth) = registry.rootOf(a[i].epoch, a[i].assetId);
            if (depth == 0) _publish(registry, a[i].epoch, a[i].assetId, a[i].root, a[i].total, a[i].depth);
            vm.assertFalse(_verify(registry, a[i].proof), a[i].name);
        }
    }

    // ------------------------------------------------------------------ attacks that need a chain or a registry

    function test_LeafFromAnotherChain() public {
        PorTree[] memory t = _publishVectors();
        PorProof memory p = t[0].proofs[0];
        vm.assertTrue(_verify(registry, p), "valid here");
        vm.chainId(1);
        vm.assertFalse(_verify(registry, p), "the same proof on another chain");
    }

    function test_LeafFromAnotherRegistry() public {
        PorTree[] memory t = _publishVectors();
        ReserveRegistry other = _deploy(address(0xD0D0));
        _publish(other, PorVectors.EPOCH, t[0].assetId, t[0].root, t[0].total, t[0].depth);
        vm.assertFalse(_verify(other, t[0].proofs[0]), "the same root in another registry");
    }

    function test_LeafOfAnotherAssetsTreeFails() public {
        PorTree[] memory t = _publishVectors();
        PorProof memory p = t[1].proofs[0]; // BTC's
        p.assetId = USDT;
        vm.assertFalse(_verify(registry, p), "a BTC leaf in the USDT tree");
    }

    function test_UnpublishedEpochFails() public {
        PorTree[] memory t = _publishVectors();
        PorProof memory p = t[0].proofs[0];
        p.epoch += 1;
        vm.assertFalse(_verify(registry, p), "nothing published");
    }

    function testFuzz_AnySiblingChangeFails(uint256 which, uint256 bit, bool valueNotHash) public {
        PorTree[] memory t = _publishVectors();
        PorProof memory p = t[0].proofs[bound(which, 0, t[0].proofs.length - 1)];
        uint256 level = bound(bit, 0, 255) % p.siblings.length;
        if (valueNotHash) p.siblings[level].value ^= 1 << (bound(bit, 0, 255) % 128);
        else p.siblings[level].hash ^= bytes32(uint256(1) << bound(bit, 0, 255));
        vm.assertFalse(_verify(registry, p), "a changed sibling");
    }

    // ------------------------------------------------------------------ publishing

    function test_PublishWithinVaultHoldings() public {
        usdt.mint(VAULT, 5_100_250_008);
        PorTree[] memory t = PorVectors.trees();
        vm.recordLogs();
        vm.prank(OPERATOR);
        registry.publish(PorVectors.EPOCH, USDT, t[0].root, t[0].total, t[0].depth, 99, blockhash(99), CID, _noDecl());
        ReserveRegistry.Publication memory p = registry.publication(PorVectors.EPOCH, USDT);
        vm.assertEq(p.root, t[0].root, "root");
        vm.assertEq(p.holdings, 5_100_250_008, "holdings");
        vm.assertEq(p.declared, 0, "declared");
        vm.assertEq(p.snapshotBlock, 99, "block");
        vm.assertEq(keccak256(bytes(p.cid)), keccak256(bytes(CID)), "cid");
        vm.assertEq(vm.getRecordedLogs().length, 1, "one Published event");
    }

    function test_PublishRevertsWhenTotalAboveHoldings() public {
        usdt.mint(VAULT, 5_000_000_000);
        PorTree[] memory t = PorVectors.trees();
        vm.prank(OPERATOR);
        vm.expectRevert(
            abi.encodeWithSelector(ReserveRegistry.ReservesShort.selector, t[0].total, 5_000_000_000, 100_000_000)
        );
        registry.publish(
            PorVectors.EPOCH, USDT, t[0].root, t[0].total, t[0].depth, 99, blockhash(99), CID,
            _decl(OTHER_CHAIN, 100_000_000)
        );
        // with enough declared on the other chain it goes through
        vm.prank(OPERATOR);
        registry.publish(
            PorVectors.EPOCH, USDT, t[0].root, t[0].total, t[0].depth, 99, blockhash(99), CID,
            _decl(OTHER_CHAIN, 100_250_008)
        );
    }

    function test_PublishNativeAssetCountsTheVaultsEther() public {
        PorTree[] memory t = PorVectors.trees();
        vm.deal(VAULT, 10);
        vm.prank(OPERATOR);
        vm.expectPartialRevert(ReserveRegistry.ReservesShort.selector);
        registry.publish(PorVectors.EPOCH, ETH, t[2].root, t[2].total, t[2].depth, 99, blockhash(99), CID, _noDecl());
        vm.deal(VAULT, t[2].total);
        vm.assertEq(registry.holdings(ETH), t[2].total, "holdings");
        vm.prank(OPERATOR);
        registry.publish(PorVectors.EPOCH, ETH, t[2].root, t[2].total, t[2].depth, 99, blockhash(99), CID, _noDecl());
    }

    function test_PublishOnlyByTheOperator() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        registry.publish(PorVectors.EPOCH, USDT, bytes32(uint256(1)), 0, 1, 99, blockhash(99), CID, _noDecl());
    }

    function test_PublishOncePerEpochAndAsset() public {
        _publish(registry, 7, USDT, bytes32(uint256(1)), 5, 1);
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(ReserveRegistry.AlreadyPublished.selector, uint64(7), USDT));
        registry.publish(7, USDT, bytes32(uint256(2)), 5, 1, 99, blockhash(99), CID, _decl(OTHER_CHAIN, 5));
        _publish(registry, 8, USDT, bytes32(uint256(1)), 5, 1); // another epoch
        _publish(registry, 7, BTC, bytes32(uint256(1)), 5, 1); // another asset
    }

    function test_PublishRefusesBadInput() public {
        vm.startPrank(OPERATOR);
        bytes32 h = blockhash(99);
        vm.expectRevert(abi.encodeWithSelector(ReserveRegistry.AssetNotListed.selector, keccak256("DOGE")));
        registry.publish(1, keccak256("DOGE"), bytes32(uint256(1)), 0, 1, 99, h, CID, _noDecl());
        vm.expectRevert(abi.encodeWithSelector(ReserveRegistry.BadDepth.selector, uint8(0)));
        registry.publish(1, USDT, bytes32(uint256(1)), 0, 0, 99, h, CID, _noDecl());
        vm.expectRevert(abi.encodeWithSelector(ReserveRegistry.BadDepth.selector, uint8(65)));
        registry.publish(1, USDT, bytes32(uint256(1)), 0, 65, 99, h, CID, _noDecl());
        vm.expectRevert(ReserveRegistry.ZeroRoot.selector);
        registry.publish(1, USDT, bytes32(0), 0, 1, 99, h, CID, _noDecl());
        vm.expectRevert(ReserveRegistry.EmptyCid.selector);
        registry.publish(1, USDT, bytes32(uint256(1)), 0, 1, 99, h, "", _noDecl());
        vm.expectRevert(abi.encodeWithSelector(ReserveRegistry.TotalTooLarge.selector, uint256(1) << 129));
        registry.publish(1, USDT, bytes32(uint256(1)), uint256(1) << 129, 1, 99, h, CID, _noDecl());
        vm.expectRevert(abi.encodeWithSelector(ReserveRegistry.BadSnapshotBlock.selector, uint64(100)));
        registry.publish(1, USDT, bytes32(uint256(1)), 0, 1, 100, h, CID, _noDecl());
        vm.expectPartialRevert(ReserveRegistry.SnapshotBlockHashMismatch.selector);
        registry.publish(1, USDT, bytes32(uint256(1)), 0, 1, 99, bytes32(uint256(5)), CID, _noDecl());
        vm.expectRevert(abi.encodeWithSelector(ReserveRegistry.BadDeclaration.selector, PorVectors.CHAIN_ID));
        registry.publish(1, USDT, bytes32(uint256(1)), 0, 1, 99, h, CID, _decl(PorVectors.CHAIN_ID, 1));
        ReserveRegistry.Declaration[] memory twice = new ReserveRegistry.Declaration[](2);
        twice[0] = ReserveRegistry.Declaration(OTHER_CHAIN, 1);
        twice[1] = ReserveRegistry.Declaration(OTHER_CHAIN, 1);
        vm.expectRevert(abi.encodeWithSelector(ReserveRegistry.BadDeclaration.selector, OTHER_CHAIN));
        registry.publish(1, USDT, bytes32(uint256(1)), 2, 1, 99, h, CID, twice);
        vm.stopPrank();
    }

    function test_ListAsset() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        registry.listAsset(keccak256("DAI"), address(0xDA1));
        vm.startPrank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(ReserveRegistry.AssetAlreadyListed.selector, USDT));
        registry.listAsset(USDT, address(0xDA1));
        registry.listAsset(keccak256("DAI"), address(0xDA1));
        vm.stopPrank();
        (address token, bool listed) = registry.assets(keccak256("DAI"));
        vm.assertEq(token, address(0xDA1), "token");
        vm.assertTrue(listed, "listed");
    }

    function test_InsuranceFundPublishedBesideTheRoot() public {
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(ReserveRegistry.NotPublished.selector, uint64(7), USDT));
        registry.publishInsuranceFund(7, USDT, 123);
        _publish(registry, 7, USDT, bytes32(uint256(1)), 5, 1);
        (uint256 balance, bool done) = registry.insuranceFundOf(7, USDT);
        vm.assertEq(balance, 0, "insurance fund");
        vm.assertFalse(done, "insurance fund");
        vm.expectEmit(true, true, false, true, address(registry));
        emit ReserveRegistry.InsuranceFundPublished(7, USDT, 123);
        vm.prank(OPERATOR);
        registry.publishInsuranceFund(7, USDT, 123);
        (balance, done) = registry.insuranceFundOf(7, USDT);
        vm.assertEq(balance, 123, "insurance fund");
        vm.assertTrue(done, "insurance fund");
        vm.prank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(ReserveRegistry.InsuranceFundAlreadyPublished.selector, uint64(7), USDT));
        registry.publishInsuranceFund(7, USDT, 124);
        (balance,) = registry.insuranceFundOf(8, USDT); // another epoch: nothing
        vm.assertEq(balance, 0, "insurance fund");
    }

    function test_InsuranceFundOnlyByTheOperator() public {
        _publish(registry, 7, USDT, bytes32(uint256(1)), 5, 1);
        vm.prank(address(0xBEEF));
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(0xBEEF)));
        registry.publishInsuranceFund(7, USDT, 1);
    }
}
