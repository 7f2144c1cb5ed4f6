// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title A token for the development chain only
/// @notice Stands in for USDT (6 decimals), WBTC (8) and the like on a dev chain: anyone may
/// mint any amount. Never deploy it where it would be worth something.
contract DevToken is ERC20 {
    uint8 private immutable _decimals;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20(name_, symbol_) {
        _decimals = decimals_;
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    /// Open to anyone: this is a dev token.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
