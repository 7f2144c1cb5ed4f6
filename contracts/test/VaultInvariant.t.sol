// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TestBase} from "./utils/TestBase.sol";
import {VaultSigning} from "./utils/VaultSigning.sol";
import {Vault} from "../src/Vault.sol";
import {DevToken} from "../src/DevToken.sol";

/// Drives the vault with random deposits, withdrawals (good and bad signature sets, new and
/// reused ids, amounts above the holdings), queued executions, cancellations, pauses and time,
/// and keeps ghost accounts of what should have happened.
contract VaultHandler is VaultSigning {
    uint256 public constant TIMELOCK = 6 hours;
    uint256 public constant GRACE = 7 days;
    uint256 public constant SILENCE = 72 hours;
    uint256 public constant ETH_LARGE = 10 ether;
    uint256 public constant TOKEN_LARGE = 1_000e6;
    uint256 public constant TOKEN_DAILY = 5_000e6;

    Vault public immutable vault;
    DevToken public immutable token;
    address public constant GUARDIAN = address(0x6A4D);
    address public constant DEPOSITOR = address(0xDE9);

    uint256[5] internal keys;
    uint256 internal immutable outsiderKey;
    address[3] public recipients = [address(0x1001), address(0x1002), address(0x1003)];

    // ghost state
    mapping(address asset => uint256) public deposited;
    mapping(address asset => uint256) public withdrawn;
    mapping(bytes32 id => uint256) public payouts;
    uint256 public underSignedAccepted; // accepted with fewer than 3 distinct valid signer signatures
    uint256 public malformedAccepted; // accepted with an outsider, a duplicate, unsorted or foreign signatures
    uint256 public duplicatePayouts; // an id paid a second time
    uint256 public earlyExecutions; // a queued withdrawal paid before its time-lock
    uint256 public largePaidAtOnce; // an amount above the threshold paid without queueing
    uint256 public overdrafts; // a payout larger than what the vault held
    uint256 public unauthorizedCancels; // a cancel by someone neither signer nor guardian
    uint256 public dailyLimitBreaches; // more than the daily limit paid within some 24 hours
    uint256 public timelockAvoided; // an account paid more than the threshold at once within some 24 hours

    struct Payout {
        uint256 at;
        uint64 account;
        address token;
        uint256 amount;
        bool direct; // paid by withdraw, not through a time-lock
    }

    Payout[] internal paidOut;

    struct Pending {
        address token;
        uint64 account;
        uint256 amount;
        uint256 queuedAt;
    }

    bytes32[] public ids;
    bytes32[] public queuedIds;
    mapping(bytes32 id => Pending) public pending;
    uint256 internal nextId;

    // coverage counters
    uint256 public paidCount;
    uint256 public queuedCount;
    uint256 public executedCount;
    uint256 public cancelledCount;
    uint256 public rejectedCount;

    constructor() {
        for (uint256 i; i < 5; ++i) {
            keys[i] = uint256(keccak256(abi.encode("invariant signer", i)));
        }
        outsiderKey = uint256(keccak256("invariant outsider"));
        address[5] memory addrs;
        for (uint256 i; i < 5; ++i) {
            addrs[i] = vm.addr(keys[i]);
        }
        token = new DevToken("Tether USD (dev)", "USDT", 6);
        Vault.TokenConfig[] memory configs = new Vault.TokenConfig[](2);
        configs[0] = Vault.TokenConfig(address(0), ETH_LARGE, 0, false);
        configs[1] = Vault.TokenConfig(address(token), TOKEN_LARGE, TOKEN_DAILY, true);
        vault = new Vault(addrs, GUARDIAN, TIMELOCK, GRACE, SILENCE, configs);
    }

    function assets() public view returns (address[2] memory) {
        return [address(0), address(token)];
    }

    // ------------------------------------------------------------------ actions

    function depositETH(uint256 amount, uint64 account) external {
        amount = bound(amount, 1, 50 ether);
        account = uint64(bound(account, 1, 1000));
        if (vault.paused()) return;
        vm.deal(DEPOSITOR, amount);
        vm.prank(DEPOSITOR);
        vault.depositETH{value: amount}(account);
        deposited[address(0)] += amount;
    }

    function depositToken(uint256 amount, uint64 account) external {
        amount = bound(amount, 1, 3_000e6);
        account = uint64(bound(account, 1, 1000));
        if (vault.paused()) return;
        token.mint(DEPOSITOR, amount);
        vm.startPrank(DEPOSITOR);
        token.approve(address(vault), amount);
        vault.depositToken(address(token), amount, account);
        vm.stopPrank();
        deposited[address(token)] += amount;
    }

    /// 5-bit signer masks with at least 3 signers, and with at most 2.
    uint8[16] internal enoughSigners = [7, 11, 13, 14, 19, 21, 22, 25, 26, 28, 15, 23, 27, 29, 30, 31];
    uint8[16] internal tooFewSigners = [0, 1, 2, 4, 8, 16, 3, 5, 6, 9, 10, 12, 17, 18, 20, 24];

    /// Half the time a well-formed set of 3 to 5 signer signatures; otherwise one of: fewer than
    /// 3 signers, an outsider added, a signer twice, the order reversed, signed for another chain.
    /// Mostly within the holdings (half of the time under the time-lock threshold), 1 in 8 above
    /// them; 1 in 5 reuses an id seen before.
    function withdraw(uint256 seed, uint256 amount, uint8 pick, uint8 mode) external {
        address asset = seed % 2 == 0 ? address(0) : address(token);
        uint256 held = vault.holdings(asset);
        if ((seed >> 8) % 8 == 7) {
            amount = bound(amount, held + 1, 2 * held + 1);
        } else if ((seed >> 8) % 8 < 4) {
            amount = bound(amount, 1, largeOf(asset)); // under the threshold: fills the account's window
        } else {
            amount = bound(amount, 1, held + 1);
        }
        bytes32 id;
        if ((seed >> 16) % 5 == 0 && ids.length > 0) {
            id = ids[(seed >> 24) % ids.length];
        } else {
            id = keccak256(abi.encode("withdrawal", nextId++));
            ids.push(id);
        }
        Vault.Withdrawal memory w = Vault.Withdrawal({
            id: id,
            account: uint64(bound(seed >> 32, 1, 3)), // few accounts: their time-lock windows fill
            token: asset,
            to: recipients[(seed >> 40) % 3],
            amount: amount,
            deadline: block.timestamp + 1 hours
        });

        uint8 badness = mode < 128 ? 0 : 1 + mode % 5;
        uint8 mask = badness == 1 ? tooFewSigners[pick % 16] : enoughSigners[pick % 16];
        (bytes[] memory sigs, uint256 distinctValid, bool wellFormed) = signatures(w, mask, badness);
        try vault.withdraw(w, sigs) returns (bool paid) {
            if (distinctValid < 3) ++underSignedAccepted;
            if (!wellFormed) ++malformedAccepted;
            if (paid) {
                if (amount > largeOf(asset)) ++largePaidAtOnce;
                recordPayout(id, asset, amount, held);
                checkWindows(w.account, asset, amount, true);
                ++paidCount;
            } else {
                pending[id] = Pending(asset, w.account, amount, block.timestamp);
                queuedIds.push(id);
                ++queuedCount;
            }
        } catch {
            ++rejectedCount;
        }
    }

    /// Executes a queued withdrawal: half the time right away (before the time-lock, if it is
    /// still running: must fail), half the time after moving the clock past its time-lock.
    function executeQueued(uint256 index, uint256 wait) external {
        if (queuedIds.length == 0) return;
        bytes32 id = queuedIds[index % queuedIds.length];
        Pending memory p = pending[id];
        if (wait % 2 == 0 && block.timestamp < p.queuedAt + TIMELOCK) {
            vm.warp(p.queuedAt + TIMELOCK + bound(wait, 0, 1 hours));
        }
        uint256 held = vault.holdings(p.token);
        try vault.executeQueued(id) {
            if (block.timestamp < p.queuedAt + TIMELOCK) ++earlyExecutions;
            recordPayout(id, p.token, p.amount, held);
            checkWindows(p.account, p.token, p.amount, false);
            ++executedCount;
            if (index % 4 != 0) removeQueued(index % queuedIds.length); // now and then try it again
        } catch {
            ++rejectedCount;
        }
    }

    /// Cancels a queued withdrawal (1 call in 4, so that most reach their time-lock), as a
    /// signer, the guardian or an outsider.
    function cancelQueued(uint256 index, uint256 who) external {
        if (queuedIds.length == 0 || index % 4 != 0) return;
        bytes32 id = queuedIds[(index / 4) % queuedIds.length];
        uint256 role = who % 7;
        vm.prank(role == 5 ? GUARDIAN : role == 6 ? address(0xBAD) : vm.addr(keys[role]));
        try vault.cancelQueued(id) {
            if (role == 6) ++unauthorizedCancels;
            ++cancelledCount;
        } catch {
            ++rejectedCount;
        }
    }

    function warp(uint256 secondsLater) external {
        vm.warp(block.timestamp + bound(secondsLater, 0, 12 hours));
    }

    /// Pauses now and then (1 call in 8), and tries to unpause with a random signer subset.
    function togglePause(uint8 mask) external {
        if (!vault.paused()) {
            if (mask % 8 != 0) return;
            vm.prank(GUARDIAN);
            vault.pause();
            return;
        }
        uint256 nonce = vault.adminNonce();
        uint256 deadline = block.timestamp + 1 hours;
        uint256[] memory k = subset(mask & 31);
        bytes[] memory sigs = sign(k, unpauseDigest(address(vault), nonce, deadline));
        try vault.unpause(nonce, deadline, sigs) {
            if (k.length < 3) ++underSignedAccepted;
        } catch {
            ++rejectedCount;
        }
    }

    // ------------------------------------------------------------------ helpers

    function removeQueued(uint256 i) internal {
        queuedIds[i] = queuedIds[queuedIds.length - 1];
        queuedIds.pop();
    }

    /// Records a payout and checks the 24 hours before it (inclusive): what left of the token
    /// stays within its daily limit, and what the account was paid at once within its threshold.
    function checkWindows(uint64 account, address asset, uint256 amount, bool direct) internal {
        paidOut.push(Payout(block.timestamp, account, asset, amount, direct));
        uint256 ofToken;
        uint256 ofAccount;
        for (uint256 i; i < paidOut.length; ++i) {
            Payout memory p = paidOut[i];
            if (p.token != asset || p.at + 24 hours <= block.timestamp) continue;
            ofToken += p.amount;
            if (p.direct && p.account == account) ofAccount += p.amount;
        }
        if (asset == address(token) && ofToken > TOKEN_DAILY) ++dailyLimitBreaches;
        if (direct && ofAccount > largeOf(asset)) ++timelockAvoided;
    }

    function largeOf(address asset) internal pure returns (uint256) {
        return asset == address(0) ? ETH_LARGE : TOKEN_LARGE;
    }

    function recordPayout(bytes32 id, address asset, uint256 amount, uint256 heldBefore) internal {
        if (++payouts[id] > 1) ++duplicatePayouts;
        if (amount > heldBefore) ++overdrafts;
        withdrawn[asset] += amount;
    }

    function subset(uint8 mask) internal view returns (uint256[] memory k) {
        uint256 n;
        for (uint256 i; i < 5; ++i) {
            if (mask & (1 << i) != 0) ++n;
        }
        k = new uint256[](n);
        n = 0;
        for (uint256 i; i < 5; ++i) {
            if (mask & (1 << i) != 0) k[n++] = keys[i];
        }
    }

    function signatures(Vault.Withdrawal memory w, uint8 mask, uint8 mode)
        internal
        view
        returns (bytes[] memory sigs, uint256 distinctValid, bool wellFormed)
    {
        uint256[] memory k = sortByAddress(subset(mask));
        distinctValid = k.length;
        wellFormed = true;
        bytes32 digest = withdrawalDigest(address(vault), w);
        if (mode == 2) {
            uint256[] memory more = new uint256[](k.length + 1);
            for (uint256 i; i < k.length; ++i) {
                more[i] = k[i];
            }
            more[k.length] = outsiderKey;
            k = sortByAddress(more);
            wellFormed = false;
        } else if (mode == 3 && k.length > 0) {
            uint256[] memory more = new uint256[](k.length + 1);
            more[0] = k[0];
            for (uint256 i; i < k.length; ++i) {
                more[i + 1] = k[i];
            }
            k = more;
            wellFormed = false;
        } else if (mode == 4 && k.length > 1) {
            for (uint256 i; i < k.length / 2; ++i) {
                (k[i], k[k.length - 1 - i]) = (k[k.length - 1 - i], k[i]);
            }
            wellFormed = false;
        } else if (mode == 5) {
            digest = typedDigest(address(vault), block.chainid + 1, withdrawalStructHash(w));
            distinctValid = 0;
            wellFormed = false;
        }
        sigs = signInOrder(k, digest);
    }

    function queuedLength() external view returns (uint256) {
        return queuedIds.length;
    }
}

