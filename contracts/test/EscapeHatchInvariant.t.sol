// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TestBase} from "./utils/TestBase.sol";
import {VaultSigning} from "./utils/VaultSigning.sol";
import {PorTreeV2, PorEntry, PorScope} from "./utils/PorTreeV2.sol";
import {Vault} from "../src/Vault.sol";
import {EscapeHatch} from "../src/EscapeHatch.sol";
import {ReserveRegistry} from "../src/ReserveRegistry.sol";
import {DevToken} from "../src/DevToken.sol";

/// Four accounts behind one published USDT snapshot, then random deposits and payments (within
/// what an account is owed, or beyond it: an exchange that overpays), time, a freeze and the
/// claims; ghost accounts of what each claim must pay.
contract EscapeHandler is VaultSigning {
    uint256 public constant TIMELOCK = 6 hours;
    uint256 public constant GRACE = 7 days;
    uint256 public constant SILENCE = 72 hours;
    bytes32 public constant USDT_ID = keccak256("USDT");

    Vault public immutable vault;
    ReserveRegistry public immutable registry;
    DevToken public immutable token;
    uint256[5] internal keys;
    PorEntry[4] internal snapshot;

    /// since the snapshot, per account
    uint256[4] public depositedSince;
    uint256[4] public paidSince;
    uint256 public initialHoldings;
    uint256 public depositedTotal;
    uint256 public paidTotal;
    uint256 public claimedTotal;
    uint256 public heldAtFreeze;
    uint256 public claims;
    bool public overpaid; // a payment beyond what the account was owed
    bool public formulaBroken; // a claim paid other than the formula capped at the holdings
    bool public aboveHoldings; // a claim paid more than the vault held
    bool public shortWhileHonest; // a claim capped although every payment was within what was owed
    uint256 internal nextId;

    constructor() {
        vm.roll(100);
        address[5] memory addrs;
        for (uint256 i; i < 5; ++i) {
            keys[i] = uint256(keccak256(abi.encode("escape signer", i)));
            addrs[i] = vm.addr(keys[i]);
        }
        token = new DevToken("Tether USD (dev)", "USDT", 6);
        vault = new Vault(addrs, address(0x6A4D), TIMELOCK, GRACE, SILENCE, new Vault.TokenConfig[](0));
        bytes32[] memory ids = new bytes32[](1);
        address[] memory tokens = new address[](1);
        (ids[0], tokens[0]) = (USDT_ID, address(token));
        registry = new ReserveRegistry(address(this), address(vault), ids, tokens);
        vault.setRegistry(address(registry));

        // deposits of 1,000, 2,000, 500 and 0; trading moved 300 from the first to the others
        uint256[4] memory deposits = [uint256(1_000e6), 2_000e6, 500e6, 0];
        uint256[4] memory balances = [uint256(700e6), 2_100e6, 500e6, 200e6];
        for (uint256 i; i < 4; ++i) {
            snapshot[i] = PorEntry(account(i), balances[i], exitOf(i), deposits[i], 0);
            if (deposits[i] != 0) _deposit(i, deposits[i]);
        }
        initialHoldings = token.balanceOf(address(vault));
        depositedTotal = 0;
        for (uint256 i; i < 4; ++i) {
            depositedSince[i] = 0;
        }
        (bytes32 root, uint256 total) = PorTreeV2.root4(_scope(), _entries());
        registry.publish(1, USDT_ID, root, total, 2, 99, blockhash(99), "cid", new ReserveRegistry.Declaration[](0));
    }

    function account(uint256 i) public pure returns (uint64) {
        return uint64(21 + i);
    }

    function exitOf(uint256 i) public pure returns (address) {
        return address(uint160(0xE1 + i));
    }

    /// What account i is owed now: its snapshot balance, plus its deposits, minus its payments
    /// since (negative when overpaid).
    function owed(uint256 i) public view returns (int256) {
        return int256(snapshot[i].balance) + int256(depositedSince[i]) - int256(paidSince[i]);
    }

    // ------------------------------------------------------------------ actions

    function deposit(uint256 i, uint256 amount) external {
        if (vault.frozen()) return;
        i %= 4;
        amount = bound(amount, 1, 1_000_000e6);
        _deposit(i, amount);
    }

    /// An ordinary payment to account i; `honest`: at most what it is owed.
    function pay(uint256 i, uint256 amount, bool honest) external {
        if (vault.frozen()) return;
        i %= 4;
        uint256 held = token.balanceOf(address(vault));
        int256 due = owed(i);
        uint256 most = honest ? (due > 0 ? uint256(due) : 0) : held;
        if (most > held) most = held;
        if (most == 0) return;
        amount = bound(amount, 1, most);
        if (int256(amount) > due) overpaid = true;
        Vault.Withdrawal memory w = Vault.Withdrawal({
            id: bytes32(++nextId),
            account: account(i),
            token: address(token),
            to: address(0xCAFE),
            amount: amount,
            deadline: block.timestamp + 1 hours
        });
        vault.withdraw(w, sign(keys3(keys[0], keys[2], keys[4]), withdrawalDigest(address(vault), w)));
        paidSince[i] += amount;
        paidTotal += amount;
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 1, 2 days));
    }

    function freeze() external {
        if (vault.frozen()) return;
        uint256 at = uint256(registry.lastPublishedAt()) + SILENCE;
        if (block.timestamp < at) vm.warp(at);
        vault.freezeSilent();
        heldAtFreeze = token.balanceOf(address(vault));
    }

    function claim(uint256 i) external {
        i %= 4;
        if (!vault.frozen() || vault.claimed(account(i), USDT_ID)) return;
        uint256 held = token.balanceOf(address(vault));
        int256 due = owed(i);
        uint256 expected = due > 0 ? uint256(due) : 0;
        if (expected > held) {
            if (!overpaid) shortWhileHonest = true;
            expected = held;
        }
        EscapeHatch.LeafV2 memory leaf = PorTreeV2.proof4(_scope(), _entries(), i);
        vm.prank(exitOf(i));
        uint256 amount = vault.claim(leaf);
        if (amount != expected || token.balanceOf(exitOf(i)) != amount) formulaBroken = true;
        if (amount > held) aboveHoldings = true;
        claimedTotal += amount;
        ++claims;
    }

    // ------------------------------------------------------------------ internals

    function _deposit(uint256 i, uint256 amount) internal {
        token.mint(address(this), amount);
        token.approve(address(vault), amount);
        vault.depositToken(address(token), amount, account(i));
        depositedSince[i] += amount;
        depositedTotal += amount;
    }

    function _scope() internal view returns (PorScope memory) {
        return PorScope(block.chainid, address(registry), 1, USDT_ID);
    }

    function _entries() internal view returns (PorEntry[4] memory e) {
        for (uint256 i; i < 4; ++i) {
            e[i] = snapshot[i];
        }
    }
}

