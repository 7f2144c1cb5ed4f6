// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TestBase} from "./TestBase.sol";
import {VaultSigning} from "./VaultSigning.sol";
import {Vault} from "../../src/Vault.sol";
import {DevToken} from "../../src/DevToken.sol";
import {FeeToken} from "../../src/FeeToken.sol";

/// A vault with 5 signers, a guardian, a 24 h time-lock and a few tokens, for the unit and fuzz
/// tests: ETH (queued above 100 ETH, no daily limit), USDT (6 decimals, queued above 1M, 2M a
/// day), WBTC (8 decimals, no limits), a fee-on-transfer token that is credited and one that
/// is refused.
abstract contract VaultSetup is TestBase, VaultSigning {
    uint256 internal constant TIMELOCK = 24 hours;
    uint256 internal constant GRACE = 7 days; // forced withdrawal grace
    uint256 internal constant SILENCE = 72 hours; // registry silence before a freeze
    uint256 internal constant START = 1_750_000_000; // a realistic block time
    uint256 internal constant ETH_LARGE = 100 ether;
    uint256 internal constant USDT_LARGE = 1_000_000e6;
    uint256 internal constant USDT_DAILY = 2_000_000e6;

    Vault internal vault;
    DevToken internal usdt;
    DevToken internal wbtc;
    FeeToken internal feeCredited;
    FeeToken internal feeRefused;

    uint256[5] internal signerKeys;
    address[5] internal signerAddrs;
    uint256 internal outsiderKey;
    address internal guardian = address(0x6A4D);
    address internal user = address(0x05E7);
    address payable internal recipient = payable(address(0xB0B));

    function setUp() public virtual {
        vm.warp(START);
        for (uint256 i; i < 5; ++i) {
            signerKeys[i] = uint256(keccak256(abi.encode("dpg signer", i)));
            signerAddrs[i] = vm.addr(signerKeys[i]);
        }
        outsiderKey = uint256(keccak256("not a signer"));

        usdt = new DevToken("Tether USD (dev)", "USDT", 6);
        wbtc = new DevToken("Wrapped BTC (dev)", "WBTC", 8);
        feeCredited = new FeeToken("Fee token", "FEE", 18);
        feeRefused = new FeeToken("Refused fee token", "RFEE", 18);

        Vault.TokenConfig[] memory configs = new Vault.TokenConfig[](3);
        configs[0] = Vault.TokenConfig(address(0), ETH_LARGE, 0, false);
        configs[1] = Vault.TokenConfig(address(usdt), USDT_LARGE, USDT_DAILY, true);
        configs[2] = Vault.TokenConfig(address(feeRefused), 0, 0, true);
        vault = new Vault(signerAddrs, guardian, TIMELOCK, GRACE, SILENCE, configs);

        vm.label(address(vault), "vault");
        vm.label(guardian, "guardian");
        vm.label(recipient, "recipient");
    }

    // ------------------------------------------------------------------ helpers

    function fundETH(uint256 amount) internal {
        vm.deal(user, amount);
        vm.prank(user);
        vault.depositETH{value: amount}(1);
    }

    function fundToken(DevToken token, uint256 amount) internal {
        token.mint(user, amount);
        vm.startPrank(user);
        token.approve(address(vault), amount);
        vault.depositToken(address(token), amount, 1);
        vm.stopPrank();
    }

    function withdrawal(bytes32 id, address token, uint256 amount) internal view returns (Vault.Withdrawal memory) {
        return Vault.Withdrawal({
            id: id, account: 7, token: token, to: recipient, amount: amount, deadline: block.timestamp + 1 hours
        });
    }

    /// Signatures of signers 0, 1 and 2 (sorted) over `w` for this vault.
    function sign3(Vault.Withdrawal memory w) internal view returns (bytes[] memory) {
        return sign(keys3(signerKeys[0], signerKeys[1], signerKeys[2]), withdrawalDigest(address(vault), w));
    }

    function signersKeys(uint256 count) internal view returns (uint256[] memory k) {
        k = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            k[i] = signerKeys[i];
        }
    }
}
