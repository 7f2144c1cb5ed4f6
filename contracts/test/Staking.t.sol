// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TestBase} from "./utils/TestBase.sol";
import {DPGToken} from "../src/DPGToken.sol";
import {DevToken} from "../src/DevToken.sol";
import {Staking} from "../src/Staking.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

contract StakingTest is TestBase {
    DPGToken internal dpg;
    DevToken internal reward; // 18 decimals here; the accounting does not look at decimals
    Staking internal staking;
    address internal constant ALICE = address(0xA11CE);
    address internal constant BOB = address(0xB0B);

    uint256 internal constant REWARD = 5_000e18;
    uint256 internal constant WEEK = 604_800;

    function setUp() public {
        dpg = new DPGToken(1_000_000e18);
        reward = new DevToken("Reward (test)", "RWD", 18);
        staking = new Staking(dpg, reward, address(this), 2_000);
        dpg.transfer(ALICE, 1_000e18);
        dpg.transfer(BOB, 1_000e18);
        vm.prank(ALICE);
        dpg.approve(address(staking), type(uint256).max);
        vm.prank(BOB);
        dpg.approve(address(staking), type(uint256).max);
    }

    function _stake(address who, uint256 amount) internal {
        vm.prank(who);
        staking.stake(amount);
    }

    function _notify(uint256 amount) internal {
        reward.mint(address(staking), amount);
        staking.notifyRewardAmount(amount);
    }

    function _approx(uint256 left, uint256 right, uint256 maxDelta, string memory err) internal pure {
        vm.assertLe(left > right ? left - right : right - left, maxDelta, err);
    }

    function test_RewardRateOfFiveThousandOverAWeek() public {
        vm.assertEq(staking.rewardsDuration(), WEEK, "default period");
        _notify(REWARD);
        vm.assertEq(staking.rewardRate(), 8_267_195_767_195_767, "rate");
        vm.assertEq(staking.periodFinish(), block.timestamp + WEEK, "finish");
        vm.assertEq(staking.unallocated(), REWARD - 8_267_195_767_195_767 * WEEK, "rounding kept");
    }

    function test_OneStakerEarnsOneDay() public {
        _stake(ALICE, 100e18);
        _notify(REWARD);
        vm.warp(block.timestamp + 86_400);
        vm.assertEq(staking.earned(ALICE), 714_285_714_285_714_268_800, "earned after a day");
        vm.prank(ALICE);
        staking.getReward();
        vm.assertEq(reward.balanceOf(ALICE), 714_285_714_285_714_268_800, "paid");
        vm.assertEq(staking.earned(ALICE), 0, "nothing left");
        vm.assertEq(staking.rewardsPaid(), 714_285_714_285_714_268_800, "paid total");
    }

    function test_TwoEqualPeriodsPayTwiceTheFirst() public {
        _stake(ALICE, 100e18);
        _notify(REWARD);
        vm.warp(block.timestamp + WEEK);
        uint256 first = staking.earned(ALICE);
        vm.assertTrue(first > 0, "first period paid");
        _notify(REWARD);
        vm.warp(block.timestamp + WEEK);
        vm.assertEq(staking.earned(ALICE), 2 * first, "twice the first");
        // and no more accrues after the period
        vm.warp(block.timestamp + WEEK);
        vm.assertEq(staking.earned(ALICE), 2 * first, "stops at the end");
    }

    function test_TwoStakersShareByStakeAndTime() public {
        _stake(ALICE, 100e18);
        _notify(REWARD);
        vm.warp(block.timestamp + 86_400);
        _stake(BOB, 300e18);
        vm.warp(block.timestamp + 86_400);
        uint256 rate = staking.rewardRate();
        // day 1: all to Alice; day 2: a quarter to Alice, three quarters to Bob
        _approx(staking.earned(ALICE), rate * 86_400 + rate * 86_400 / 4, 1e6, "alice");
        _approx(staking.earned(BOB), rate * 86_400 * 3 / 4, 1e6, "bob");
    }

    function test_RewardAboveBalanceIsRefused() public {
        reward.mint(address(staking), REWARD);
        vm.expectRevert(abi.encodeWithSelector(Staking.RewardTooHigh.selector, REWARD + 1, REWARD));
        staking.notifyRewardAmount(REWARD + 1);
        staking.notifyRewardAmount(REWARD);
        // the same tokens cannot back a second reward
        vm.expectRevert(abi.encodeWithSelector(Staking.RewardTooHigh.selector, 2 * REWARD, REWARD));
        staking.notifyRewardAmount(REWARD);
    }

    function test_NewRewardDuringPeriodAddsToWhatRemains() public {
        _stake(ALICE, 100e18);
        _notify(REWARD);
        uint256 rate1 = staking.rewardRate();
        vm.warp(block.timestamp + 3 days);
        _notify(REWARD);
        uint256 remaining = (WEEK - 3 days) * rate1;
        uint256 total = REWARD + remaining + (REWARD - rate1 * WEEK);
        vm.assertEq(staking.rewardRate(), total / WEEK, "rate of remainder plus new");
        vm.warp(block.timestamp + WEEK);
        // everything notified reaches the only staker, but for rounding
        _approx(staking.earned(ALICE), 2 * REWARD, 2 * WEEK, "all paid out");
        vm.assertLe(staking.earned(ALICE), 2 * REWARD, "never more");
    }

    function test_RewardForTimeWithNothingStakedRollsIntoNextReward() public {
        _notify(REWARD);
        vm.warp(block.timestamp + 1 days);
        _stake(ALICE, 100e18);
        vm.warp(block.timestamp + WEEK);
        uint256 rate = staking.rewardRate();
        vm.assertEq(staking.earned(ALICE), rate * (WEEK - 1 days), "six days");
        uint256 kept = staking.unallocated();
        vm.assertEq(kept, REWARD - rate * (WEEK - 1 days), "the idle day and rounding are kept");
        // a reward of 0 re-spreads what was kept
        staking.notifyRewardAmount(0);
        vm.warp(block.timestamp + WEEK);
        _approx(staking.earned(ALICE), REWARD, WEEK, "the whole reward reaches stakers");
        vm.assertLe(staking.earned(ALICE), REWARD, "never more");
    }

    function test_ReceiptIsNotTransferable() public {
        _stake(ALICE, 100e18);
        vm.assertEq(staking.balanceOf(ALICE), 100e18, "receipt");
        vm.prank(ALICE);
        vm.expectRevert(Staking.NonTransferable.selector);
        staking.transfer(BOB, 1);
        vm.prank(ALICE);
        staking.approve(BOB, 1);
        vm.prank(BOB);
        vm.expectRevert(Staking.NonTransferable.selector);
        staking.transferFrom(ALICE, BOB, 1);
    }

    function test_StakerVotesFromFirstStakeWithoutDelegating() public {
        vm.assertEq(keccak256(bytes(staking.CLOCK_MODE())), keccak256("mode=timestamp"), "clock");
        vm.assertEq(staking.delegates(ALICE), address(0), "not delegated");
        _stake(ALICE, 100e18);
        vm.assertEq(staking.delegates(ALICE), ALICE, "self-delegated");
        vm.assertEq(staking.getVotes(ALICE), 100e18, "votes");
        // a receipt delegated elsewhere stays so on the next stake
        vm.prank(ALICE);
        staking.delegate(BOB);
        _stake(ALICE, 50e18);
        vm.assertEq(staking.getVotes(BOB), 150e18, "kept delegate");
        vm.assertEq(staking.getVotes(ALICE), 0, "moved");
        vm.prank(ALICE);
        staking.withdraw(150e18);
        vm.assertEq(staking.getVotes(BOB), 0, "withdrawn votes leave");
        vm.assertEq(dpg.balanceOf(ALICE), 1_000e18, "stake returned");
    }

    function test_ExitReturnsStakeAndReward() public {
        _stake(ALICE, 100e18);
        _notify(REWARD);
        vm.warp(block.timestamp + 86_400);
        vm.prank(ALICE);
        staking.exit();
        vm.assertEq(dpg.balanceOf(ALICE), 1_000e18, "stake");
        vm.assertEq(reward.balanceOf(ALICE), 714_285_714_285_714_268_800, "reward");
        vm.assertEq(staking.totalStaked(), 0, "empty");
    }

    function test_OwnerGovernsParameters() public {
        vm.assertEq(staking.feeShareBps(), 2_000, "initial share");
        staking.setFeeShareBps(5_000);
        vm.assertEq(staking.feeShareBps(), 5_000, "share");
        vm.expectRevert(abi.encodeWithSelector(Staking.InvalidShare.selector, 10_001));
        staking.setFeeShareBps(10_001);

        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, ALICE));
        staking.setFeeShareBps(1);
        vm.prank(ALICE);
        vm.expectRevert(Staking.NotRewardsNotifier.selector);
        staking.notifyRewardAmount(0);

        staking.setRewardsDistributor(BOB);
        reward.mint(address(staking), REWARD);
        vm.prank(BOB);
        staking.notifyRewardAmount(REWARD);

        vm.expectRevert(Staking.RewardPeriodRunning.selector);
        staking.setRewardsDuration(14 days);
        vm.warp(block.timestamp + WEEK + 1);
        staking.setRewardsDuration(14 days);
        vm.assertEq(staking.rewardsDuration(), 14 days, "duration");
        vm.warp(block.timestamp + 1);
        vm.expectRevert(Staking.InvalidDuration.selector);
        staking.setRewardsDuration(0);
    }

    function test_RefusesRewardTokenEqualToStakedToken() public {
        vm.expectRevert(Staking.SameToken.selector);
        new Staking(dpg, dpg, address(this), 0);
    }
}
