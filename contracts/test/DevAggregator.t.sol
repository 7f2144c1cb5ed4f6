// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TestBase} from "./utils/TestBase.sol";
import {DevAggregator} from "../src/DevAggregator.sol";

contract DevAggregatorTest is TestBase {
    DevAggregator feed;

    function setUp() public {
        feed = new DevAggregator(8, "BTC / USD", 1, 1e20);
    }

    function test_UpdateIsTheNextRoundAnsweredNow() public {
        vm.warp(1_000);
        feed.update(65_000e8);
        (uint80 id, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredIn) = feed.latestRoundData();
        vm.assertEq(uint256(id), 1, "round");
        vm.assertEq(answer, 65_000e8, "answer");
        vm.assertEq(startedAt, 1_000, "startedAt");
        vm.assertEq(updatedAt, 1_000, "updatedAt");
        vm.assertEq(uint256(answeredIn), 1, "answeredInRound");
        feed.update(66_000e8);
        (id, answer,,,) = feed.latestRoundData();
        vm.assertEq(uint256(id), 2, "next round");
        (, answer,,,) = feed.getRoundData(1);
        vm.assertEq(answer, 65_000e8, "the first round is kept");
    }

    function test_SettersChooseEveryField() public {
        feed.setRound(7, -3, 11, 12);
        (uint80 id, int256 answer, uint256 startedAt, uint256 updatedAt,) = feed.latestRoundData();
        vm.assertEq(uint256(id), 7, "round");
        vm.assertEq(answer, -3, "answer");
        vm.assertEq(startedAt, 11, "startedAt");
        vm.assertEq(updatedAt, 12, "updatedAt");
        feed.setDecimals(18);
        vm.assertEq(uint256(feed.decimals()), 18, "decimals");
        feed.setBounds(5, 6);
        vm.assertEq(int256(feed.minAnswer()), 5, "min");
        vm.assertEq(int256(feed.maxAnswer()), 6, "max");
        vm.assertEq(feed.aggregator(), address(feed), "its own aggregator");
    }

    function test_RevertingFeedFailsEveryRead() public {
        feed.update(1);
        feed.setReverting(true);
        vm.expectRevert(DevAggregator.Reverting.selector);
        feed.latestRoundData();
    }

    function test_OnlyOwnerSets() public {
        vm.prank(address(0xBAD));
        vm.expectRevert(DevAggregator.NotOwner.selector);
        feed.update(1);
    }
}
