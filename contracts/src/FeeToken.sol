// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {DevToken} from "./DevToken.sol";

/// @title A fee-on-transfer token, for tests and the development chain only
/// @notice Like DevToken (anyone mints), but every transfer burns 1 % of the amount (rounded
/// down), so the receiver gets 99 %. The Vault refuses it or credits what arrived.
contract FeeToken is DevToken {
    uint256 public constant FEE_BPS = 100;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) DevToken(name_, symbol_, decimals_) {}

    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) {
            uint256 fee = value * FEE_BPS / 10_000;
            super._update(from, to, value - fee);
            if (fee != 0) super._update(from, address(0), fee);
        } else {
            super._update(from, to, value);
        }
    }
}
