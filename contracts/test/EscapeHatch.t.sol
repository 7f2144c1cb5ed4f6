// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscapeSetup} from "./utils/EscapeSetup.sol";
import {PorTreeV2, PorEntry} from "./utils/PorTreeV2.sol";
import {Vault} from "../src/Vault.sol";
import {EscapeHatch} from "../src/EscapeHatch.sol";
import {ReserveRegistry} from "../src/ReserveRegistry.sol";

/// The vault's escape hatch: forced withdrawal requests, how they are served, the freeze and
/// the claims (docs/escape-hatch.md).
contract EscapeHatchTest is EscapeSetup {
    event ForcedWithdrawalRequested(
        bytes32 indexed requestId, uint64 indexed account, address indexed token, address exitAddress, uint64 requestedAt
    );
    event ForcedWithdrawalServed(bytes32 indexed requestId, bytes32 withdrawalId);
    event Frozen(uint8 reason, uint64 epoch);
    event Claimed(uint64 indexed account, bytes32 indexed assetId, address to, uint256 amount);

    function setUp() public override {
        super.setUp();
        history();
        publish(1, USDT_ID, usdtEntries());
    }

    function freezeSilently() internal {
        vm.warp(registry.lastPublishedAt() + SILENCE);
        vault.freezeSilent();
    }

    // ------------------------------------------------------------------ the registry link

    function test_SetRegistry_OnceByTheDeployerAndOnlyItsOwn() public {
        vm.assertEq(address(vault.registry()), address(registry), "named");
        vm.expectRevert(EscapeHatch.RegistryAlreadySet.selector);
        vault.setRegistry(address(registry));

        Vault other = new Vault(signerAddrs, guardian, TIMELOCK, GRACE, SILENCE, new Vault.TokenConfig[](0));
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.WrongRegistry.selector, address(registry)));
        other.setRegistry(address(registry)); // names another vault
        ReserveRegistry its = registryFor(address(other));
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.NotRegistrar.selector, user));
        other.setRegistry(address(its));
        other.setRegistry(address(its));
        vm.assertEq(address(other.registry()), address(its), "named by its deployer");
    }

    function test_WithoutARegistry_NoRequestAndNoFreeze() public {
        Vault other = new Vault(signerAddrs, guardian, TIMELOCK, GRACE, SILENCE, new Vault.TokenConfig[](0));
        EscapeHatch.LeafV2 memory leaf = leafOf(1, USDT_ID, 0);
        vm.prank(alice);
        vm.expectRevert(EscapeHatch.RegistryNotSet.selector);
        other.requestForcedWithdrawal(leaf);
        vm.warp(block.timestamp + 365 days);
        vm.expectRevert(EscapeHatch.RegistryNotSet.selector);
        other.freezeSilent();
    }

    function test_Constructor_RefusesEscapePeriods() public {
        Vault.TokenConfig[] memory none = new Vault.TokenConfig[](0);
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.InvalidEscapePeriod.selector, 0));
        new Vault(signerAddrs, guardian, TIMELOCK, 0, SILENCE, none);
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.InvalidEscapePeriod.selector, 91 days));
        new Vault(signerAddrs, guardian, TIMELOCK, GRACE, 91 days, none);
    }

    // ------------------------------------------------------------------ forced requests

    function test_Request_ByTheExitAddress() public {
        EscapeHatch.LeafV2 memory leaf = leafOf(1, USDT_ID, 0);
        bytes32 expected = keccak256(abi.encode(A, address(usdt), uint64(block.timestamp), alice));
        vm.expectEmit(true, true, true, true, address(vault));
        emit ForcedWithdrawalRequested(expected, A, address(usdt), alice, uint64(block.timestamp));
        bytes32 id = request(leaf);
        vm.assertEq(id, expected, "request id");
        (uint64 account, address token, address exit, uint64 at, bool served) = vault.forcedRequest(id);
        vm.assertEq(uint256(account), A, "account");
        vm.assertEq(token, address(usdt), "token");
        vm.assertEq(exit, alice, "exit address");
        vm.assertEq(uint256(at), block.timestamp, "requested at");
        vm.assertFalse(served, "served");
        vm.assertEq(vault.openRequestOf(A, address(usdt)), id, "open");
    }

    function test_Request_RefusedFromAnotherAddress() public {
        EscapeHatch.LeafV2 memory leaf = leafOf(1, USDT_ID, 0);
        vm.prank(bob);
        vm.expectRevert(EscapeHatch.NotExitAddress.selector);
        vault.requestForcedWithdrawal(leaf);
        // C registered no exit address: its leaf proves its balance but cannot force anything
        leaf = leafOf(1, USDT_ID, 2);
        vm.prank(address(0));
        vm.expectRevert(EscapeHatch.NotExitAddress.selector);
        vault.requestForcedWithdrawal(leaf);
    }

    function test_Request_OneOpenPerAccountAndToken() public {
        EscapeHatch.LeafV2 memory leaf = leafOf(1, USDT_ID, 0);
        bytes32 id = request(leaf);
        vm.warp(block.timestamp + 1);
        vm.prank(alice);
        vm.expectRevert(EscapeHatch.RequestOpen.selector);
        vault.requestForcedWithdrawal(leaf);
        request(leafOf(1, USDT_ID, 1)); // another account is not held back
        pay("serve", A, alice, 1_000e6);
        (,,,, bool served) = vault.forcedRequest(id);
        vm.assertTrue(served, "served");
        vm.assertTrue(request(leaf) != id, "a new request once the first is served");
    }

    function test_Request_RefusesABadProof() public {
        EscapeHatch.LeafV2 memory leaf = leafOf(1, USDT_ID, 0);
        leaf.balance += 1;
        vm.prank(alice);
        vm.expectRevert(EscapeHatch.InvalidProof.selector);
        vault.requestForcedWithdrawal(leaf);
        leaf = leafOf(1, USDT_ID, 0);
        leaf.withdrawn -= 1;
        vm.prank(alice);
        vm.expectRevert(EscapeHatch.InvalidProof.selector);
        vault.requestForcedWithdrawal(leaf);
    }

    function test_Request_OnlyAgainstTheLatestEpoch() public {
        vm.warp(block.timestamp + 1 days);
        publish(2, USDT_ID, usdtEntries());
        EscapeHatch.LeafV2 memory old = leafOf(1, USDT_ID, 0);
        vm.prank(alice);
        vm.expectRevert(EscapeHatch.InvalidProof.selector);
        vault.requestForcedWithdrawal(old);
        request(leafOf(2, USDT_ID, 0));
    }

    // ------------------------------------------------------------------ serving

    function test_Served_ByAWithdrawalToTheExitAddress_WithoutTimelockOrDailyLimit() public {
        vm.warp(block.timestamp + 25 hours); // the history's payments have left the window
        bytes32 id = request(leafOf(1, USDT_ID, 0));
        usdt.mint(address(vault), 5_000_000e6);
        // the day's limit is used up (2 x 1M, each at the time-lock threshold)...
        vm.assertTrue(pay("d-1", OTHER, recipient, USDT_LARGE), "first million");
        vm.assertTrue(pay("d-2", OTHER + 1, recipient, USDT_LARGE), "second million");
        vm.assertEq(vault.remainingOutflow(address(usdt)), 0, "limit used up");
        // ...a withdrawal of A elsewhere does not serve the request (and is refused by the limit)
        Vault.Withdrawal memory elsewhere = withdrawalOf("a-x", A, bob, 10e6);
        bytes[] memory sigs = sign3(elsewhere);
        vm.expectRevert(
            abi.encodeWithSelector(Vault.DailyLimitExceeded.selector, address(usdt), USDT_DAILY, USDT_DAILY + 10e6)
        );
        vault.withdraw(elsewhere, sigs);
        // the one to alice, above the time-lock threshold and the daily limit, is paid at once
        Vault.Withdrawal memory w = withdrawalOf("serve", A, alice, 1_500_000e6);
        sigs = sign3(w);
        vm.expectEmit(true, true, true, true, address(vault));
        emit ForcedWithdrawalServed(id, "serve");
        vm.assertTrue(vault.withdraw(w, sigs), "paid at once");
        vm.assertEq(usdt.balanceOf(alice), 1_500_000e6, "alice paid");
        vm.assertEq(vault.paidOf(A, address(usdt)), 500e6 + 1_500_000e6, "counted as paid");
        vm.assertEq(vault.openRequestOf(A, address(usdt)), bytes32(0), "closed");
        vm.warp(block.timestamp + GRACE);
        vm.expectRevert(EscapeHatch.AlreadyServed.selector);
        vault.freezeUnserved(id);
    }

    function test_Served_BySignedZero() public {
        bytes32 id = request(leafOf(1, USDT_ID, 0));
        uint256 deadline = block.timestamp + 1 hours;
        bytes[] memory two = sign(signersKeys(2), forcedZeroDigest(address(vault), id, deadline));
        vm.expectRevert(abi.encodeWithSelector(Vault.WrongSignatureCount.selector, 2));
        vault.answerForcedZero(id, deadline, two);
        vm.assertEq(vault.forcedZeroDigest(id, deadline), forcedZeroDigest(address(vault), id, deadline), "digest");
        bytes[] memory sigs = sign(signersKeys(3), forcedZeroDigest(address(vault), id, deadline));
        bytes32 bobs = request(leafOf(1, USDT_ID, 1));
        vm.expectPartialRevert(Vault.NotASigner.selector); // signed for another request
        vault.answerForcedZero(bobs, deadline, sigs);
        vm.expectEmit(true, true, true, true, address(vault));
        emit ForcedWithdrawalServed(id, bytes32(0));
        vault.answerForcedZero(id, deadline, sigs);
        vm.expectRevert(EscapeHatch.AlreadyServed.selector);
        vault.answerForcedZero(id, deadline, sigs);
        vm.warp(block.timestamp + GRACE);
        vm.expectRevert(EscapeHatch.AlreadyServed.selector);
        vault.freezeUnserved(id);
    }

    function test_SignedZero_Expires() public {
        bytes32 id = request(leafOf(1, USDT_ID, 0));
        uint256 deadline = block.timestamp + 1 hours;
        bytes[] memory sigs = sign(signersKeys(3), forcedZeroDigest(address(vault), id, deadline));
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.Expired.selector, deadline));
        vault.answerForcedZero(id, deadline, sigs);
    }

    // ------------------------------------------------------------------ freeze

    function test_FreezeUnserved_AtTheGraceNotASecondBefore() public {
        bytes32 id = request(leafOf(1, USDT_ID, 0));
        uint256 at = block.timestamp + GRACE;
        vm.warp(at - 1);
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.GraceNotOver.selector, at));
        vault.freezeUnserved(id);
        vm.warp(at);
        vm.expectEmit(true, true, true, true, address(vault));
        emit Frozen(1, 1);
        vm.prank(address(0xD00D)); // anyone
        vault.freezeUnserved(id);
        vm.assertTrue(vault.frozen(), "frozen");
        vm.assertEq(uint256(vault.frozenReason()), 1, "reason: unserved");
        vm.assertEq(uint256(vault.frozenEpoch()), 1, "frozen epoch");
    }

    function test_FreezeUnserved_UnknownRequest() public {
        vm.expectRevert(EscapeHatch.UnknownRequest.selector);
        vault.freezeUnserved(keccak256("no such request"));
    }

    function test_FreezeSilent_AfterTheSilencePeriod() public {
        uint256 at = registry.lastPublishedAt() + SILENCE;
        vm.warp(at - 1);
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.NotSilent.selector, at));
        vault.freezeSilent();
        // a new publication starts the silence again
        publish(2, USDT_ID, usdtEntries());
        vm.warp(at);
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.NotSilent.selector, at - 1 + SILENCE));
        vault.freezeSilent();
        vm.warp(at - 1 + SILENCE);
        vm.expectEmit(true, true, true, true, address(vault));
        emit Frozen(2, 2);
        vault.freezeSilent();
        vm.assertEq(uint256(vault.frozenEpoch()), 2, "the latest epoch");
        vm.expectRevert(EscapeHatch.VaultFrozen.selector);
        vault.freezeSilent(); // final
    }

    function test_FreezeSilent_CountsFromTheRegistryWhenNothingIsPublished() public {
        Vault other = new Vault(signerAddrs, guardian, TIMELOCK, GRACE, SILENCE, new Vault.TokenConfig[](0));
        vm.warp(block.timestamp + 30 days);
        other.setRegistry(address(registryFor(address(other))));
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.NotSilent.selector, block.timestamp + SILENCE));
        other.freezeSilent();
        vm.warp(block.timestamp + SILENCE);
        other.freezeSilent();
        vm.assertTrue(other.frozen(), "frozen");
    }

    function test_Frozen_RefusesOrdinaryBusiness() public {
        usdt.mint(address(vault), 5_000_000e6);
        vm.assertFalse(pay("queued", B, bob, 1_500_000e6), "queued before the freeze");
        bytes32 id = request(leafOf(1, USDT_ID, 0));
        freezeSilently();

        vm.deal(user, 1 ether);
        vm.prank(user);
        vm.expectRevert(EscapeHatch.VaultFrozen.selector);
        vault.depositETH{value: 1 ether}(A);
        usdt.mint(user, 1e6);
        vm.startPrank(user);
        usdt.approve(address(vault), 1e6);
        vm.expectRevert(EscapeHatch.VaultFrozen.selector);
        vault.depositToken(address(usdt), 1e6, A);
        vm.stopPrank();

        Vault.Withdrawal memory w = withdrawalOf("after", A, alice, 1e6);
        bytes[] memory sigs = sign3(w);
        vm.expectRevert(EscapeHatch.VaultFrozen.selector);
        vault.withdraw(w, sigs);
        vm.warp(block.timestamp + TIMELOCK);
        vm.expectRevert(EscapeHatch.VaultFrozen.selector);
        vault.executeQueued("queued");
        uint256 deadline = block.timestamp + 1 hours;
        sigs = sign(signersKeys(3), forcedZeroDigest(address(vault), id, deadline));
        vm.expectRevert(EscapeHatch.VaultFrozen.selector);
        vault.answerForcedZero(id, deadline, sigs);
        EscapeHatch.LeafV2 memory leaf = leafOf(1, USDT_ID, 1);
        vm.prank(bob);
        vm.expectRevert(EscapeHatch.VaultFrozen.selector);
        vault.requestForcedWithdrawal(leaf);
        vm.expectRevert(EscapeHatch.VaultFrozen.selector);
        vault.freezeUnserved(id);
    }

    // ------------------------------------------------------------------ claims

    function test_Claim_RefusedUntilFrozen() public {
        EscapeHatch.LeafV2 memory leaf = leafOf(1, USDT_ID, 0);
        vm.prank(alice);
        vm.expectRevert(EscapeHatch.NotFrozen.selector);
        vault.claim(leaf);
    }

    function test_Claim_TheSnapshotBalanceOnceByTheExitAddress() public {
        freezeSilently();
        EscapeHatch.LeafV2 memory leaf = leafOf(1, USDT_ID, 0);
        vm.prank(bob);
        vm.expectRevert(EscapeHatch.NotExitAddress.selector);
        vault.claim(leaf);

        vm.expectEmit(true, true, true, true, address(vault));
        emit Claimed(A, USDT_ID, alice, 1_000e6);
        vm.prank(alice);
        vm.assertEq(vault.claim(leaf), 1_000e6, "claimed");
        vm.assertEq(usdt.balanceOf(alice), 1_000e6, "paid to the exit address");
        vm.assertTrue(vault.claimed(A, USDT_ID), "recorded");

        vm.prank(alice);
        vm.expectRevert(EscapeHatch.AlreadyClaimed.selector);
        vault.claim(leaf);

        leaf = leafOf(1, USDT_ID, 1);
        vm.prank(bob);
        vm.assertEq(vault.claim(leaf), 2_000e6, "bob");
        vm.assertEq(usdt.balanceOf(address(vault)), 300e6, "C's funds stay");
    }

    function test_Claim_OnlyAgainstTheFrozenEpoch() public {
        vm.warp(block.timestamp + 1 days);
        publish(2, USDT_ID, usdtEntries());
        freezeSilently();
        EscapeHatch.LeafV2 memory old = leafOf(1, USDT_ID, 0);
        vm.prank(alice);
        vm.expectRevert(EscapeHatch.InvalidProof.selector);
        vault.claim(old);
        EscapeHatch.LeafV2 memory leaf = leafOf(2, USDT_ID, 0);
        vm.prank(alice);
        vm.assertEq(vault.claim(leaf), 1_000e6, "the frozen epoch's leaf");
    }

    function test_Claim_AWithdrawalAfterTheSnapshotReducesIt() public {
        pay("after", A, address(0xA1), 400e6);
        freezeSilently();
        EscapeHatch.LeafV2 memory leaf = leafOf(1, USDT_ID, 0);
        vm.prank(alice);
        vm.assertEq(vault.claim(leaf), 600e6, "1,000 - 400 paid since");
    }

    function test_Claim_ADepositAfterTheSnapshotAddsToIt() public {
        deposit(A, 250e6);
        freezeSilently();
        EscapeHatch.LeafV2 memory leaf = leafOf(1, USDT_ID, 0);
        vm.prank(alice);
        vm.assertEq(vault.claim(leaf), 1_250e6, "1,000 + 250 deposited since");
    }

    function test_Claim_AWithdrawalDebitedButNeverPaidIsGivenBack() public {
        vm.warp(block.timestamp + 1 days);
        PorEntry[4] memory e = usdtEntries();
        (e[0].balance, e[0].withdrawn) = (800e6, 700e6); // 200 more debited, not yet paid at the snapshot
        publish(2, USDT_ID, e);
        freezeSilently();
        EscapeHatch.LeafV2 memory leaf = leafOf(2, USDT_ID, 0);
        vm.prank(alice);
        vm.assertEq(vault.claim(leaf), 1_000e6, "800 + the 200 never paid");
    }

    function test_Claim_FlooredAtZero() public {
        usdt.mint(address(vault), 1_000e6);
        pay("more", A, address(0xA1), 1_200e6); // paid more than the snapshot balance since
        freezeSilently();
        EscapeHatch.LeafV2 memory leaf = leafOf(1, USDT_ID, 0);
        uint256 held = usdt.balanceOf(address(vault));
        vm.prank(alice);
        vm.assertEq(vault.claim(leaf), 0, "nothing");
        vm.assertEq(usdt.balanceOf(address(vault)), held, "nothing paid");
        vm.assertTrue(vault.claimed(A, USDT_ID), "claimed all the same");
    }

    function test_Claim_CappedAtTheHoldings() public {
        pay("drain", OTHER, recipient, 3_000e6); // the vault pays out what it owes A, B and C
        freezeSilently();
        EscapeHatch.LeafV2 memory leaf = leafOf(1, USDT_ID, 1);
        vm.prank(bob);
        vm.assertEq(vault.claim(leaf), 300e6, "what is left");
        leaf = leafOf(1, USDT_ID, 0);
        vm.prank(alice);
        vm.assertEq(vault.claim(leaf), 0, "nothing left");
    }

    function test_Claim_Ether() public {
        vm.deal(user, 3 ether);
        vm.prank(user);
        vault.depositETH{value: 3 ether}(A);
        PorEntry[4] memory e;
        e[0] = PorEntry(A, 3 ether, alice, 3 ether, 0);
        publish(1, ETH_ID, e);
        freezeSilently();
        EscapeHatch.LeafV2 memory leaf = leafOf(1, ETH_ID, 0);
        vm.prank(alice);
        vm.assertEq(vault.claim(leaf), 3 ether, "claimed");
        vm.assertEq(alice.balance, 3 ether, "paid in ETH");
        // the USDT claim of the same account is another claim
        leaf = leafOf(1, USDT_ID, 0);
        vm.prank(alice);
        vm.assertEq(vault.claim(leaf), 1_000e6, "USDT");
    }

    function test_Claim_WhilePaused() public {
        freezeSilently();
        vm.prank(guardian);
        vault.pause();
        EscapeHatch.LeafV2 memory leaf = leafOf(1, USDT_ID, 0);
        vm.prank(alice);
        vm.assertEq(vault.claim(leaf), 1_000e6, "a pause does not hold claims back");
    }

    /// Whatever the leaf's fields and what happened since, a claim pays the formula, floored at 0,
    /// and never more than the vault holds.
    function testFuzz_ClaimNeverExceedsHoldings(
        uint96 balance,
        uint96 deposited,
        uint96 withdrawn,
        uint96 depositedSince,
        uint96 paidSince,
        uint96 others
    ) public {
        vm.warp(block.timestamp + 2 days); // the history's payments have left the window
        PorEntry[4] memory e;
        e[0] = PorEntry(A, balance, alice, uint256(deposited) + 1_500e6, uint256(withdrawn) + 500e6);
        publish(2, USDT_ID, e);
        if (others != 0) deposit(OTHER, others);
        if (depositedSince != 0) deposit(A, depositedSince);
        uint256 held = usdt.balanceOf(address(vault));
        uint256 paid = bound(paidSince, 0, held < USDT_LARGE ? held : USDT_LARGE); // paid at once
        if (paid != 0) vm.assertTrue(pay("since", A, address(0xA1), paid), "paid");
        freezeSilently();

        held = usdt.balanceOf(address(vault));
        int256 formula = int256(uint256(balance)) + int256(uint256(depositedSince)) - int256(uint256(deposited))
            - int256(paid) + int256(uint256(withdrawn));
        uint256 expected = formula <= 0 ? 0 : uint256(formula);
        if (expected > held) expected = held;
        EscapeHatch.LeafV2 memory leaf = leafOf(2, USDT_ID, 0);
        vm.prank(alice);
        uint256 amount = vault.claim(leaf);
        vm.assertEq(amount, expected, "the formula");
        vm.assertLe(amount, held, "within the holdings");
        vm.assertEq(usdt.balanceOf(address(vault)), held - amount, "paid out exactly");
    }
}

