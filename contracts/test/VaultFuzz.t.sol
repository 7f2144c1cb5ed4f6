// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {VaultSetup} from "./utils/VaultSetup.sol";
import {Vault} from "../src/Vault.sol";

contract VaultFuzzTest is VaultSetup {
    event Deposit(bytes32 indexed depositId, uint64 indexed account, address indexed token, uint256 amount);

    function testFuzz_DepositETH(uint256 amount, uint64 account) public {
        amount = bound(amount, 1, 1e30);
        account = uint64(bound(account, 1, type(uint64).max));
        vm.deal(user, amount);
        vm.expectEmit(true, true, true, true, address(vault));
        emit Deposit(keccak256(abi.encode(block.chainid, address(vault), uint256(0))), account, address(0), amount);
        vm.prank(user);
        vault.depositETH{value: amount}(account);
        vm.assertEq(vault.holdings(address(0)), amount, "holdings");
    }

    function testFuzz_DepositToken(uint256 amount, uint64 account, bool sixDecimals) public {
        amount = bound(amount, 1, 1e40);
        account = uint64(bound(account, 1, type(uint64).max));
        fundTokenAs(sixDecimals ? address(usdt) : address(wbtc), amount, account);
        vm.assertEq(vault.holdings(sixDecimals ? address(usdt) : address(wbtc)), amount, "holdings");
    }

    function fundTokenAs(address token, uint256 amount, uint64 account) internal {
        usdt.mint(user, token == address(usdt) ? amount : 0);
        wbtc.mint(user, token == address(wbtc) ? amount : 0);
        vm.startPrank(user);
        usdt.approve(address(vault), type(uint256).max);
        wbtc.approve(address(vault), type(uint256).max);
        vault.depositToken(token, amount, account);
        vm.stopPrank();
    }

    function testFuzz_FeeTokenCreditsWhatArrived(uint256 amount) public {
        amount = bound(amount, 1, 1e40);
        feeCredited.mint(user, amount);
        vm.startPrank(user);
        feeCredited.approve(address(vault), amount);
        uint256 arrives = amount - amount / 100;
        vm.expectEmit(true, true, true, true, address(vault));
        emit Deposit(keccak256(abi.encode(block.chainid, address(vault), uint256(0))), 3, address(feeCredited), arrives);
        vault.depositToken(address(feeCredited), amount, 3);
        vm.stopPrank();
        vm.assertEq(vault.holdings(address(feeCredited)), arrives, "holdings");
    }

    function testFuzz_FeeTokenRefused(uint256 amount) public {
        amount = bound(amount, 100, 1e40); // from 100 units on, the 1 % fee is at least 1
        feeRefused.mint(user, amount);
        vm.startPrank(user);
        feeRefused.approve(address(vault), amount);
        vm.expectPartialRevert(Vault.FeeOnTransferRefused.selector);
        vault.depositToken(address(feeRefused), amount, 3);
        vm.stopPrank();
    }

    /// Any amount: paid at once up to the threshold, queued above it, refused above holdings.
    function testFuzz_WithdrawAmount(uint256 held, uint256 amount) public {
        held = bound(held, 1, 1e30);
        amount = bound(amount, 1, 2e30);
        fundETH(held);
        Vault.Withdrawal memory w = withdrawal("fuzz", address(0), amount);
        bytes[] memory sigs = sign3(w);
        if (amount > ETH_LARGE) {
            vm.assertFalse(vault.withdraw(w, sigs), "large paid at once");
            vm.warp(block.timestamp + TIMELOCK);
            if (amount > held) {
                vm.expectRevert(abi.encodeWithSelector(Vault.InsufficientHoldings.selector, address(0), held, amount));
            }
            vault.executeQueued("fuzz");
        } else if (amount > held) {
            vm.expectRevert(abi.encodeWithSelector(Vault.InsufficientHoldings.selector, address(0), held, amount));
            vault.withdraw(w, sigs);
        } else {
            vm.assertTrue(vault.withdraw(w, sigs), "not paid");
        }
        uint256 paid = amount > held ? 0 : amount;
        vm.assertEq(recipient.balance, paid, "recipient");
        vm.assertEq(vault.holdings(address(0)), held - paid, "holdings");
    }

    /// Any subset of the 5 signers, in any order, plus maybe an outsider: accepted exactly when
    /// it is 3 or more distinct current signers, sorted, and nobody else.
    function testFuzz_SignerSubsets(uint8 mask, bool withOutsider, bool sorted, uint256 seed) public {
        fundETH(1 ether);
        uint256 count;
        for (uint256 i; i < 5; ++i) {
            if (mask & (1 << i) != 0) ++count;
        }
        uint256[] memory keys = new uint256[](count + (withOutsider ? 1 : 0));
        uint256 n;
        for (uint256 i; i < 5; ++i) {
            if (mask & (1 << i) != 0) keys[n++] = signerKeys[i];
        }
        if (withOutsider) keys[n++] = outsiderKey;
        // a random order (Fisher-Yates)
        for (uint256 i = keys.length; i > 1; --i) {
            uint256 j = uint256(keccak256(abi.encode(seed, i))) % i;
            (keys[i - 1], keys[j]) = (keys[j], keys[i - 1]);
        }
        if (sorted) keys = sortByAddress(keys);
        bool ascending = true;
        for (uint256 i = 1; i < keys.length; ++i) {
            if (vm.addr(keys[i - 1]) >= vm.addr(keys[i])) ascending = false;
        }

        Vault.Withdrawal memory w = withdrawal(bytes32(uint256(mask)), address(0), 1 ether);
        bytes[] memory sigs = signInOrder(keys, withdrawalDigest(address(vault), w));
        bool valid = keys.length >= 3 && keys.length <= 5 && !withOutsider && ascending;
        (bool ok,) = address(vault).call(abi.encodeCall(Vault.withdraw, (w, sigs)));
        vm.assertEq(ok, valid, "accepted != valid");
        vm.assertEq(recipient.balance, valid ? 1 ether : 0, "recipient");
    }

    /// Random USDT withdrawals (each by an account of its own) hours apart against the daily
    /// limit: paid while what was paid in the current hour and the 24 before it stays within it.
    function testFuzz_DailyLimit(uint256[8] memory amounts, uint256[8] memory gaps) public {
        fundToken(usdt, 20_000_000e6);
        uint256[8] memory paidAt;
        uint256[8] memory paid;
        uint256 n;
        for (uint256 i; i < amounts.length; ++i) {
            uint256 a = bound(amounts[i], 1, USDT_LARGE); // not time-locked
            vm.warp(block.timestamp + bound(gaps[i], 0, 10 hours));
            uint256 inWindow = paidWithin(paidAt, paid, n);
            Vault.Withdrawal memory w = withdrawal(bytes32(i + 1), address(usdt), a);
            w.account = uint64(100 + i);
            bytes[] memory sigs = sign3(w);
            if (inWindow + a > USDT_DAILY) {
                vm.expectPartialRevert(Vault.DailyLimitExceeded.selector);
                vault.withdraw(w, sigs);
            } else {
                vm.assertTrue(vault.withdraw(w, sigs), "queued");
                (paidAt[n], paid[n]) = (block.timestamp, a);
                ++n;
                inWindow += a;
            }
            vm.assertEq(vault.outflow(address(usdt)), inWindow, "outflow");
            vm.assertLe(inWindow, USDT_DAILY, "over the limit");
        }
    }

    /// Random ETH withdrawals of one account hours apart against the time-lock threshold: paid at
    /// once while the account's payments in the window stay within it, queued otherwise.
    function testFuzz_TimelockWindow(uint256[8] memory amounts, uint256[8] memory gaps) public {
        fundETH(1000 ether);
        uint256[8] memory paidAt;
        uint256[8] memory paid;
        uint256 n;
        for (uint256 i; i < amounts.length; ++i) {
            uint256 a = bound(amounts[i], 1, ETH_LARGE + 1);
            vm.warp(block.timestamp + bound(gaps[i], 0, 10 hours));
            uint256 inWindow = paidWithin(paidAt, paid, n);
            Vault.Withdrawal memory w = withdrawal(bytes32(i + 1), address(0), a);
            bool paidNow = vault.withdraw(w, sign3(w));
            vm.assertEq(paidNow, inWindow + a <= ETH_LARGE, "paid != within the threshold");
            if (paidNow) {
                (paidAt[n], paid[n]) = (block.timestamp, a);
                ++n;
                inWindow += a;
            }
            vm.assertEq(vault.accountOutflow(7, address(0)), inWindow, "account outflow");
        }
    }

    /// What was paid in the current hour and the 24 whole hours before it.
    function paidWithin(uint256[8] memory paidAt, uint256[8] memory paid, uint256 n) internal view returns (uint256 sum) {
        uint256 hour = block.timestamp / 1 hours;
        for (uint256 j; j < n; ++j) {
            if (paidAt[j] / 1 hours + 24 >= hour) sum += paid[j];
        }
    }
}
