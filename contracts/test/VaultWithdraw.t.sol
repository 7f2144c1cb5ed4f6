// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {VaultSetup} from "./utils/VaultSetup.sol";
import {Vault} from "../src/Vault.sol";
import {EscapeHatch} from "../src/EscapeHatch.sol";
import {ReentrantToken, ReentrantReceiver, RejectingReceiver} from "./mocks/Reentrant.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

contract VaultWithdrawTest is VaultSetup {
    event WithdrawalQueued(bytes32 id, uint256 executableAt);
    event WithdrawalExecuted(bytes32 id, uint64 account, address token, address to, uint256 amount);
    event WithdrawalCancelled(bytes32 id, address by);
    event WithdrawalInvalidated(bytes32 id, address signer);

    function setUp() public override {
        super.setUp();
        fundETH(1000 ether);
        fundToken(usdt, 10_000_000e6);
        fundToken(wbtc, 100e8);
    }

    // ------------------------------------------------------------------ signatures

    function test_Withdraw_ThreeSignaturesPaysETH() public {
        Vault.Withdrawal memory w = withdrawal("eth-1", address(0), 2 ether);
        vm.expectEmit(true, true, true, true, address(vault));
        emit WithdrawalExecuted("eth-1", 7, address(0), recipient, 2 ether);
        bool paid = vault.withdraw(w, sign3(w));
        vm.assertTrue(paid, "not paid");
        vm.assertEq(recipient.balance, 2 ether, "recipient");
        vm.assertEq(vault.holdings(address(0)), 998 ether, "holdings");
        vm.assertTrue(vault.executed("eth-1"), "executed");
        vm.assertEq(uint256(vault.status("eth-1")), uint256(Vault.Status.Executed), "status");
    }

    function test_Withdraw_ThreeSignaturesPaysToken() public {
        Vault.Withdrawal memory w = withdrawal("usdt-1", address(usdt), 1234e6);
        vm.assertTrue(vault.withdraw(w, sign3(w)), "not paid");
        vm.assertEq(usdt.balanceOf(recipient), 1234e6, "recipient");
        vm.assertEq(vault.holdings(address(usdt)), 10_000_000e6 - 1234e6, "holdings");
    }

    function test_Withdraw_AnyThreeFourOrFiveSignersWork() public {
        Vault.Withdrawal memory w = withdrawal("four", address(wbtc), 1e8);
        uint256[] memory four = new uint256[](4);
        (four[0], four[1], four[2], four[3]) = (signerKeys[4], signerKeys[1], signerKeys[3], signerKeys[2]);
        vault.withdraw(w, sign(four, withdrawalDigest(address(vault), w)));

        w = withdrawal("five", address(wbtc), 1e8);
        vault.withdraw(w, sign(signersKeys(5), withdrawalDigest(address(vault), w)));

        w = withdrawal("last three", address(wbtc), 1e8);
        vault.withdraw(w, sign(keys3(signerKeys[2], signerKeys[3], signerKeys[4]), withdrawalDigest(address(vault), w)));
        vm.assertEq(wbtc.balanceOf(recipient), 3e8, "recipient");
    }

    function test_Withdraw_TwoSignaturesRejected() public {
        Vault.Withdrawal memory w = withdrawal("two", address(0), 1 ether);
        bytes[] memory sigs = sign(keys2(signerKeys[0], signerKeys[1]), withdrawalDigest(address(vault), w));
        vm.expectRevert(abi.encodeWithSelector(Vault.WrongSignatureCount.selector, 2));
        vault.withdraw(w, sigs);
        vm.expectRevert(abi.encodeWithSelector(Vault.WrongSignatureCount.selector, 0));
        vault.withdraw(w, new bytes[](0));
    }

    function test_Withdraw_SixSignaturesRejected() public {
        Vault.Withdrawal memory w = withdrawal("six", address(0), 1 ether);
        uint256[] memory six = new uint256[](6);
        for (uint256 i; i < 5; ++i) {
            six[i] = signerKeys[i];
        }
        six[5] = outsiderKey;
        bytes[] memory sigs = sign(six, withdrawalDigest(address(vault), w));
        vm.expectRevert(abi.encodeWithSelector(Vault.WrongSignatureCount.selector, 6));
        vault.withdraw(w, sigs);
    }

    function test_Withdraw_NonSignerRejected() public {
        Vault.Withdrawal memory w = withdrawal("outsider", address(0), 1 ether);
        bytes[] memory sigs =
            sign(keys3(signerKeys[0], signerKeys[1], outsiderKey), withdrawalDigest(address(vault), w));
        vm.expectRevert(abi.encodeWithSelector(Vault.NotASigner.selector, vm.addr(outsiderKey)));
        vault.withdraw(w, sigs);
        // and 3 signers plus an outsider is refused too: every signature must be a signer's
        uint256[] memory four = new uint256[](4);
        (four[0], four[1], four[2], four[3]) = (signerKeys[0], signerKeys[1], signerKeys[2], outsiderKey);
        sigs = sign(four, withdrawalDigest(address(vault), w));
        vm.expectRevert(abi.encodeWithSelector(Vault.NotASigner.selector, vm.addr(outsiderKey)));
        vault.withdraw(w, sigs);
    }

    function test_Withdraw_DuplicateSignerRejected() public {
        Vault.Withdrawal memory w = withdrawal("dup", address(0), 1 ether);
        bytes32 digest = withdrawalDigest(address(vault), w);
        uint256[] memory two = sortByAddress(keys2(signerKeys[0], signerKeys[1]));
        uint256[] memory dup = new uint256[](3);
        (dup[0], dup[1], dup[2]) = (two[0], two[1], two[1]);
        bytes[] memory sigs = signInOrder(dup, digest);
        vm.expectRevert(abi.encodeWithSelector(Vault.SignersNotAscending.selector, 2));
        vault.withdraw(w, sigs);
    }

    function test_Withdraw_UnsortedSignaturesRejected() public {
        Vault.Withdrawal memory w = withdrawal("unsorted", address(0), 1 ether);
        bytes32 digest = withdrawalDigest(address(vault), w);
        uint256[] memory sorted = sortByAddress(keys3(signerKeys[0], signerKeys[1], signerKeys[2]));
        uint256[] memory swapped = new uint256[](3);
        (swapped[0], swapped[1], swapped[2]) = (sorted[1], sorted[0], sorted[2]);
        bytes[] memory sigs = signInOrder(swapped, digest);
        vm.expectRevert(abi.encodeWithSelector(Vault.SignersNotAscending.selector, 1));
        vault.withdraw(w, sigs);
    }

    function test_Withdraw_MalformedSignatureRejected() public {
        Vault.Withdrawal memory w = withdrawal("malformed", address(0), 1 ether);
        bytes[] memory sigs = sign3(w);
        sigs[1] = abi.encodePacked(bytes32(uint256(1)), bytes32(uint256(2))); // 64 bytes
        vm.expectRevert(abi.encodeWithSelector(Vault.InvalidSignature.selector, 1));
        vault.withdraw(w, sigs);
        // high-s (malleable) form of a valid signature
        sigs = sign3(w);
        (bytes32 r, bytes32 s, uint8 v) = splitSig(sigs[0]);
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        sigs[0] = abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.expectRevert(abi.encodeWithSelector(Vault.InvalidSignature.selector, 0));
        vault.withdraw(w, sigs);
    }

    function splitSig(bytes memory sig) internal pure returns (bytes32 r, bytes32 s, uint8 v) {
        assembly {
            r := mload(add(sig, 0x20))
            s := mload(add(sig, 0x40))
            v := byte(0, mload(add(sig, 0x60)))
        }
    }

    function test_Withdraw_SignatureForAnotherIdRejected() public {
        Vault.Withdrawal memory signed = withdrawal("id-A", address(0), 1 ether);
        bytes[] memory sigs = sign3(signed);
        Vault.Withdrawal memory w = withdrawal("id-B", address(0), 1 ether);
        vm.expectPartialRevert(Vault.NotASigner.selector);
        vault.withdraw(w, sigs);
    }

    function test_Withdraw_TamperedFieldsRejected() public {
        Vault.Withdrawal memory w = withdrawal("tamper", address(0), 1 ether);
        bytes[] memory sigs = sign3(w);
        Vault.Withdrawal memory t = withdrawal("tamper", address(0), 2 ether);
        vm.expectPartialRevert(Vault.NotASigner.selector);
        vault.withdraw(t, sigs);
        t = withdrawal("tamper", address(0), 1 ether);
        t.to = payable(address(0xEE));
        vm.expectPartialRevert(Vault.NotASigner.selector);
        vault.withdraw(t, sigs);
        t = withdrawal("tamper", address(0), 1 ether);
        t.account = 8;
        vm.expectPartialRevert(Vault.NotASigner.selector);
        vault.withdraw(t, sigs);
        t = withdrawal("tamper", address(wbtc), 1 ether);
        vm.expectPartialRevert(Vault.NotASigner.selector);
        vault.withdraw(t, sigs);
        t = withdrawal("tamper", address(0), 1 ether);
        t.deadline += 1;
        vm.expectPartialRevert(Vault.NotASigner.selector);
        vault.withdraw(t, sigs);
        vault.withdraw(w, sigs); // the signed one still works
    }

    function test_Withdraw_SignatureForAnotherVaultRejected() public {
        Vault other = new Vault(signerAddrs, guardian, TIMELOCK, GRACE, SILENCE, new Vault.TokenConfig[](0));
        Vault.Withdrawal memory w = withdrawal("other vault", address(0), 1 ether);
        bytes[] memory sigs =
            sign(keys3(signerKeys[0], signerKeys[1], signerKeys[2]), withdrawalDigest(address(other), w));
        vm.expectPartialRevert(Vault.NotASigner.selector);
        vault.withdraw(w, sigs);
    }

    function test_Withdraw_SignatureForAnotherChainRejected() public {
        Vault.Withdrawal memory w = withdrawal("other chain", address(0), 1 ether);
        // signed for mainnet while the vault is on this (test) chain
        bytes[] memory sigs = sign(
            keys3(signerKeys[0], signerKeys[1], signerKeys[2]), typedDigest(address(vault), 1, withdrawalStructHash(w))
        );
        vm.expectPartialRevert(Vault.NotASigner.selector);
        vault.withdraw(w, sigs);

        // signed on this chain, replayed after a fork to another chain id
        sigs = sign3(w);
        uint256 original = block.chainid;
        vm.chainId(original + 1);
        vm.assertTrue(vault.domainSeparator() != domainSeparatorFor(address(vault), original), "domain kept");
        vm.expectPartialRevert(Vault.NotASigner.selector);
        vault.withdraw(w, sigs);
        vm.chainId(original);
        vault.withdraw(w, sigs);
    }

    function test_Withdraw_DigestMatchesTypedData() public view {
        Vault.Withdrawal memory w = withdrawal("digest", address(usdt), 5);
        vm.assertEq(vault.withdrawalDigest(w), withdrawalDigest(address(vault), w), "digest");
        vm.assertEq(vault.WITHDRAWAL_TYPEHASH(), WITHDRAWAL_TYPEHASH, "typehash");
    }

    // ------------------------------------------------------------------ ids, deadlines, funds

    function test_Withdraw_ExpiredDeadline() public {
        Vault.Withdrawal memory w = withdrawal("late", address(0), 1 ether);
        bytes[] memory sigs = sign3(w);
        vm.warp(w.deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.Expired.selector, w.deadline));
        vault.withdraw(w, sigs);
        vm.warp(w.deadline); // the deadline itself is still in time
        vault.withdraw(w, sigs);
    }

    function test_Withdraw_SameIdTwiceRejected() public {
        Vault.Withdrawal memory w = withdrawal("once", address(0), 1 ether);
        bytes[] memory sigs = sign3(w);
        vault.withdraw(w, sigs);
        vm.expectRevert(abi.encodeWithSelector(Vault.AlreadyUsed.selector, bytes32("once")));
        vault.withdraw(w, sigs);
        // even re-signed with other signers and another amount
        Vault.Withdrawal memory again = withdrawal("once", address(0), 2 ether);
        bytes[] memory sigs2 =
            sign(keys3(signerKeys[2], signerKeys[3], signerKeys[4]), withdrawalDigest(address(vault), again));
        vm.expectRevert(abi.encodeWithSelector(Vault.AlreadyUsed.selector, bytes32("once")));
        vault.withdraw(again, sigs2);
        vm.assertEq(recipient.balance, 1 ether, "paid once");
    }

    function test_Withdraw_RejectsZeroFields() public {
        Vault.Withdrawal memory w = withdrawal("zero", address(0), 0);
        bytes[] memory sigs = sign3(w);
        vm.expectRevert(Vault.ZeroAmount.selector);
        vault.withdraw(w, sigs);
        w = withdrawal("zero", address(0), 1);
        w.account = 0;
        sigs = sign3(w);
        vm.expectRevert(Vault.ZeroAccount.selector);
        vault.withdraw(w, sigs);
        w = withdrawal("zero", address(0), 1);
        w.to = address(0);
        sigs = sign3(w);
        vm.expectRevert(EscapeHatch.ZeroAddress.selector);
        vault.withdraw(w, sigs);
    }

    function test_Withdraw_MoreThanHeldReverts() public {
        Vault.Withdrawal memory w = withdrawal("too much", address(wbtc), 101e8);
        bytes[] memory sigs = sign3(w);
        vm.expectRevert(abi.encodeWithSelector(Vault.InsufficientHoldings.selector, address(wbtc), 100e8, 101e8));
        vault.withdraw(w, sigs);
        vm.assertEq(uint256(vault.status(w.id)), uint256(Vault.Status.None), "id consumed by a failure");
    }

    function test_Withdraw_ToContractRefusingETHReverts() public {
        RejectingReceiver r = new RejectingReceiver();
        Vault.Withdrawal memory w = withdrawal("refused", address(0), 1 ether);
        w.to = address(r);
        bytes[] memory sigs = sign3(w);
        vm.expectRevert(abi.encodeWithSelector(Vault.EthTransferFailed.selector, address(r), 1 ether));
        vault.withdraw(w, sigs);
    }

    // ------------------------------------------------------------------ time-lock

    function queueLargeETH(bytes32 id) internal returns (Vault.Withdrawal memory w) {
        w = withdrawal(id, address(0), ETH_LARGE + 1);
        vm.expectEmit(true, true, true, true, address(vault));
        emit WithdrawalQueued(id, block.timestamp + TIMELOCK);
        bool paid = vault.withdraw(w, sign3(w));
        vm.assertFalse(paid, "large withdrawal paid at once");
    }

    function test_Large_AtThresholdIsPaidAtOnce() public {
        Vault.Withdrawal memory w = withdrawal("at threshold", address(0), ETH_LARGE);
        vm.assertTrue(vault.withdraw(w, sign3(w)), "not paid");
    }

    function test_Large_QueuedThenExecutedAfterTimelock() public {
        Vault.Withdrawal memory w = queueLargeETH("large");
        vm.assertEq(recipient.balance, 0, "paid before the time-lock");
        vm.assertEq(uint256(vault.status("large")), uint256(Vault.Status.Queued), "status");
        (address token, uint64 account, uint32 epoch, address to, uint64 executableAt, uint8 approvers, uint256 amount)
        = vault.queued("large");
        vm.assertEq(account, 7, "account");
        vm.assertEq(executableAt, START + TIMELOCK, "executableAt");
        vm.assertEq(epoch, 0, "signer epoch");
        vm.assertEq(approvers, 7, "approvers: signers 0, 1 and 2");
        vm.assertEq(token, address(0), "token");
        vm.assertEq(to, recipient, "to");
        vm.assertEq(amount, w.amount, "amount");

        vm.expectRevert(abi.encodeWithSelector(Vault.TimelockActive.selector, bytes32("large"), START + TIMELOCK));
        vault.executeQueued("large");
        vm.warp(START + TIMELOCK - 1);
        vm.expectRevert(abi.encodeWithSelector(Vault.TimelockActive.selector, bytes32("large"), START + TIMELOCK));
        vault.executeQueued("large");

        vm.warp(START + TIMELOCK); // past the signed deadline too: a queued withdrawal stays valid
        vm.expectEmit(true, true, true, true, address(vault));
        emit WithdrawalExecuted("large", 7, address(0), recipient, w.amount);
        vm.prank(address(0xA11)); // anyone may execute it
        vault.executeQueued("large");
        vm.assertEq(recipient.balance, w.amount, "recipient");
        vm.assertTrue(vault.executed("large"), "executed");

        vm.expectRevert(abi.encodeWithSelector(Vault.NotQueued.selector, bytes32("large")));
        vault.executeQueued("large");
    }

    function test_Large_QueuedIdCannotBeResubmitted() public {
        Vault.Withdrawal memory w = queueLargeETH("queued once");
        bytes[] memory sigs = sign3(w);
        vm.expectRevert(abi.encodeWithSelector(Vault.AlreadyUsed.selector, bytes32("queued once")));
        vault.withdraw(w, sigs);
    }

    function test_Large_CancelBySigner() public {
        queueLargeETH("cancel me");
        vm.expectEmit(true, true, true, true, address(vault));
        emit WithdrawalCancelled("cancel me", signerAddrs[3]);
        vm.prank(signerAddrs[3]);
        vault.cancelQueued("cancel me");
        vm.assertEq(uint256(vault.status("cancel me")), uint256(Vault.Status.Cancelled), "status");
        vm.warp(START + TIMELOCK + 1);
        vm.expectRevert(abi.encodeWithSelector(Vault.NotQueued.selector, bytes32("cancel me")));
        vault.executeQueued("cancel me");
        vm.prank(signerAddrs[3]);
        vm.expectRevert(abi.encodeWithSelector(Vault.NotQueued.selector, bytes32("cancel me")));
        vault.cancelQueued("cancel me");
        vm.assertEq(recipient.balance, 0, "paid");
    }

    function test_Large_CancelByGuardianAndNotByOthers() public {
        queueLargeETH("q");
        vm.prank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(Vault.Unauthorized.selector, address(0xBAD)));
        vault.cancelQueued("q");
        vm.prank(guardian);
        vault.cancelQueued("q");
        vm.prank(guardian);
        vm.expectRevert(abi.encodeWithSelector(Vault.NotQueued.selector, bytes32("never")));
        vault.cancelQueued("never");
    }

    function test_Large_TokenThreshold() public {
        Vault.Withdrawal memory w = withdrawal("usdt large", address(usdt), USDT_LARGE + 1);
        vm.assertFalse(vault.withdraw(w, sign3(w)), "paid");
        w = withdrawal("wbtc no threshold", address(wbtc), 100e8);
        vm.assertTrue(vault.withdraw(w, sign3(w)), "queued without a threshold");
    }

    // ------------------------------------------------------------------ time-lock by account, rolling

    /// An ETH withdrawal of `amount` by `account` (ETH: time-locked above 100 ETH, no daily limit).
    function ethBy(bytes32 id, uint64 account, uint256 amount) internal view returns (Vault.Withdrawal memory w) {
        w = withdrawal(id, address(0), amount);
        w.account = account;
    }

    function test_Timelock_SplitPaymentsOfOneAccountAreQueued() public {
        // 100 ETH is the threshold: three payments of 30 ETH by account 7 within hours are paid
        for (uint256 i; i < 3; ++i) {
            Vault.Withdrawal memory part = ethBy(bytes32(i + 1), 7, 30 ether);
            vm.assertTrue(vault.withdraw(part, sign3(part)), "part paid");
            vm.warp(block.timestamp + 1 hours);
        }
        vm.assertEq(vault.accountOutflow(7, address(0)), 90 ether, "window");
        // a fourth would take the account to 120 ETH within 24 hours: time-locked like one large payment
        Vault.Withdrawal memory w = ethBy("fourth", 7, 30 ether);
        vm.expectEmit(true, true, true, true, address(vault));
        emit WithdrawalQueued("fourth", block.timestamp + TIMELOCK);
        vm.assertFalse(vault.withdraw(w, sign3(w)), "a split payment avoided the time-lock");
        vm.assertEq(recipient.balance, 90 ether, "recipient");
        vm.assertEq(vault.accountOutflow(7, address(0)), 90 ether, "a queued amount counted in the window");
        // up to the threshold is still paid; another account has a window of its own
        w = ethBy("fits", 7, 10 ether);
        vm.assertTrue(vault.withdraw(w, sign3(w)), "within the threshold");
        w = ethBy("other account", 8, 30 ether);
        vm.assertTrue(vault.withdraw(w, sign3(w)), "another account time-locked");
        w = ethBy("one more wei", 7, 1);
        vm.assertFalse(vault.withdraw(w, sign3(w)), "above the threshold paid");

        // the first part leaves the window 24 to 25 hours after it was paid (hourly buckets)
        uint256 firstHour = START / 1 hours;
        vm.warp((firstHour + 24) * 1 hours + 3599);
        w = ethBy("still inside", 7, 30 ether);
        vm.assertFalse(vault.withdraw(w, sign3(w)), "paid while the first part was inside the window");
        vm.warp((firstHour + 25) * 1 hours);
        vm.assertEq(vault.accountOutflow(7, address(0)), 70 ether, "window after the first hour left");
        w = ethBy("after it left", 7, 30 ether);
        vm.assertTrue(vault.withdraw(w, sign3(w)), "not paid once the first part left the window");
    }

    function test_Timelock_QueuedAndExecutedAmountsDoNotCountForTheAccount() public {
        Vault.Withdrawal memory w = queueLargeETH("big");
        vm.warp(START + TIMELOCK);
        vault.executeQueued("big");
        vm.assertEq(vault.accountOutflow(7, address(0)), 0, "window");
        w = ethBy("small", 7, ETH_LARGE);
        vm.assertTrue(vault.withdraw(w, sign3(w)), "paid");
    }

    function test_Timelock_WindowIsPerToken() public {
        Vault.Withdrawal memory w = withdrawal("usdt", address(usdt), USDT_LARGE);
        vm.assertTrue(vault.withdraw(w, sign3(w)), "usdt");
        w = ethBy("eth", 7, ETH_LARGE);
        vm.assertTrue(vault.withdraw(w, sign3(w)), "eth");
        w = withdrawal("usdt again", address(usdt), 1);
        vm.assertFalse(vault.withdraw(w, sign3(w)), "usdt above its threshold paid");
        vm.assertEq(vault.accountOutflow(7, address(usdt)), USDT_LARGE, "usdt window");
    }

    function test_Timelock_AWindowUnusedForADayStartsAfresh() public {
        Vault.Withdrawal memory w = ethBy("a", 7, ETH_LARGE);
        vm.assertTrue(vault.withdraw(w, sign3(w)), "a");
        vm.warp(START + 30 days);
        vm.assertEq(vault.accountOutflow(7, address(0)), 0, "window");
        w = ethBy("b", 7, ETH_LARGE);
        vm.assertTrue(vault.withdraw(w, sign3(w)), "b");
        vm.assertEq(vault.accountOutflow(7, address(0)), ETH_LARGE, "window");
    }

    // ------------------------------------------------------------------ daily limit, rolling

    /// A USDT withdrawal by an account of its own (so the account's time-lock window stays out of the way).
    function usdtBy(bytes32 id, uint64 account, uint256 amount) internal view returns (Vault.Withdrawal memory w) {
        w = withdrawal(id, address(usdt), amount);
        w.account = account;
    }

    function test_DailyLimit() public {
        // USDT: 2M within any 24 hours
        Vault.Withdrawal memory w = usdtBy("d1", 1, 900_000e6);
        vault.withdraw(w, sign3(w));
        w = usdtBy("d2", 2, 900_000e6);
        vault.withdraw(w, sign3(w));
        vm.assertEq(vault.remainingOutflow(address(usdt)), 200_000e6, "remaining");
        w = usdtBy("d3", 3, 200_001e6);
        bytes[] memory sigs = sign3(w);
        vm.expectRevert(abi.encodeWithSelector(Vault.DailyLimitExceeded.selector, address(usdt), USDT_DAILY, 2_000_001e6));
        vault.withdraw(w, sigs);
        Vault.Withdrawal memory exact = usdtBy("d4", 4, 200_000e6);
        vault.withdraw(exact, sign3(exact));
        vm.assertEq(vault.remainingOutflow(address(usdt)), 0, "remaining");
        vm.assertEq(vault.outflow(address(usdt)), USDT_DAILY, "outflow");

        // 25 hours on the payments have left the window; the refused withdrawal can be retried then
        vm.warp(START + 25 hours);
        vm.assertEq(vault.outflow(address(usdt)), 0, "outflow after a day");
        w.deadline = block.timestamp + 1 hours;
        vault.withdraw(w, sign3(w));
        vm.assertEq(usdt.balanceOf(recipient), USDT_DAILY + 200_001e6, "recipient");
        vm.assertEq(vault.remainingOutflow(address(0)), type(uint256).max, "ETH unlimited");
    }

    function test_DailyLimit_BurstAcrossMidnightIsLimited() public {
        uint256 midnight = (START / 1 days + 1) * 1 days;
        vm.warp(midnight - 60);
        for (uint256 i; i < 2; ++i) {
            Vault.Withdrawal memory part = usdtBy(bytes32(i + 1), uint64(i + 1), 1_000_000e6);
            vault.withdraw(part, sign3(part));
        }
        vm.assertEq(vault.remainingOutflow(address(usdt)), 0, "limit used before midnight");
        // two minutes later, on the next UTC day: nothing more (a calendar day would allow 2M again)
        vm.warp(midnight + 60);
        Vault.Withdrawal memory w = usdtBy("after midnight", 3, 1e6);
        bytes[] memory sigs = sign3(w);
        vm.expectRevert(abi.encodeWithSelector(Vault.DailyLimitExceeded.selector, address(usdt), USDT_DAILY, USDT_DAILY + 1e6));
        vault.withdraw(w, sigs);
        vm.warp(midnight - 60 + 24 hours);
        w = usdtBy("a day later", 3, 1e6);
        sigs = sign3(w);
        vm.expectRevert(abi.encodeWithSelector(Vault.DailyLimitExceeded.selector, address(usdt), USDT_DAILY, USDT_DAILY + 1e6));
        vault.withdraw(w, sigs);
        // from the hour 25 hours after their hour, the burst has left the window
        vm.warp(((midnight - 60) / 1 hours + 25) * 1 hours);
        w = usdtBy("once it left", 3, 1e6);
        vault.withdraw(w, sign3(w));
        vm.assertEq(vault.outflow(address(usdt)), 1e6, "outflow");
        vm.assertEq(usdt.balanceOf(recipient), USDT_DAILY + 1e6, "recipient");
    }

    function test_DailyLimit_SpreadOverTheDay() public {
        // 500k every 6 hours: the fifth, 24 hours after the first, still meets the first in the window
        for (uint256 i; i < 4; ++i) {
            Vault.Withdrawal memory part = usdtBy(bytes32(i + 1), uint64(i + 1), 500_000e6);
            vault.withdraw(part, sign3(part));
            vm.warp(block.timestamp + 6 hours);
        }
        Vault.Withdrawal memory w = usdtBy("fifth", 5, 500_000e6);
        bytes[] memory sigs = sign3(w);
        vm.expectPartialRevert(Vault.DailyLimitExceeded.selector);
        vault.withdraw(w, sigs);
        vm.warp(block.timestamp + 1 hours);
        vault.withdraw(w, sigs);
        vm.assertEq(vault.outflow(address(usdt)), USDT_DAILY, "outflow");
    }

    function test_DailyLimit_CountsQueuedWhenPaid() public {
        Vault.Withdrawal memory big = withdrawal("big", address(usdt), 1_500_000e6);
        vm.assertFalse(vault.withdraw(big, sign3(big)), "paid");
        vm.warp(START + TIMELOCK);
        Vault.Withdrawal memory w = usdtBy("small", 8, 600_000e6);
        vault.withdraw(w, sign3(w));
        vm.expectRevert(abi.encodeWithSelector(Vault.DailyLimitExceeded.selector, address(usdt), USDT_DAILY, 2_100_000e6));
        vault.executeQueued("big");
        vm.warp(START + TIMELOCK + 25 hours);
        vault.executeQueued("big");
        vm.assertEq(usdt.balanceOf(recipient), 2_100_000e6, "recipient");
        vm.assertEq(vault.outflow(address(usdt)), 1_500_000e6, "outflow");
    }

    // ------------------------------------------------------------------ pause

    function test_Pause_StopsWithdrawalsUntilThreeSignersUnpause() public {
        queueLargeETH("queued");
        vm.prank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(Vault.Unauthorized.selector, address(0xBAD)));
        vault.pause();
        vm.prank(signerAddrs[0]); // a signer is not the guardian
        vm.expectRevert(abi.encodeWithSelector(Vault.Unauthorized.selector, signerAddrs[0]));
        vault.pause();

        vm.prank(guardian);
        vault.pause();
        vm.assertTrue(vault.paused(), "paused");
        Vault.Withdrawal memory w = withdrawal("paused", address(0), 1 ether);
        bytes[] memory sigs = sign3(w);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vault.withdraw(w, sigs);
        vm.warp(START + TIMELOCK);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vault.executeQueued("queued");

        // the guardian cannot unpause; two signers cannot either
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 digest = unpauseDigest(address(vault), 0, deadline);
        vm.prank(guardian);
        vm.expectRevert(abi.encodeWithSelector(Vault.WrongSignatureCount.selector, 0));
        vault.unpause(0, deadline, new bytes[](0));
        bytes[] memory two = sign(keys2(signerKeys[0], signerKeys[1]), digest);
        vm.expectRevert(abi.encodeWithSelector(Vault.WrongSignatureCount.selector, 2));
        vault.unpause(0, deadline, two);
        bytes[] memory three = sign(keys3(signerKeys[0], signerKeys[1], signerKeys[4]), digest);
        vault.unpause(0, deadline, three);
        vm.assertFalse(vault.paused(), "still paused");
        vm.assertEq(vault.adminNonce(), 1, "nonce");

        w.deadline = block.timestamp + 1 hours;
        vault.withdraw(w, sign3(w));
        vault.executeQueued("queued");
        vm.assertEq(recipient.balance, 1 ether + ETH_LARGE + 1, "recipient");
    }

    function test_Pause_CancelStillWorks() public {
        queueLargeETH("q");
        vm.prank(guardian);
        vault.pause();
        vm.prank(signerAddrs[1]);
        vault.cancelQueued("q");
        vm.assertEq(uint256(vault.status("q")), uint256(Vault.Status.Cancelled), "status");
    }

    // ------------------------------------------------------------------ reentrancy

    function test_Reentrancy_MaliciousTokenCannotWithdrawTwice() public {
        ReentrantToken evil = new ReentrantToken();
        fundToken(evil, 1000);
        Vault.Withdrawal memory w1 = withdrawal("evil-1", address(evil), 100);
        Vault.Withdrawal memory w2 = withdrawal("evil-2", address(evil), 100);
        // the token re-enters with a fully signed second withdrawal, and with the first one again
        evil.arm(address(vault), abi.encodeCall(Vault.withdraw, (w2, sign3(w2))));
        vault.withdraw(w1, sign3(w1));
        assertBlockedByGuard(evil.attempted(), evil.reentryOk(), evil.reentryResult());
        vm.assertEq(evil.balanceOf(recipient), 100, "paid once");
        vm.assertEq(uint256(vault.status("evil-2")), uint256(Vault.Status.None), "w2 consumed");

        // w2 itself is still good outside the reentrant call; now re-enter with executeQueued
        evil.arm(address(vault), abi.encodeCall(Vault.executeQueued, ("evil-1")));
        vault.withdraw(w2, sign3(w2));
        assertBlockedByGuard(evil.attempted(), evil.reentryOk(), evil.reentryResult());
        vm.assertEq(evil.balanceOf(recipient), 200, "recipient");
        vm.assertEq(vault.holdings(address(evil)), 800, "holdings");
    }

    function test_Reentrancy_ETHRecipientCannotReenter() public {
        ReentrantReceiver evil = new ReentrantReceiver();
        queueLargeETH("big one");
        vm.warp(START + TIMELOCK);
        Vault.Withdrawal memory w = withdrawal("to evil", address(0), 1 ether);
        w.to = address(evil);
        evil.arm(address(vault), abi.encodeCall(Vault.executeQueued, ("big one")));
        vault.withdraw(w, sign3(w));
        assertBlockedByGuard(evil.attempted(), evil.reentryOk(), evil.reentryResult());
        vm.assertEq(address(evil).balance, 1 ether, "evil");
        vm.assertEq(uint256(vault.status("big one")), uint256(Vault.Status.Queued), "queued one executed");
    }

    function assertBlockedByGuard(bool attempted, bool ok, bytes memory result) internal pure {
        vm.assertTrue(attempted, "no reentry attempted");
        vm.assertFalse(ok, "reentrant call went through");
        vm.assertEq(
            keccak256(result),
            keccak256(abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector)),
            "not stopped by the reentrancy guard"
        );
    }
}