/// The registry's leaf version 2, its latest epoch and last publication time.
contract ReserveRegistryLeafV2Test is EscapeSetup {
    function test_LeafHashIsTheSpecifications() public view {
        PorEntry memory e = PorEntry(A, 1_000e6, alice, 1_500e6, 500e6);
        vm.assertEq(
            registry.leafHash(
                7, USDT_ID, PorTreeV2.accountKey(A), e.balance, PorTreeV2.salt(scope(7, USDT_ID), A), alice, 1_500e6, 500e6
            ),
            PorTreeV2.leaf(scope(7, USDT_ID), e),
            "leaf v2"
        );
        vm.assertEq(vault.accountKey(A), keccak256("DPG-POR-ACCOUNT-v1:11"), "account key");
        vm.assertEq(vault.accountKey(0), keccak256("DPG-POR-ACCOUNT-v1:0"), "account key of 0");
        vm.assertEq(
            vault.accountKey(type(uint64).max), keccak256("DPG-POR-ACCOUNT-v1:18446744073709551615"), "largest"
        );
    }

    function test_VerifyProofTakesTheV2Fields() public {
        history();
        publish(1, USDT_ID, usdtEntries());
        for (uint256 i; i < 4; ++i) {
            EscapeHatch.LeafV2 memory p = leafOf(1, USDT_ID, i);
            vm.assertTrue(_verify(p), "a leaf of the tree");
            p.exitAddress = address(0xBAD);
            vm.assertFalse(_verify(p), "another exit address");
            p = leafOf(1, USDT_ID, i);
            p.deposited += 1;
            vm.assertFalse(_verify(p), "another deposited");
            p = leafOf(1, USDT_ID, i);
            p.withdrawn += 1;
            vm.assertFalse(_verify(p), "another withdrawn");
        }
    }

    function test_LatestEpochAndLastPublishedAt() public {
        vm.assertEq(uint256(registry.latestEpoch()), 0, "none yet");
        vm.assertEq(uint256(registry.lastPublishedAt()), 0, "never");
        publish(5, USDT_ID, usdtEntries());
        vm.assertEq(uint256(registry.latestEpoch()), 5, "epoch 5");
        vm.assertEq(uint256(registry.lastPublishedAt()), block.timestamp, "now");
        vm.warp(block.timestamp + 1 hours);
        publish(3, USDT_ID, usdtEntries()); // an older epoch published late
        vm.assertEq(uint256(registry.latestEpoch()), 5, "still 5");
        vm.assertEq(uint256(registry.lastPublishedAt()), block.timestamp, "the late publication counts");
    }

    function _verify(EscapeHatch.LeafV2 memory p) internal view returns (bool) {
        return registry.verifyProof(
            1,
            p.assetId,
            PorTreeV2.accountKey(p.account),
            p.balance,
            p.salt,
            p.exitAddress,
            p.deposited,
            p.withdrawn,
            p.index,
            p.siblings
        );
    }
}

