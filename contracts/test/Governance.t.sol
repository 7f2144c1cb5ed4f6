// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TestBase} from "./utils/TestBase.sol";
import {DPGToken} from "../src/DPGToken.sol";
import {DevToken} from "../src/DevToken.sol";
import {Staking} from "../src/Staking.sol";
import {DPGGovernor} from "../src/DPGGovernor.sol";
import {DPGTimelock} from "../src/DPGTimelock.sol";
import {ExchangeParams} from "../src/ExchangeParams.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

contract GovernanceTest is TestBase {
    DPGToken internal dpg;
    DevToken internal usdt;
    Staking internal staking;
    DPGTimelock internal timelock;
    DPGGovernor internal governor;
    ExchangeParams internal params;

    address internal constant PROPOSER = address(0x9409);
    address internal constant FOR = address(0xF0);
    address internal constant ABSTAIN = address(0xAB);
    address internal constant AGAINST = address(0xA9);
    address internal constant HOLDER = address(0x401D); // never delegates
    address internal constant STAKER = address(0x57A4); // only stakes

    uint256 internal constant SUPPLY = 1_000_000e18;
    uint256 internal constant THRESHOLD = 1_000e18;
    bytes32 internal constant BTC_USDT = "BTC/USDT";

    function setUp() public {
        vm.warp(1_000_000);
        dpg = new DPGToken(SUPPLY);
        usdt = new DevToken("Tether USD (test)", "USDT", 6);
        staking = new Staking(dpg, usdt, address(this), 0);
        address[] memory none = new address[](0);
        address[] memory anyone = new address[](1); // address(0): anyone may execute
        timelock = new DPGTimelock(2 days, none, anyone, address(this));
        governor = new DPGGovernor(dpg, staking, timelock, THRESHOLD);
        timelock.grantRole(timelock.PROPOSER_ROLE(), address(governor));
        timelock.grantRole(timelock.CANCELLER_ROLE(), address(governor));
        timelock.renounceRole(timelock.DEFAULT_ADMIN_ROLE(), address(this));
        staking.transferOwnership(address(timelock));
        params = new ExchangeParams(address(timelock));

        _give(PROPOSER, THRESHOLD, true);
        vm.warp(block.timestamp + 1);
    }

    function _give(address to, uint256 amount, bool delegateToSelf) internal {
        dpg.transfer(to, amount);
        if (delegateToSelf) {
            vm.prank(to);
            dpg.delegate(to);
        }
    }

    function _setFeesProposal()
        internal
        view
        returns (address[] memory targets, uint256[] memory values, bytes[] memory calldatas)
    {
        targets = new address[](2);
        values = new uint256[](2);
        calldatas = new bytes[](2);
        targets[0] = address(params);
        calldatas[0] = abi.encodeCall(ExchangeParams.setFees, (BTC_USDT, 500, 1_000));
        targets[1] = address(staking);
        calldatas[1] = abi.encodeCall(Staking.setFeeShareBps, (3_000));
    }

    function _propose(string memory description) internal returns (uint256 id) {
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) = _setFeesProposal();
        vm.prank(PROPOSER);
        id = governor.propose(targets, values, calldatas, description);
        vm.warp(governor.proposalSnapshot(id) + 1);
    }

    function _vote(uint256 id, address voter, uint8 support) internal {
        vm.prank(voter);
        governor.castVote(id, support);
    }

    function _close(uint256 id) internal {
        vm.warp(governor.proposalDeadline(id) + 1);
    }

    function test_Settings() public view {
        vm.assertEq(governor.votingDelay(), 1 days, "delay");
        vm.assertEq(governor.votingPeriod(), 1 weeks, "period");
        vm.assertEq(governor.proposalThreshold(), THRESHOLD, "threshold");
        vm.assertEq(keccak256(bytes(governor.CLOCK_MODE())), keccak256("mode=timestamp"), "clock mode");
        vm.assertEq(uint256(governor.clock()), block.timestamp, "clock");
        vm.assertEq(governor.quorum(block.timestamp - 1), 40_000e18, "4 % of the supply");
        vm.assertEq(timelock.getMinDelay(), 2 days, "timelock delay");
        vm.assertTrue(timelock.hasRole(timelock.PROPOSER_ROLE(), address(governor)), "governor proposes");
        vm.assertTrue(timelock.hasRole(timelock.CANCELLER_ROLE(), address(governor)), "governor cancels");
        vm.assertTrue(timelock.hasRole(timelock.EXECUTOR_ROLE(), address(0)), "anyone executes");
        vm.assertFalse(timelock.hasRole(timelock.DEFAULT_ADMIN_ROLE(), address(this)), "no admin left");
        vm.assertEq(staking.owner(), address(timelock), "staking owned by timelock");
        vm.assertEq(params.owner(), address(timelock), "params owned by timelock");
    }

    function test_QuorumCountsForAndAbstain() public {
        _give(FOR, 30_000e18, true);
        _give(ABSTAIN, 10_000e18, true);
        uint256 id = _propose("fees: for 30,000 + abstain 10,000");
        _vote(id, FOR, 1);
        _vote(id, ABSTAIN, 2);
        _close(id);
        vm.assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Succeeded), "passes");
    }

    function test_QuorumMissedByOne() public {
        _give(FOR, 30_000e18, true);
        _give(ABSTAIN, 9_999e18, true);
        uint256 id = _propose("fees: for 30,000 + abstain 9,999");
        _vote(id, FOR, 1);
        _vote(id, ABSTAIN, 2);
        _close(id);
        vm.assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Defeated), "defeated");
    }

    function test_ForEqualToAgainstIsDefeated() public {
        _give(FOR, 30_000e18, true);
        _give(AGAINST, 30_000e18, true);
        _give(ABSTAIN, 10_000e18, true);
        uint256 id = _propose("fees: for = against");
        _vote(id, FOR, 1);
        _vote(id, AGAINST, 0);
        _vote(id, ABSTAIN, 2);
        _close(id);
        (uint256 against, uint256 for_, uint256 abstain) = governor.proposalVotes(id);
        vm.assertEq(for_, against, "tie");
        vm.assertTrue(for_ + abstain >= governor.quorum(governor.proposalSnapshot(id)), "quorum reached");
        vm.assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Defeated), "defeated");
    }

    function test_UndelegatedHolderHasNoVotesStakerHas() public {
        _give(HOLDER, 50_000e18, false);
        _give(STAKER, 20_000e18, false);
        vm.startPrank(STAKER);
        dpg.approve(address(staking), 20_000e18);
        staking.stake(20_000e18);
        vm.stopPrank();
        vm.warp(block.timestamp + 1);
        uint256 t = block.timestamp - 1;
        vm.assertEq(governor.getVotes(HOLDER, t), 0, "holder without delegation");
        vm.assertEq(governor.getVotes(STAKER, t), 20_000e18, "staker");
        vm.assertEq(dpg.getVotes(STAKER), 0, "no DPG left to vote with");

        uint256 id = _propose("fees: staker and holder vote");
        _vote(id, HOLDER, 1);
        _vote(id, STAKER, 1);
        (, uint256 for_,) = governor.proposalVotes(id);
        vm.assertEq(for_, 20_000e18, "only the staker's votes count");
        // staking after the snapshot adds nothing to this proposal
        _give(FOR, 30_000e18, false);
        vm.startPrank(FOR);
        dpg.approve(address(staking), 30_000e18);
        staking.stake(30_000e18);
        vm.stopPrank();
        _vote(id, FOR, 1);
        (, for_,) = governor.proposalVotes(id);
        vm.assertEq(for_, 20_000e18, "votes are read at the snapshot");
    }

    function test_ProposeNeedsThreshold() public {
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) = _setFeesProposal();
        vm.prank(HOLDER);
        vm.expectRevert(abi.encodeWithSelector(IGovernor.GovernorInsufficientProposerVotes.selector, HOLDER, 0, THRESHOLD));
        governor.propose(targets, values, calldatas, "no votes");
    }

    function test_ProposeVoteQueueExecuteThroughTimelock() public {
        _give(FOR, 50_000e18, true);
        string memory description = "BTC/USDT fees 500/1000 ppm; stakers 30 %";
        uint256 id = _propose(description);
        vm.assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Active), "active");
        _vote(id, FOR, 1);
        _close(id);
        vm.assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Succeeded), "succeeded");

        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) = _setFeesProposal();
        bytes32 descriptionHash = keccak256(bytes(description));
        governor.queue(targets, values, calldatas, descriptionHash);
        vm.assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Queued), "queued");

        // not before the timelock's 2 days
        vm.warp(block.timestamp + 2 days - 1);
        vm.expectRevert();
        governor.execute(targets, values, calldatas, descriptionHash);

        vm.warp(block.timestamp + 1);
        vm.expectEmit(true, true, true, true, address(params));
        emit ExchangeParams.FeesSet(1, BTC_USDT, 500, 1_000);
        governor.execute(targets, values, calldatas, descriptionHash);
        vm.assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Executed), "executed");
        vm.assertEq(uint256(params.lastChangeId()), 1, "change id");
        vm.assertEq(staking.feeShareBps(), 3_000, "stakers' share");

        // executed once only
        vm.expectRevert();
        governor.execute(targets, values, calldatas, descriptionHash);
        // nobody but the timelock changes the parameters
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        params.setFees(BTC_USDT, 0, 0);
    }

    function test_ExchangeParamsChangeIdsGrowByOne() public {
        ExchangeParams p = new ExchangeParams(address(this));
        vm.expectEmit(true, true, true, true, address(p));
        emit ExchangeParams.MarketListed(1, "ETH/USDT", "ETH", "USDT", 10_000, 1e15, 10e6, 1_000, 2_000);
        p.listMarket("ETH/USDT", "ETH", "USDT", 10_000, 1e15, 10e6, 1_000, 2_000);
        vm.expectEmit(true, true, true, true, address(p));
        emit ExchangeParams.MarketHalted(2, "ETH/USDT");
        p.haltMarket("ETH/USDT");
        vm.expectEmit(true, true, true, true, address(p));
        emit ExchangeParams.MarketResumed(3, "ETH/USDT");
        p.resumeMarket("ETH/USDT");
        vm.expectEmit(true, true, true, true, address(p));
        emit ExchangeParams.StakerShareSet(4, 2_500);
        p.setStakerShare(2_500);
        vm.expectEmit(true, true, true, true, address(p));
        emit ExchangeParams.FeesSet(5, "ETH/USDT", 0, 999_999);
        p.setFees("ETH/USDT", 0, 999_999);
        vm.assertEq(uint256(p.lastChangeId()), 5, "last id");

        vm.expectRevert(abi.encodeWithSelector(ExchangeParams.InvalidFee.selector, 1_000_000));
        p.setFees("ETH/USDT", 0, 1_000_000);
        vm.expectRevert(abi.encodeWithSelector(ExchangeParams.InvalidShare.selector, 10_001));
        p.setStakerShare(10_001);
        vm.expectRevert(ExchangeParams.InvalidSymbol.selector);
        p.haltMarket(bytes32(0));
        vm.expectRevert(ExchangeParams.InvalidMarket.selector);
        p.listMarket("ETH/ETH", "ETH", "ETH", 1, 1, 0, 0, 0);
        vm.expectRevert(ExchangeParams.InvalidMarket.selector);
        p.listMarket("ETH/USDT", "ETH", "USDT", 0, 1, 0, 0, 0);
        vm.assertEq(uint256(p.lastChangeId()), 5, "refused calls take no id");
    }
}
