// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {VaultSetup} from "./utils/VaultSetup.sol";
import {Vault} from "../src/Vault.sol";
import {EscapeHatch} from "../src/EscapeHatch.sol";
import {DevToken} from "../src/DevToken.sol";
import {ReentrantToken} from "./mocks/Reentrant.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

contract VaultDepositTest is VaultSetup {
    event Deposit(bytes32 indexed depositId, uint64 indexed account, address indexed token, uint256 amount);

    function expectedDepositId(uint256 nonce) internal view returns (bytes32) {
        return keccak256(abi.encode(block.chainid, address(vault), nonce));
    }

    function test_DepositETH() public {
        vm.deal(user, 3 ether);
        vm.expectEmit(true, true, true, true, address(vault));
        emit Deposit(expectedDepositId(0), 42, address(0), 3 ether);
        vm.prank(user);
        bytes32 id = vault.depositETH{value: 3 ether}(42);
        vm.assertEq(id, expectedDepositId(0), "returned id");
        vm.assertEq(vault.holdings(address(0)), 3 ether, "holdings");
        vm.assertEq(vault.depositNonce(), 1, "nonce");
    }

    function test_DepositETH_RejectsZeroAmount() public {
        vm.expectRevert(Vault.ZeroAmount.selector);
        vault.depositETH{value: 0}(42);
    }

    function test_DepositETH_RejectsZeroAccount() public {
        vm.deal(user, 1 ether);
        vm.prank(user);
        vm.expectRevert(Vault.ZeroAccount.selector);
        vault.depositETH{value: 1 ether}(0);
    }

    function test_PlainETHTransferRefused() public {
        vm.deal(user, 1 ether);
        vm.prank(user);
        (bool ok,) = address(vault).call{value: 1 ether}("");
        vm.assertFalse(ok, "plain transfer accepted");
        vm.assertEq(vault.holdings(address(0)), 0, "holdings");
    }

    function test_DepositToken() public {
        usdt.mint(user, 500e6);
        vm.startPrank(user);
        usdt.approve(address(vault), 500e6);
        vm.expectEmit(true, true, true, true, address(vault));
        emit Deposit(expectedDepositId(0), 9, address(usdt), 500e6);
        vault.depositToken(address(usdt), 500e6, 9);
        vm.stopPrank();
        vm.assertEq(vault.holdings(address(usdt)), 500e6, "holdings");
        vm.assertEq(usdt.balanceOf(user), 0, "user balance");
    }

    function test_DepositToken_Rejects() public {
        usdt.mint(user, 10e6);
        vm.startPrank(user);
        usdt.approve(address(vault), 10e6);
        vm.expectRevert(Vault.ZeroAmount.selector);
        vault.depositToken(address(usdt), 0, 9);
        vm.expectRevert(Vault.ZeroAccount.selector);
        vault.depositToken(address(usdt), 10e6, 0);
        vm.expectRevert(EscapeHatch.ZeroAddress.selector);
        vault.depositToken(address(0), 10e6, 9);
        vm.expectRevert(); // not approved for that much
        vault.depositToken(address(usdt), 11e6, 9);
        vm.stopPrank();
    }

    function test_DepositIdsAreUnique() public {
        vm.deal(user, 2 ether);
        wbtc.mint(user, 1e8);
        vm.startPrank(user);
        wbtc.approve(address(vault), 1e8);
        bytes32 a = vault.depositETH{value: 1 ether}(1);
        bytes32 b = vault.depositETH{value: 1 ether}(1);
        bytes32 c = vault.depositToken(address(wbtc), 1e8, 1);
        vm.stopPrank();
        vm.assertTrue(a != b && b != c && a != c, "ids repeat");
        vm.assertEq(c, expectedDepositId(2), "third id");

        // Another vault on the same chain never produces the same ids.
        Vault other = new Vault(signerAddrs, guardian, TIMELOCK, GRACE, SILENCE, new Vault.TokenConfig[](0));
        vm.deal(user, 1 ether);
        vm.prank(user);
        bytes32 d = other.depositETH{value: 1 ether}(1);
        vm.assertTrue(d != a, "same id in another vault");
    }

    function test_FeeToken_CreditedWhatArrived() public {
        feeCredited.mint(user, 1000 ether);
        vm.startPrank(user);
        feeCredited.approve(address(vault), 1000 ether);
        vm.expectEmit(true, true, true, true, address(vault));
        emit Deposit(expectedDepositId(0), 5, address(feeCredited), 990 ether);
        vault.depositToken(address(feeCredited), 1000 ether, 5);
        vm.stopPrank();
        vm.assertEq(vault.holdings(address(feeCredited)), 990 ether, "holdings");
    }

    function test_FeeToken_RefusedWhenConfigured() public {
        feeRefused.mint(user, 1000 ether);
        vm.startPrank(user);
        feeRefused.approve(address(vault), 1000 ether);
        vm.expectRevert(
            abi.encodeWithSelector(Vault.FeeOnTransferRefused.selector, address(feeRefused), 1000 ether, 990 ether)
        );
        vault.depositToken(address(feeRefused), 1000 ether, 5);
        vm.stopPrank();
        vm.assertEq(feeRefused.balanceOf(user), 1000 ether, "user keeps the tokens");
        vm.assertEq(vault.depositNonce(), 0, "no deposit");
    }

    function test_FeeToken_TooSmallToArrive() public {
        // 1 % of 1 rounds to 0: a 1-unit deposit of a fee token arrives whole
        feeCredited.mint(user, 1);
        vm.startPrank(user);
        feeCredited.approve(address(vault), 1);
        vault.depositToken(address(feeCredited), 1, 5);
        vm.stopPrank();
        vm.assertEq(vault.holdings(address(feeCredited)), 1, "holdings");
    }

    function test_Deposits_StopWhilePaused() public {
        vm.prank(guardian);
        vault.pause();
        vm.deal(user, 1 ether);
        vm.prank(user);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vault.depositETH{value: 1 ether}(1);
        usdt.mint(user, 1e6);
        vm.startPrank(user);
        usdt.approve(address(vault), 1e6);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vault.depositToken(address(usdt), 1e6, 1);
        vm.stopPrank();
    }

    function test_Deposit_ReentrancyViaTokenIsBlocked() public {
        ReentrantToken evil = new ReentrantToken();
        evil.mint(user, 100);
        evil.mint(address(evil), 100);
        // the token calls depositToken again (as itself) from inside transferFrom
        vm.prank(address(evil));
        evil.approve(address(vault), 100);
        evil.arm(address(vault), abi.encodeCall(Vault.depositToken, (address(evil), 50, 3)));
        vm.startPrank(user);
        evil.approve(address(vault), 100);
        vault.depositToken(address(evil), 100, 3);
        vm.stopPrank();
        vm.assertTrue(evil.attempted(), "no reentry attempted");
        vm.assertFalse(evil.reentryOk(), "reentrant deposit went through");
        vm.assertEq(
            keccak256(evil.reentryResult()),
            keccak256(abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector)),
            "not stopped by the reentrancy guard"
        );
        vm.assertEq(vault.depositNonce(), 1, "one deposit");
        vm.assertEq(vault.holdings(address(evil)), 100, "holdings");
    }

    function test_TokensAndViews() public view {
        vm.assertEq(usdt.decimals(), 6, "usdt decimals");
        vm.assertEq(wbtc.decimals(), 8, "wbtc decimals");
        vm.assertEq(vault.domainSeparator(), domainSeparatorFor(address(vault), block.chainid), "domain separator");
        address[5] memory s = vault.signers();
        for (uint256 i; i < 5; ++i) {
            vm.assertEq(s[i], signerAddrs[i], "signer");
            vm.assertTrue(vault.isSigner(signerAddrs[i]), "isSigner");
        }
        vm.assertEq(vault.guardian(), guardian, "guardian");
        vm.assertEq(vault.timelock(), TIMELOCK, "timelock");
        vm.assertEq(vault.largeThreshold(address(usdt)), USDT_LARGE, "large");
        vm.assertEq(vault.dailyLimit(address(usdt)), USDT_DAILY, "daily");
        vm.assertTrue(vault.refuseFeeTokens(address(feeRefused)), "refuse");
        vm.assertEq(vault.THRESHOLD(), 3, "threshold");
    }

    function test_DevTokenMintIsOpen() public {
        DevToken t = new DevToken("X", "X", 8);
        vm.prank(address(0xCAFE));
        t.mint(address(0xBEEF), 123);
        vm.assertEq(t.balanceOf(address(0xBEEF)), 123, "minted");
        vm.assertEq(t.totalSupply(), 123, "supply");
    }
}
