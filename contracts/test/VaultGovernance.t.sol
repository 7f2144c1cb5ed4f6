// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscapeSetup} from "./utils/EscapeSetup.sol";
import {Vault} from "../src/Vault.sol";
import {EscapeHatch} from "../src/EscapeHatch.sol";
import {DPGToken} from "../src/DPGToken.sol";
import {Staking} from "../src/Staking.sol";
import {DPGGovernor} from "../src/DPGGovernor.sol";
import {DPGTimelock} from "../src/DPGTimelock.sol";

/// The vault's parameters under DPG governance: the timelock sets the per-token limits, the
/// guardian and the escape periods; the signers' configure and setGuardian are refused once the
/// vault has a governance (docs/governance.md, docs/escape-hatch.md).
contract VaultGovernanceTest is EscapeSetup {
    event LimitsChanged(address indexed token, uint256 largeThreshold, uint256 dailyLimit, bool refuseFeeTokens);
    event GuardianChanged(address guardian);
    event GovernanceSet(address governance);
    event EscapePeriodsChanged(uint256 forcedGrace, uint256 silencePeriod);

    DPGToken internal dpg;
    Staking internal staking;
    DPGTimelock internal timelock;
    DPGGovernor internal governor;

    address internal constant VOTER = address(0xF0);
    address internal constant NEW_GUARDIAN = address(0x9A4D);
    uint256 internal constant PROPOSAL_THRESHOLD = 1_000e18;

    function setUp() public override {
        super.setUp();
        dpg = new DPGToken(1_000_000e18);
        staking = new Staking(dpg, usdt, address(this), 0);
        address[] memory none = new address[](0);
        address[] memory anyone = new address[](1);
        timelock = new DPGTimelock(2 days, none, anyone, address(this));
        governor = new DPGGovernor(dpg, staking, timelock, PROPOSAL_THRESHOLD);
        timelock.grantRole(timelock.PROPOSER_ROLE(), address(governor));
        timelock.grantRole(timelock.CANCELLER_ROLE(), address(governor));
        timelock.renounceRole(timelock.DEFAULT_ADMIN_ROLE(), address(this));
        dpg.transfer(VOTER, 50_000e18); // above the 4 % quorum and the proposal threshold
        vm.prank(VOTER);
        dpg.delegate(VOTER);
        vm.warp(block.timestamp + 1);

        vm.expectEmit(true, true, true, true, address(vault));
        emit GovernanceSet(address(timelock));
        vault.setGovernance(address(timelock));
    }

    /// Propose `calldatas` on the vault, vote it through, queue it and wait out the timelock;
    /// then `execute` it.
    function passAndQueue(bytes[] memory calldatas, string memory description)
        internal
        returns (address[] memory targets, uint256[] memory values, bytes32 descriptionHash)
    {
        targets = new address[](calldatas.length);
        values = new uint256[](calldatas.length);
        for (uint256 i; i < calldatas.length; ++i) {
            targets[i] = address(vault);
        }
        vm.prank(VOTER);
        uint256 id = governor.propose(targets, values, calldatas, description);
        vm.warp(governor.proposalSnapshot(id) + 1);
        vm.prank(VOTER);
        governor.castVote(id, 1);
        vm.warp(governor.proposalDeadline(id) + 1);
        descriptionHash = keccak256(bytes(description));
        governor.queue(targets, values, calldatas, descriptionHash);
        vm.warp(block.timestamp + 2 days);
    }

    // ------------------------------------------------------------------ through the governor

    function test_GovernorChangesDailyLimitAndGuardian() public {
        bytes[] memory calls = new bytes[](2);
        calls[0] =
            abi.encodeCall(Vault.governedConfigure, (Vault.TokenConfig(address(usdt), USDT_LARGE, 1_500_000e6, true)));
        calls[1] = abi.encodeCall(Vault.governedSetGuardian, (NEW_GUARDIAN));
        (address[] memory targets, uint256[] memory values, bytes32 descriptionHash) =
            passAndQueue(calls, "USDT daily limit 1.5M; new guardian");
        // nobody but the timelock: the governor's queue does not change the vault by itself
        vm.assertEq(vault.dailyLimit(address(usdt)), USDT_DAILY, "not before execution");
        vm.expectEmit(true, true, true, true, address(vault));
        emit LimitsChanged(address(usdt), USDT_LARGE, 1_500_000e6, true);
        vm.expectEmit(true, true, true, true, address(vault));
        emit GuardianChanged(NEW_GUARDIAN);
        governor.execute(targets, values, calls, descriptionHash);
        vm.assertEq(vault.dailyLimit(address(usdt)), 1_500_000e6, "daily limit");
        vm.assertEq(vault.largeThreshold(address(usdt)), USDT_LARGE, "threshold kept");
        vm.assertEq(vault.guardian(), NEW_GUARDIAN, "guardian");

        // the new limit holds: 1M paid, 600k more is refused, 500k is paid
        usdt.mint(address(vault), 3_000_000e6);
        vm.assertTrue(pay("g-1", OTHER, recipient, USDT_LARGE), "first million");
        Vault.Withdrawal memory w = withdrawalOf("g-2", OTHER + 1, recipient, 600_000e6);
        bytes[] memory sigs = sign3(w);
        vm.expectRevert(
            abi.encodeWithSelector(Vault.DailyLimitExceeded.selector, address(usdt), 1_500_000e6, 1_600_000e6)
        );
        vault.withdraw(w, sigs);
        vm.assertTrue(pay("g-3", OTHER + 1, recipient, 500_000e6), "up to the new limit");
        // the new guardian pauses, the old one no longer can
        vm.prank(guardian);
        vm.expectRevert(abi.encodeWithSelector(Vault.Unauthorized.selector, guardian));
        vault.pause();
        vm.prank(NEW_GUARDIAN);
        vault.pause();
        vm.assertTrue(vault.paused(), "paused by the new guardian");
    }

    function test_GovernorChangesEscapePeriods() public {
        bytes[] memory calls = new bytes[](1);
        calls[0] = abi.encodeCall(EscapeHatch.setEscapePeriods, (14 days, 5 days));
        (address[] memory targets, uint256[] memory values, bytes32 descriptionHash) =
            passAndQueue(calls, "grace 14 days, silence 5 days");
        vm.expectEmit(true, true, true, true, address(vault));
        emit EscapePeriodsChanged(14 days, 5 days);
        governor.execute(targets, values, calls, descriptionHash);
        vm.assertEq(vault.forcedGrace(), 14 days, "grace");
        vm.assertEq(vault.silencePeriod(), 5 days, "silence");
    }

    // ------------------------------------------------------------------ who

    function test_OnlyGovernanceCalls() public {
        Vault.TokenConfig memory c = Vault.TokenConfig(address(usdt), 0, 0, false);
        address[3] memory callers = [address(this), guardian, signerAddrs[0]];
        for (uint256 i; i < callers.length; ++i) {
            vm.startPrank(callers[i]);
            vm.expectRevert(abi.encodeWithSelector(EscapeHatch.NotGovernance.selector, callers[i]));
            vault.governedConfigure(c);
            vm.expectRevert(abi.encodeWithSelector(EscapeHatch.NotGovernance.selector, callers[i]));
            vault.governedSetGuardian(callers[i]);
            vm.expectRevert(abi.encodeWithSelector(EscapeHatch.NotGovernance.selector, callers[i]));
            vault.setEscapePeriods(1 days, 1 days);
            vm.stopPrank();
        }
        vm.assertEq(vault.dailyLimit(address(usdt)), USDT_DAILY, "unchanged");
        vm.assertEq(vault.guardian(), guardian, "unchanged");
        vm.assertEq(vault.forcedGrace(), GRACE, "unchanged");
    }

    function test_NoGovernanceNoGovernedCalls() public {
        Vault.TokenConfig[] memory none = new Vault.TokenConfig[](0);
        Vault v = new Vault(signerAddrs, guardian, TIMELOCK, GRACE, SILENCE, none);
        vm.assertEq(v.governance(), address(0), "none yet");
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.NotGovernance.selector, address(this)));
        v.governedSetGuardian(NEW_GUARDIAN);
    }

    function test_SetGovernance_OnceByTheDeployer() public {
        Vault.TokenConfig[] memory none = new Vault.TokenConfig[](0);
        Vault v = new Vault(signerAddrs, guardian, TIMELOCK, GRACE, SILENCE, none);
        vm.prank(guardian);
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.NotRegistrar.selector, guardian));
        v.setGovernance(address(timelock));
        vm.expectRevert(EscapeHatch.ZeroAddress.selector);
        v.setGovernance(address(0));
        v.setGovernance(address(timelock));
        vm.assertEq(v.governance(), address(timelock), "governance");
        vm.expectRevert(EscapeHatch.GovernanceAlreadySet.selector);
        v.setGovernance(address(this));
        vm.expectRevert(EscapeHatch.GovernanceAlreadySet.selector);
        vault.setGovernance(address(this));
    }

    function test_SignersConfigureAndSetGuardianRefusedOnceGoverned() public {
        uint256 deadline = block.timestamp + 1 hours;
        Vault.TokenConfig memory c = Vault.TokenConfig(address(usdt), 0, 0, false);
        bytes[] memory sigs = sign(signersKeys(3), configureDigest(address(vault), c, 0, deadline));
        vm.expectRevert(abi.encodeWithSelector(Vault.Governed.selector, address(timelock)));
        vault.configure(c, 0, deadline, sigs);
        sigs = sign(signersKeys(3), setGuardianDigest(address(vault), NEW_GUARDIAN, 0, deadline));
        vm.expectRevert(abi.encodeWithSelector(Vault.Governed.selector, address(timelock)));
        vault.setGuardian(NEW_GUARDIAN, 0, deadline, sigs);
        // the signers still unpause
        vm.prank(guardian);
        vault.pause();
        vault.unpause(0, deadline, sign(signersKeys(3), unpauseDigest(address(vault), 0, deadline)));
        vm.assertFalse(vault.paused(), "unpaused by the signers");
    }

    function test_GovernedSetGuardianRefusesZero() public {
        vm.prank(address(timelock));
        vm.expectRevert(EscapeHatch.ZeroAddress.selector);
        vault.governedSetGuardian(address(0));
    }

    // ------------------------------------------------------------------ escape periods

    function test_EscapePeriods_Bounds() public {
        vm.startPrank(address(timelock));
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.InvalidEscapePeriod.selector, 0));
        vault.setEscapePeriods(0, 1 days);
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.InvalidEscapePeriod.selector, 0));
        vault.setEscapePeriods(1 days, 0);
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.InvalidEscapePeriod.selector, 90 days + 1));
        vault.setEscapePeriods(90 days + 1, 1 days);
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.InvalidEscapePeriod.selector, 90 days + 1));
        vault.setEscapePeriods(1 days, 90 days + 1);
        vault.setEscapePeriods(1, 90 days);
        vm.assertEq(vault.forcedGrace(), 1, "shortest grace");
        vm.assertEq(vault.silencePeriod(), 90 days, "longest silence");
        vault.setEscapePeriods(90 days, 1);
        vm.stopPrank();
        vm.assertEq(vault.forcedGrace(), 90 days, "longest grace");
        vm.assertEq(vault.silencePeriod(), 1, "shortest silence");
    }

    function test_EscapePeriods_RefusedWhileARequestIsOpen() public {
        history();
        publish(1, USDT_ID, usdtEntries());
        bytes32 alices = request(leafOf(1, USDT_ID, 0));
        bytes32 bobs = request(leafOf(1, USDT_ID, 1));
        vm.assertEq(vault.openRequests(), 2, "two open");
        vm.prank(address(timelock));
        vm.expectRevert(EscapeHatch.RequestOpen.selector);
        vault.setEscapePeriods(1 days, SILENCE);

        // served one by a withdrawal to the exit address, the other by a signed zero: none open
        vm.assertTrue(pay("serve-a", A, alice, 1_000e6), "alice paid");
        vm.prank(address(timelock));
        vm.expectRevert(EscapeHatch.RequestOpen.selector);
        vault.setEscapePeriods(1 days, SILENCE);
        uint256 deadline = block.timestamp + 1 hours;
        vault.answerForcedZero(bobs, deadline, sign(signersKeys(3), forcedZeroDigest(address(vault), bobs, deadline)));
        vm.assertEq(vault.openRequests(), 0, "none open");
        vm.prank(address(timelock));
        vault.setEscapePeriods(1 days, SILENCE);
        vm.assertEq(vault.forcedGrace(), 1 days, "grace");

        // a request made afterwards has the new grace
        vm.warp(block.timestamp + 1);
        bytes32 again = request(leafOf(1, USDT_ID, 0));
        vm.assertTrue(again != alices, "a new request");
        uint256 at = block.timestamp + 1 days;
        vm.warp(at - 1);
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.GraceNotOver.selector, at));
        vault.freezeUnserved(again);
        vm.warp(at);
        vault.freezeUnserved(again);
        vm.assertTrue(vault.frozen(), "frozen at the new grace");
    }

    function test_EscapePeriods_RefusedAfterTheFreeze() public {
        history();
        publish(1, USDT_ID, usdtEntries());
        vm.warp(registry.lastPublishedAt() + SILENCE);
        vault.freezeSilent();
        vm.prank(address(timelock));
        vm.expectRevert(EscapeHatch.VaultFrozen.selector);
        vault.setEscapePeriods(GRACE, 90 days);
    }

    function test_EscapePeriods_LongerSilenceDefersTheFreeze() public {
        history();
        publish(1, USDT_ID, usdtEntries());
        vm.prank(address(timelock));
        vault.setEscapePeriods(GRACE, 5 days);
        uint256 at = registry.lastPublishedAt() + 5 days;
        vm.warp(registry.lastPublishedAt() + SILENCE);
        vm.expectRevert(abi.encodeWithSelector(EscapeHatch.NotSilent.selector, at));
        vault.freezeSilent();
        vm.warp(at);
        vault.freezeSilent();
        vm.assertTrue(vault.frozen(), "frozen");
    }
}