contract EscapeHatchInvariantTest is TestBase {
    EscapeHandler internal handler;

    function setUp() public {
        vm.warp(1_750_000_000);
        handler = new EscapeHandler();
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](6);
        selectors[0] = EscapeHandler.deposit.selector;
        selectors[1] = EscapeHandler.pay.selector;
        selectors[2] = EscapeHandler.warp.selector;
        selectors[3] = EscapeHandler.freeze.selector;
        selectors[4] = EscapeHandler.claim.selector;
        selectors[5] = EscapeHandler.claim.selector; // claims twice as often
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// No claim pays more than the vault holds; all claims together pay at most what it held
    /// when it froze.
    function invariant_claimsNeverExceedTheHoldings() public view {
        vm.assertFalse(handler.aboveHoldings(), "a claim above the holdings");
        vm.assertLe(handler.claimedTotal(), handler.heldAtFreeze(), "claims above the holdings at the freeze");
    }

    /// Every claim pays balance + deposited since - paid since, floored at 0, capped at the holdings.
    function invariant_claimsFollowTheFormula() public view {
        vm.assertFalse(handler.formulaBroken(), "a claim off the formula");
    }

    /// While the exchange paid no account more than it owed, every claim is paid in full.
    function invariant_anHonestExchangeLeavesEveryClaimWhole() public view {
        vm.assertFalse(handler.shortWhileHonest(), "a claim cut short although no one was overpaid");
    }

    /// The vault holds what was deposited, minus what was paid and claimed.
    function invariant_holdingsMatchTheLedger() public view {
        vm.assertEq(
            handler.token().balanceOf(address(handler.vault())),
            handler.initialHoldings() + handler.depositedTotal() - handler.paidTotal() - handler.claimedTotal(),
            "holdings"
        );
    }
}
