// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {VaultSetup} from "./utils/VaultSetup.sol";
import {Vault} from "../src/Vault.sol";
import {EscapeHatch} from "../src/EscapeHatch.sol";

contract VaultAdminTest is VaultSetup {
    event SignersChanged(address[5] signers);
    event LimitsChanged(address indexed token, uint256 largeThreshold, uint256 dailyLimit, bool refuseFeeTokens);
    event GuardianChanged(address guardian);
    event WithdrawalInvalidated(bytes32 id, address signer);

    uint256[5] internal newKeys;
    address[5] internal newAddrs;

    function setUp() public override {
        super.setUp();
        // the new set keeps signers 3 and 4 and brings three new ones
        newKeys[0] = signerKeys[3];
        newKeys[1] = signerKeys[4];
        for (uint256 i = 2; i < 5; ++i) {
            newKeys[i] = uint256(keccak256(abi.encode("new signer", i)));
        }
        for (uint256 i; i < 5; ++i) {
            newAddrs[i] = vm.addr(newKeys[i]);
        }
        fundETH(10 ether);
    }

    function signChange(uint256[] memory keys, address[5] memory s, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes[] memory)
    {
        return sign(keys, changeSignersDigest(address(vault), s, nonce, deadline));
    }

    // ------------------------------------------------------------------ signer change

    function test_ChangeSigners_ThreeOfFive() public {
        uint256 deadline = block.timestamp + 1 days;
        bytes[] memory sigs = signChange(keys3(signerKeys[0], signerKeys[2], signerKeys[4]), newAddrs, 0, deadline);
        vm.expectEmit(true, true, true, true, address(vault));
        emit SignersChanged(newAddrs);
        vault.changeSigners(newAddrs, 0, deadline, sigs);

        address[5] memory s = vault.signers();
        for (uint256 i; i < 5; ++i) {
            vm.assertEq(s[i], newAddrs[i], "new signer");
            vm.assertTrue(vault.isSigner(newAddrs[i]), "isSigner new");
        }
        for (uint256 i; i < 3; ++i) {
            vm.assertFalse(vault.isSigner(signerAddrs[i]), "old signer kept");
        }
        vm.assertEq(vault.adminNonce(), 1, "nonce");

        // old signers no longer sign withdrawals; the new ones do
        Vault.Withdrawal memory w = withdrawal("after change", address(0), 1 ether);
        bytes[] memory old = sign3(w);
        vm.expectPartialRevert(Vault.NotASigner.selector);
        vault.withdraw(w, old);
        vault.withdraw(w, sign(keys3(newKeys[0], newKeys[2], newKeys[3]), withdrawalDigest(address(vault), w)));
        vm.assertEq(recipient.balance, 1 ether, "paid");
    }

    function test_ChangeSigners_TwoRejected() public {
        uint256 deadline = block.timestamp + 1 days;
        bytes[] memory sigs = signChange(keys2(signerKeys[0], signerKeys[1]), newAddrs, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(Vault.WrongSignatureCount.selector, 2));
        vault.changeSigners(newAddrs, 0, deadline, sigs);
        // two current signers and one of the incoming ones are not three current signers
        sigs = signChange(keys3(signerKeys[0], signerKeys[1], newKeys[2]), newAddrs, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(Vault.NotASigner.selector, newAddrs[2]));
        vault.changeSigners(newAddrs, 0, deadline, sigs);
        vm.assertTrue(vault.isSigner(signerAddrs[0]), "changed");
    }

    function test_ChangeSigners_ReplayAndNonce() public {
        uint256 deadline = block.timestamp + 1 days;
        bytes[] memory sigs = signChange(signersKeys(3), newAddrs, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(Vault.WrongNonce.selector, 0, 1));
        vault.changeSigners(newAddrs, 1, deadline, sigs);
        vault.changeSigners(newAddrs, 0, deadline, sigs);
        vm.expectRevert(abi.encodeWithSelector(Vault.WrongNonce.selector, 1, 0));
        vault.changeSigners(newAddrs, 0, deadline, sigs);
    }

    function test_ChangeSigners_Expired() public {
        uint256 deadline = block.timestamp + 1 days;
        bytes[] memory sigs = signChange(signersKeys(3), newAddrs, 0, deadline);
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.Expired.selector, deadline));
        vault.changeSigners(newAddrs, 0, deadline, sigs);
    }

    function test_ChangeSigners_SignaturesBindTheNewSet() public {
        uint256 deadline = block.timestamp + 1 days;
        bytes[] memory sigs = signChange(signersKeys(3), newAddrs, 0, deadline);
        address[5] memory other = newAddrs;
        other[4] = address(0xE11E);
        vm.expectPartialRevert(Vault.NotASigner.selector);
        vault.changeSigners(other, 0, deadline, sigs);
    }

    function test_ChangeSigners_InvalidSetRejected() public {
        uint256 deadline = block.timestamp + 1 days;
        address[5] memory dup = newAddrs;
        dup[4] = dup[0];
        bytes[] memory sigs = signChange(signersKeys(3), dup, 0, deadline);
        vm.expectRevert(Vault.InvalidSignerSet.selector);
        vault.changeSigners(dup, 0, deadline, sigs);
        address[5] memory zero = newAddrs;
        zero[2] = address(0);
        sigs = signChange(signersKeys(3), zero, 0, deadline);
        vm.expectRevert(Vault.InvalidSignerSet.selector);
        vault.changeSigners(zero, 0, deadline, sigs);
        vm.assertEq(vault.adminNonce(), 0, "nonce used by a failure");
    }

    /// ETH withdrawals above 1 ether are time-locked (admin nonce 0 used); returns the next nonce.
    function timelockAboveOneEther() internal returns (uint256 nonce) {
        Vault.TokenConfig memory c = Vault.TokenConfig(address(0), 1 ether, 0, false);
        uint256 deadline = block.timestamp + 1 days;
        vault.configure(c, 0, deadline, sign(signersKeys(3), configureDigest(address(vault), c, 0, deadline)));
        return 1;
    }

    function queueSignedBy(bytes32 id, uint256[] memory keys) internal returns (Vault.Withdrawal memory w) {
        w = withdrawal(id, address(0), 2 ether);
        vm.assertFalse(vault.withdraw(w, sign(keys, withdrawalDigest(address(vault), w))), "paid at once");
    }

    function test_ChangeSigners_InvalidatesQueuedWithdrawalsOfDepartedSigners() public {
        uint256 nonce = timelockAboveOneEther();
        queueSignedBy("queued", keys3(signerKeys[0], signerKeys[1], signerKeys[2]));
        (,, uint32 epoch,,,,) = vault.queued("queued");
        vm.assertEq(epoch, 0, "epoch");
        uint256 deadline = block.timestamp + 1 days;
        vault.changeSigners(newAddrs, nonce, deadline, signChange(signersKeys(3), newAddrs, nonce, deadline));
        vm.assertEq(vault.signerEpoch(), 1, "epoch after the change");
        vm.assertEq(vault.signersAt(0)[0], signerAddrs[0], "the old set is kept");
        // a removed signer can no longer cancel
        vm.prank(signerAddrs[0]);
        vm.expectRevert(abi.encodeWithSelector(Vault.Unauthorized.selector, signerAddrs[0]));
        vault.cancelQueued("queued");
        // signers 0, 1 and 2 approved it and left: executing it cancels it, paying nothing
        vm.warp(block.timestamp + TIMELOCK);
        vm.expectEmit(true, true, true, true, address(vault));
        emit WithdrawalInvalidated("queued", signerAddrs[0]);
        vm.prank(address(0xA11)); // anyone may call it
        vault.executeQueued("queued");
        vm.assertEq(uint256(vault.status("queued")), uint256(Vault.Status.Cancelled), "status");
        vm.assertEq(recipient.balance, 0, "paid after its signers left");
        vm.assertEq(vault.holdings(address(0)), 10 ether, "holdings");
        vm.expectRevert(abi.encodeWithSelector(Vault.NotQueued.selector, bytes32("queued")));
        vault.executeQueued("queued");
    }

    function test_ChangeSigners_InvalidationNeedsNoTimelock() public {
        uint256 nonce = timelockAboveOneEther();
        queueSignedBy("queued", keys3(signerKeys[0], signerKeys[3], signerKeys[4]));
        uint256 deadline = block.timestamp + 1 days;
        vault.changeSigners(newAddrs, nonce, deadline, signChange(signersKeys(3), newAddrs, nonce, deadline));
        // signer 0 left, 3 and 4 stay: one departed approver is enough, and nobody waits for the time-lock
        vm.expectEmit(true, true, true, true, address(vault));
        emit WithdrawalInvalidated("queued", signerAddrs[0]);
        vault.executeQueued("queued");
        vm.assertEq(uint256(vault.status("queued")), uint256(Vault.Status.Cancelled), "status");
    }

    function test_ChangeSigners_QueuedWithdrawalOfRemainingSignersStillPays() public {
        uint256 nonce = timelockAboveOneEther();
        queueSignedBy("kept", keys3(signerKeys[2], signerKeys[3], signerKeys[4]));
        queueSignedBy("dropped", keys3(signerKeys[1], signerKeys[2], signerKeys[3]));
        // the new set keeps signers 2, 3 and 4 (in other positions) and brings two new ones
        address[5] memory next = [newAddrs[2], signerAddrs[4], signerAddrs[2], newAddrs[3], signerAddrs[3]];
        uint256 deadline = block.timestamp + 1 days;
        vault.changeSigners(next, nonce, deadline, signChange(signersKeys(3), next, nonce, deadline));
        vm.expectRevert(
            abi.encodeWithSelector(Vault.TimelockActive.selector, bytes32("kept"), block.timestamp + TIMELOCK)
        );
        vault.executeQueued("kept");
        vm.warp(block.timestamp + TIMELOCK);
        vault.executeQueued("kept");
        vm.assertEq(recipient.balance, 2 ether, "paid");
        vm.expectEmit(true, true, true, true, address(vault));
        emit WithdrawalInvalidated("dropped", signerAddrs[1]);
        vault.executeQueued("dropped");
        vm.assertEq(recipient.balance, 2 ether, "the invalidated one paid");
        // a second change: what the second set approved is judged against that set
        queueSignedBy("second set", keys3(signerKeys[2], signerKeys[4], newKeys[2]));
        (,, uint32 epoch,,,,) = vault.queued("second set");
        vm.assertEq(epoch, 1, "epoch");
        address[5] memory third = [newAddrs[2], signerAddrs[4], signerAddrs[2], newAddrs[3], newAddrs[4]];
        deadline = block.timestamp + 1 days;
        vault.changeSigners(third, nonce + 1, deadline, signChange(keys3(signerKeys[2], signerKeys[3], signerKeys[4]),
            third, nonce + 1, deadline));
        vm.warp(block.timestamp + TIMELOCK);
        vault.executeQueued("second set");
        vm.assertEq(recipient.balance, 4 ether, "paid by the signers who stayed");
    }

    // ------------------------------------------------------------------ configure, guardian

    function test_Configure() public {
        Vault.TokenConfig memory c = Vault.TokenConfig(address(wbtc), 5e8, 20e8, true);
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 digest = configureDigest(address(vault), c, 0, deadline);
        bytes[] memory two = sign(keys2(signerKeys[1], signerKeys[2]), digest);
        vm.expectRevert(abi.encodeWithSelector(Vault.WrongSignatureCount.selector, 2));
        vault.configure(c, 0, deadline, two);

        bytes[] memory sigs = sign(keys3(signerKeys[1], signerKeys[2], signerKeys[3]), digest);
        vm.expectEmit(true, true, true, true, address(vault));
        emit LimitsChanged(address(wbtc), 5e8, 20e8, true);
        vault.configure(c, 0, deadline, sigs);
        vm.assertEq(vault.largeThreshold(address(wbtc)), 5e8, "large");
        vm.assertEq(vault.dailyLimit(address(wbtc)), 20e8, "daily");
        vm.assertTrue(vault.refuseFeeTokens(address(wbtc)), "refuse");
        vm.expectRevert(abi.encodeWithSelector(Vault.WrongNonce.selector, 1, 0));
        vault.configure(c, 0, deadline, sigs);

        // signatures for one token's settings do not configure another token
        Vault.TokenConfig memory other = Vault.TokenConfig(address(usdt), 0, 0, false);
        bytes[] memory sigs1 = sign(signersKeys(3), configureDigest(address(vault), c, 1, deadline));
        vm.expectPartialRevert(Vault.NotASigner.selector);
        vault.configure(other, 1, deadline, sigs1);
    }

    function test_SetGuardian() public {
        address g = address(0x9A4D);
        uint256 deadline = block.timestamp + 1 hours;
        bytes[] memory sigs = sign(signersKeys(3), setGuardianDigest(address(vault), g, 0, deadline));
        vm.expectEmit(true, true, true, true, address(vault));
        emit GuardianChanged(g);
        vault.setGuardian(g, 0, deadline, sigs);
        vm.assertEq(vault.guardian(), g, "guardian");
        vm.prank(guardian);
        vm.expectRevert(abi.encodeWithSelector(Vault.Unauthorized.selector, guardian));
        vault.pause();
        vm.prank(g);
        vault.pause();
        vm.expectRevert(EscapeHatch.ZeroAddress.selector);
        vault.setGuardian(address(0), 1, deadline, sigs);
    }

    function test_AdminCallsWorkWhilePaused() public {
        vm.prank(guardian);
        vault.pause();
        uint256 deadline = block.timestamp + 1 hours;
        vault.changeSigners(newAddrs, 0, deadline, signChange(signersKeys(3), newAddrs, 0, deadline));
        uint256[] memory k = new uint256[](3);
        (k[0], k[1], k[2]) = (newKeys[0], newKeys[1], newKeys[2]);
        vault.unpause(1, deadline, sign(k, unpauseDigest(address(vault), 1, deadline)));
        vm.assertFalse(vault.paused(), "paused");
    }

    // ------------------------------------------------------------------ constructor

    function test_Constructor_Rejects() public {
        Vault.TokenConfig[] memory none = new Vault.TokenConfig[](0);
        address[5] memory s = signerAddrs;
        s[3] = s[1];
        vm.expectRevert(Vault.InvalidSignerSet.selector);
        new Vault(s, guardian, TIMELOCK, GRACE, SILENCE, none);
        s = signerAddrs;
        s[0] = address(0);
        vm.expectRevert(Vault.InvalidSignerSet.selector);
        new Vault(s, guardian, TIMELOCK, GRACE, SILENCE, none);
        vm.expectRevert(EscapeHatch.ZeroAddress.selector);
        new Vault(signerAddrs, address(0), TIMELOCK, GRACE, SILENCE, none);
        vm.expectRevert(abi.encodeWithSelector(Vault.InvalidTimelock.selector, 31 days));
        new Vault(signerAddrs, guardian, 31 days, GRACE, SILENCE, none);
    }

    function test_Constructor_ZeroTimelockPaysQueuedAtOnce() public {
        Vault.TokenConfig[] memory c = new Vault.TokenConfig[](1);
        c[0] = Vault.TokenConfig(address(0), 1 ether, 0, false);
        Vault v = new Vault(signerAddrs, guardian, 0, GRACE, SILENCE, c);
        vm.deal(user, 5 ether);
        vm.prank(user);
        v.depositETH{value: 5 ether}(1);
        Vault.Withdrawal memory w = withdrawal("q0", address(0), 2 ether);
        vm.assertFalse(v.withdraw(w, sign(signersKeys(3), withdrawalDigest(address(v), w))), "paid");
        v.executeQueued("q0");
        vm.assertEq(recipient.balance, 2 ether, "paid");
    }
}