contract VaultInvariantTest is TestBase {
    VaultHandler internal handler;
    Vault internal vault;

    function setUp() public {
        vm.warp(1_750_000_000);
        handler = new VaultHandler();
        vault = handler.vault();
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](7);
        selectors[0] = VaultHandler.depositETH.selector;
        selectors[1] = VaultHandler.depositToken.selector;
        selectors[2] = VaultHandler.withdraw.selector;
        selectors[3] = VaultHandler.executeQueued.selector;
        selectors[4] = VaultHandler.cancelQueued.selector;
        selectors[5] = VaultHandler.warp.selector;
        selectors[6] = VaultHandler.togglePause.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// The vault holds exactly what was deposited minus what was paid out, per asset, and the
    /// recipients received exactly what was paid: it never pays more than it holds.
    function invariant_holdingsMatchGhostLedger() public view {
        address[2] memory assets = handler.assets();
        for (uint256 a; a < 2; ++a) {
            uint256 dep = handler.deposited(assets[a]);
            uint256 wd = handler.withdrawn(assets[a]);
            vm.assertGe(dep, wd, "paid out more than deposited");
            vm.assertEq(vault.holdings(assets[a]), dep - wd, "holdings != deposited - withdrawn");
            uint256 received;
            for (uint256 r; r < 3; ++r) {
                address to = handler.recipients(r);
                received += assets[a] == address(0) ? to.balance : handler.token().balanceOf(to);
            }
            vm.assertEq(received, wd, "recipients received != withdrawn");
        }
        vm.assertEq(handler.overdrafts(), 0, "a payout larger than the holdings");
    }

    /// Never a withdrawal (or an unpause) with fewer than 3 valid distinct signer signatures,
    /// nor with an outsider's, a duplicate, an unsorted set or a signature for another chain.
    function invariant_neverUnderSigned() public view {
        vm.assertEq(handler.underSignedAccepted(), 0, "accepted with fewer than 3 signers");
        vm.assertEq(handler.malformedAccepted(), 0, "accepted a malformed signature set");
    }

    /// Never the same id paid twice.
    function invariant_idPaidAtMostOnce() public view {
        vm.assertEq(handler.duplicatePayouts(), 0, "an id paid twice");
    }

    /// Large withdrawals, and what an account withdraws of a token within 24 hours beyond the
    /// threshold, are always queued and never paid before the time-lock; no 24 hours pay out more
    /// than the daily limit.
    function invariant_timelockAndDailyLimit() public view {
        vm.assertEq(handler.largePaidAtOnce(), 0, "large amount paid at once");
        vm.assertEq(handler.timelockAvoided(), 0, "split payments avoided the time-lock");
        vm.assertEq(handler.unauthorizedCancels(), 0, "cancelled by an outsider");
        vm.assertEq(handler.earlyExecutions(), 0, "queued withdrawal paid early");
        vm.assertEq(handler.dailyLimitBreaches(), 0, "more than the daily limit within 24 hours");
        address t = address(handler.token());
        vm.assertLe(vault.outflow(t), handler.TOKEN_DAILY(), "daily limit exceeded");
    }
}