/// What the escape hatch costs, on a tree of 2^20 leaves (a million accounts): the gas of each
/// call, kept under a budget (docs/escape-hatch.md gives the figures).
contract EscapeHatchGasTest is EscapeSetup {
    uint8 internal constant DEPTH = 20;

    function test_Gas_Depth20() public {
        history();
        PorEntry memory e = PorEntry(A, 1_000e6, alice, 1_500e6, 500e6);
        (bytes32 root, EscapeHatch.LeafV2 memory leaf) = PorTreeV2.lonePath(scope(1, USDT_ID), e, 654_321, DEPTH);
        publishRoot(1, USDT_ID, root, e.balance, DEPTH);

        vm.prank(alice);
        uint256 g = gasleft();
        bytes32 id = vault.requestForcedWithdrawal(leaf);
        uint256 requestGas = g - gasleft();
        vm.assertLe(requestGas, 170_000, "requestForcedWithdrawal");

        vm.warp(block.timestamp + GRACE);
        g = gasleft();
        vault.freezeUnserved(id);
        uint256 freezeGas = g - gasleft();
        vm.assertLe(freezeGas, 45_000, "freezeUnserved");

        vm.prank(alice);
        g = gasleft();
        uint256 amount = vault.claim(leaf);
        uint256 claimGas = g - gasleft();
        vm.assertEq(amount, 1_000e6, "claimed");
        vm.assertLe(claimGas, 170_000, "claim");
    }

    function test_Gas_ServeAndFreezeSilent() public {
        history();
        publish(1, USDT_ID, usdtEntries());
        bytes32 id = request(leafOf(1, USDT_ID, 0));
        uint256 deadline = block.timestamp + 1 hours;
        bytes[] memory sigs = sign(signersKeys(3), forcedZeroDigest(address(vault), id, deadline));
        uint256 g = gasleft();
        vault.answerForcedZero(id, deadline, sigs);
        vm.assertLe(g - gasleft(), 70_000, "answerForcedZero");

        vm.warp(registry.lastPublishedAt() + SILENCE);
        g = gasleft();
        vault.freezeSilent();
        vm.assertLe(g - gasleft(), 45_000, "freezeSilent");
    }
}
