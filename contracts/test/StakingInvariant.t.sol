// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TestBase, CheatBase} from "./utils/TestBase.sol";
import {DPGToken} from "../src/DPGToken.sol";
import {DevToken} from "../src/DevToken.sol";
import {Staking} from "../src/Staking.sol";

/// Drives Staking with random stakes, withdrawals, claims, rewards (some during a running
/// period, some with nothing staked) and time, keeping ghost totals.
contract StakingHandler is CheatBase {
    DPGToken public immutable dpg;
    DevToken public immutable usdt; // 6 decimals: the accounting does not depend on them
    Staking public immutable staking;
    address[3] public actors = [address(0x1001), address(0x1002), address(0x1003)];

    mapping(address actor => uint256) public ghostStake;
    uint256 public ghostNotified;
    uint256 public ghostPaid;
    uint256 public stakes;
    uint256 public withdrawals;
    uint256 public claims;
    uint256 public notifies;

    constructor() {
        dpg = new DPGToken(1_000_000_000e18);
        usdt = new DevToken("Tether USD (test)", "USDT", 6);
        staking = new Staking(dpg, usdt, address(this), 0);
        for (uint256 i; i < actors.length; ++i) {
            dpg.transfer(actors[i], 100_000_000e18);
            vm.prank(actors[i]);
            dpg.approve(address(staking), type(uint256).max);
        }
    }

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    function stake(uint256 who, uint256 amount) external {
        address actor = actors[who % actors.length];
        amount = bound(amount, 1, dpg.balanceOf(actor));
        vm.prank(actor);
        staking.stake(amount);
        ghostStake[actor] += amount;
        ++stakes;
    }

    function withdraw(uint256 who, uint256 amount) external {
        address actor = actors[who % actors.length];
        if (ghostStake[actor] == 0) return;
        amount = bound(amount, 1, ghostStake[actor]);
        vm.prank(actor);
        staking.withdraw(amount);
        ghostStake[actor] -= amount;
        ++withdrawals;
    }

    function claim(uint256 who) external {
        address actor = actors[who % actors.length];
        uint256 before = usdt.balanceOf(actor);
        vm.prank(actor);
        staking.getReward();
        ghostPaid += usdt.balanceOf(actor) - before;
        ++claims;
    }

    function notify(uint256 amount) external {
        amount = bound(amount, 0, 10_000_000e6);
        usdt.mint(address(staking), amount);
        staking.notifyRewardAmount(amount);
        ghostNotified += amount;
        ++notifies;
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 10 days));
    }
}

contract StakingInvariantTest is TestBase {
    StakingHandler internal handler;

    function setUp() public {
        handler = new StakingHandler();
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](5);
        selectors[0] = StakingHandler.stake.selector;
        selectors[1] = StakingHandler.withdraw.selector;
        selectors[2] = StakingHandler.claim.selector;
        selectors[3] = StakingHandler.notify.selector;
        selectors[4] = StakingHandler.warp.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    function invariant_totalStakedIsSumOfStakes() public view {
        Staking staking = handler.staking();
        uint256 sum;
        uint256 ghostSum;
        for (uint256 i; i < handler.actorCount(); ++i) {
            address actor = handler.actors(i);
            sum += staking.staked(actor);
            ghostSum += handler.ghostStake(actor);
            vm.assertEq(staking.staked(actor), handler.ghostStake(actor), "stake of an actor");
        }
        vm.assertEq(staking.totalStaked(), sum, "total = sum of stakes");
        vm.assertEq(sum, ghostSum, "sum = ghost sum");
        vm.assertEq(handler.dpg().balanceOf(address(staking)), sum, "DPG held = total staked");
    }

    function invariant_rewardsPaidNeverExceedNotified() public view {
        Staking staking = handler.staking();
        vm.assertLe(handler.ghostPaid(), handler.ghostNotified(), "paid <= notified");
        vm.assertEq(staking.rewardsPaid(), handler.ghostPaid(), "paid as counted");
        vm.assertEq(staking.rewardsNotified(), handler.ghostNotified(), "notified as counted");
        // what is owed to the stakers is held
        uint256 owed;
        for (uint256 i; i < handler.actorCount(); ++i) {
            owed += staking.earned(handler.actors(i));
        }
        vm.assertLe(owed + handler.ghostPaid(), handler.ghostNotified(), "earned + paid <= notified");
        vm.assertGe(handler.usdt().balanceOf(address(staking)), owed, "owed rewards are held");
    }
}
